"""The fast path of extraction: a plain JPEG's size and EXIF, read the way Pillow reads them.

Most photos are well-formed JPEGs. For those, `Image.open` + `Image.Exif` spend most of their time
on generality (every marker handler, a debug message per tag, per-tag type dispatch), which made
extraction cost about twice a bare `getexif()`. `read(fp)` walks the JPEG markers and the EXIF IFDs
itself and returns the same values Pillow would (its own value loaders and tag tables are used, so
types and rounding are Pillow's), or None when anything is not plain: an irregular marker, an MPF
(MPO) segment, two Exif segments, a truncated or out-of-range IFD, a tag Pillow would warn about...
The caller then reads the file through Pillow as before, so every unusual or hostile file still
gets Pillow's exact behaviour and warnings. tests/test_extract.py checks that both paths give the
same record for every corpus file.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from math import gcd as _gcd
from typing import IO, Any

from PIL import ExifTags, TiffTags
from PIL.TiffImagePlugin import IFDRational, ImageFileDirectory_v2

_IFD_EXIF, _IFD_GPS, _IFD_INTEROP = 0x8769, 0x8825, 0xA005
_IFD_1 = int(ExifTags.IFD.IFD1)
_SOF = frozenset({*range(0xC0, 0xD0), 0xDE}) - {0xC4, 0xC8, 0xCC}  # Pillow's SOF handlers
_SKIPPED = frozenset({0xC4, 0xCC, 0xDC, 0xDD, 0xDF, 0xFE, *range(0xE0, 0xF0)})  # read, ignored
_LOADERS = ImageFileDirectory_v2._load_dispatch  # type -> (unit size, loader)
_SIZES = {typ: size for typ, (size, _) in _LOADERS.items()}
# struct formats of Pillow's basic loaders (_register_basic); checked against Pillow below
_FORMATS = {3: "H", 4: "L", 6: "b", 8: "h", 9: "l", 11: "f", 12: "d", 13: "L", 16: "Q"}
# A Pillow whose loaders differ from what _ifd assumes: every file goes through Pillow.
_UNITS = {t: struct.calcsize("<" + f) for t, f in _FORMATS.items()}
_UNITS |= {1: 1, 2: 1, 5: 8, 7: 1, 10: 8}  # BYTE, ASCII, RATIONAL, UNDEFINED, SRATIONAL
_COMPATIBLE = all(_SIZES.get(typ) == size for typ, size in _UNITS.items())
_HELPERS = {
    "<": ImageFileDirectory_v2(b"II*\x00\x00\x00\x00\x00"),
    ">": ImageFileDirectory_v2(b"MM\x00*\x00\x00\x00\x00"),
}
_ENTRY = {e: struct.Struct(e + "HHL4s") for e in "<>"}
_SPEC: dict[tuple[int | None, int], tuple[int | None, bool]] = {}  # (group, tag) -> (length, enum)
_ORDER = {"<": "little", ">": "big"}


def _new_rational(numerator: int, denominator: int) -> IFDRational:
    """IFDRational(numerator, denominator) for two integers: the slots its __init__ sets, without
    its checks for other argument types, which cost half of it (a quarter of a photo's tags are
    rationals); its Fraction made the same way (Fraction's own checks cost half of that). Used
    only where it gives what Pillow's own gives (checked below)."""
    rational = _NEW(IFDRational)
    rational._numerator = numerator
    rational._denominator = denominator
    if denominator:
        g = _gcd(numerator, denominator)
        if denominator < 0:
            g = -g
        value = _NEW(Fraction)
        value._numerator = numerator // g
        value._denominator = denominator // g
        rational._val = value
    else:
        rational._val = float("nan")
    return rational


def _slots(r: IFDRational) -> tuple[Any, ...]:
    return r._numerator, r._denominator, type(r._val), str(r._val)


_NEW = object.__new__
_SAMPLES = (
    (1, 3), (-2, 4), (3, -9), (-4, -6), (72, 1), (0, 1), (0, -5), (0, 0), (5, 0), (2**32 - 1, 7)
)  # fmt: skip
try:
    _SAME = (
        IFDRational.__slots__ == ("_numerator", "_denominator", "_val")
        and Fraction.__slots__ == ("_numerator", "_denominator")
    ) and all(_slots(_new_rational(*s)) == _slots(IFDRational(*s)) for s in _SAMPLES)
except Exception:  # another Pillow's IFDRational
    _SAME = False
_RATIONAL = _new_rational if _SAME else IFDRational
_UNPACK: dict[tuple[str, int, int], Any] = {}  # (endian, type, count) -> struct unpack


class NotPlain(Exception):
    """Something Pillow would treat specially or warn about: read the file through Pillow."""


class PlainJpeg:
    __slots__ = ("exif", "height", "raw", "width", "xmp", "xmp_extension")

    def __init__(
        self,
        width: int,
        height: int,
        raw: bytes,
        exif: PlainExif | None,
        xmp: bytes | None,
        xmp_extension: list[bytes],
    ) -> None:
        self.width, self.height, self.raw, self.exif = width, height, raw, exif
        self.xmp = xmp  # the XMP packet, as Pillow's info["xmp"] holds it
        self.xmp_extension = xmp_extension  # extended XMP's APP1 segments, as in Pillow's applist


_XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"  # extended XMP (extract.py)


def read(fp: IO[bytes]) -> PlainJpeg | None:
    """Size and EXIF of a plain JPEG (fp at any position), or None: use Pillow then."""
    if not _COMPATIBLE:
        return None
    try:
        return _read(fp)
    except Exception:  # NotPlain, or any surprise: Pillow's path decides what the file is
        return None


def _read(fp: IO[bytes]) -> PlainJpeg:
    fp.seek(0)
    if fp.read(2) != b"\xff\xd8":
        raise NotPlain
    size: tuple[int, int] | None = None
    raw: bytes | None = None
    xmp: bytes | None = None
    extension: list[bytes] = []
    while True:
        marker = fp.read(4)
        if len(marker) < 4 or marker[0] != 0xFF:
            raise NotPlain
        kind = marker[1]
        length = (marker[2] << 8 | marker[3]) - 2
        if length < 0:
            raise NotPlain
        if kind == 0xDA:  # start of scan: the header is over (Pillow reads this segment too)
            if len(fp.read(length)) < length:
                raise NotPlain
            break
        if kind in _SOF:
            s = fp.read(length)
            if size is not None or len(s) < max(length, 6) or s[0] != 8 or s[5] not in (1, 3, 4):
                raise NotPlain
            size = (s[3] << 8 | s[4], s[1] << 8 | s[2])
        elif kind == 0xDB:
            s = fp.read(length)
            if len(s) < length:
                raise NotPlain
            _check_dqt(s)
        elif kind == 0xE1 or kind == 0xE0 or kind == 0xE2 or kind == 0xEE:
            s = fp.read(length)
            if len(s) < length:
                raise NotPlain
            if kind == 0xE1 and s.startswith(b"Exif\x00\x00"):
                if raw is not None:  # Pillow concatenates a second one
                    raise NotPlain
                raw = s
            elif kind == 0xE1 and s.startswith(_XMP_APP1):
                if xmp is not None:  # Pillow keeps the last one
                    raise NotPlain
                xmp = s[len(_XMP_APP1) :]
            elif kind == 0xE1 and s.startswith(XMP_EXTENSION):
                extension.append(s)
            elif kind == 0xE2 and s.startswith(b"MPF\x00"):  # MPO: Pillow's format rules
                raise NotPlain
            elif len(s) < 7 and s.startswith(b"JFIF" if kind == 0xE0 else b"Adobe"):
                raise NotPlain  # Pillow fails on these (APP0 JFIF and APP14 Adobe)
        elif kind in _SKIPPED:
            fp.seek(length, 1)
        else:
            raise NotPlain
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise NotPlain
    if raw is None:
        return PlainJpeg(size[0], size[1], b"", None, xmp, extension)
    return PlainJpeg(size[0], size[1], raw, PlainExif(raw), xmp, extension)


def _check_dqt(s: bytes) -> None:
    while s:
        n = 1 + (64 if s[0] // 16 == 0 else 128)
        if len(s) < n:
            raise NotPlain
        s = s[n:]


class PlainExif(dict[int, Any]):
    """An EXIF block parsed eagerly, with the interface extract._read_exif uses of Image.Exif:
    dict(exif) for IFD0 (a dict itself, copied in one call), get_ifd(tag) for the Exif, GPS,
    Interop IFDs and IFD1, `endian`."""

    __slots__ = ("_ifds", "endian")

    def __init__(self, raw: bytes) -> None:
        data = raw[6:]
        if data.startswith(b"Exif\x00\x00"):  # Pillow strips a doubled prefix too
            data = data[6:]
        if data[:4] == b"II*\x00":
            self.endian = "<"
        elif data[:4] == b"MM\x00*":
            self.endian = ">"
        else:
            raise NotPlain
        (first,) = struct.unpack_from(self.endian + "L", data, 4)
        size = len(raw)  # extract._read_exif measures pointers against the block with prefix
        ifd0, following = _ifd(data, first, None, self.endian)
        self.update(ifd0)
        self._ifds: dict[int, dict[int, Any]] = {}
        seen = {first}
        for tag in (_IFD_EXIF, _IFD_GPS):
            self._sub(data, tag, ifd0, seen, size)
        if _IFD_EXIF in self._ifds:
            self._sub(data, _IFD_INTEROP, self._ifds[_IFD_EXIF], seen, size)
        if following and ifd0:
            if following in seen:
                raise NotPlain
            self._ifds[_IFD_1], _ = _ifd(data, following, None, self.endian)

    def _sub(self, data: bytes, tag: int, parent: dict[int, Any], seen: set[int], size: int):
        pointer = parent.get(tag)
        if pointer is None:
            return
        if type(pointer) is not int or not 8 <= pointer < size or pointer in seen:
            raise NotPlain  # extract warns about these: let the Pillow path say it
        seen.add(pointer)
        self._ifds[tag], _ = _ifd(data, pointer, tag, self.endian)

    def get_ifd(self, tag: int) -> dict[int, Any]:
        return self._ifds.get(tag, {})


def _ifd(data: bytes, offset: int, group: int | None, endian: str) -> tuple[dict[int, Any], int]:
    """One IFD as Pillow's Exif gives it ({tag: value}, 1-tuples unwrapped) and the next offset.
    The common types are decoded here as Pillow's loaders decode them; any other goes through
    Pillow's own loader."""
    (count,) = struct.unpack_from(endian + "H", data, offset)
    start = offset + 2
    end = start + 12 * count
    size = len(data)
    if end + 4 > size:
        raise NotPlain
    out: dict[int, Any] = {}
    total = 0
    order = _ORDER[endian]
    enums = _ENUMS.get(group, ())
    from_bytes = int.from_bytes
    for tag, typ, n, inline in _ENTRY[endian].iter_unpack(data[start:end]):
        if tag in out:
            continue  # Pillow keeps the first
        unit = _SIZES.get(typ)
        if unit is None:
            continue  # a type Pillow does not load
        nbytes = n * unit
        if nbytes > 4:
            at = from_bytes(inline, order)
            total += nbytes
            if total > size or at + nbytes > size:
                raise NotPlain
            raw = data[at : at + nbytes]
        elif nbytes:
            if n == 1 and (typ == 3 or typ == 4):  # one SHORT or LONG, the commonest entry
                out[tag] = from_bytes(inline[:unit], order)
                continue
            raw = inline[:nbytes]
        else:
            continue
        if typ == 2:  # ASCII: one trailing NUL dropped, latin-1
            if tag in enums:  # Pillow would turn an enum name into its number
                raise NotPlain
            out[tag] = (raw[:-1] if raw[-1] == 0 else raw).decode("latin-1", "replace")
            continue
        if typ == 7 or typ == 1:  # UNDEFINED, BYTE: the bytes
            out[tag] = raw
            continue
        if typ == 5 or typ == 10:
            nums = (_UNPACK.get((endian, typ, n)) or _unpacker(endian, typ, n))(raw)
            if n == 1:
                out[tag] = _RATIONAL(nums[0], nums[1])
                continue
            values: Any = tuple([_RATIONAL(nums[i], nums[i + 1]) for i in range(0, 2 * n, 2)])
        elif typ in _FORMATS:
            values = (_UNPACK.get((endian, typ, n)) or _unpacker(endian, typ, n))(raw)
        else:
            values = _LOADERS[typ][1](_HELPERS[endian], raw, False)
        if n == 1:
            out[tag] = values[0]
        elif _spec(group, tag)[0] == 1:  # Pillow warns "too many entries" and keeps the first
            raise NotPlain
        else:
            out[tag] = values
    (following,) = struct.unpack_from(endian + "L", data, end)
    return out, following


def _unpacker(endian: str, typ: int, n: int) -> Any:
    """struct's unpack of `n` values of a type in _FORMATS, or of a RATIONAL / SRATIONAL's 2n
    integers; kept for the counts that recur."""
    rational = {5: "L", 10: "l"}.get(typ)  # RATIONAL, SRATIONAL: numerator, denominator
    code = f"{2 * n}{rational}" if rational else f"{n}{_FORMATS[typ]}"
    unpack = struct.Struct(endian + code).unpack
    if n <= 16:  # a few array lengths recur; others (strip offsets...) are not worth keeping
        _UNPACK[(endian, typ, n)] = unpack
    return unpack


# The tags whose text Pillow would turn into a number (an enum's name), by group, as _spec finds.
_ENUMS = {
    group: frozenset(tag for tag, info in table.items() if info.enum)
    for group, table in ((None, TiffTags.TAGS_V2), *TiffTags.TAGS_V2_GROUPS.items())
}


def _spec(group: int | None, tag: int) -> tuple[int | None, bool]:
    """(length, has an enum) of a tag in Pillow's tables, as _setitem looks it up."""
    spec = _SPEC.get((group, tag))
    if spec is None:
        info = TiffTags.lookup(tag, group)
        spec = _SPEC[(group, tag)] = (info.length, bool(info.enum))
    return spec
