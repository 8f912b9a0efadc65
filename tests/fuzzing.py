"""Byte-level fuzzing of `extract()`: seeds, mutations, the record contract, a watchdog worker.

Shared by tests/test_fuzz.py (hypothesis, a bounded deterministic run in every test session) and
fuzz/run.py (long runs). Seeds are the headers of real camera files from the shared corpus
(found through corpus.py); mutations are plain data, `(kind, a, b)` with two unsigned 32-bit
ints, so hypothesis can shrink them and a random.Random can draw them the same way.

Every case runs in a separate worker process: a hang in C code (Pillow, libheif) cannot be
interrupted from Python, so the parent waits with a timeout and kills the worker instead; a
segfault shows up as a dead worker; RSS is read after every case.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import random
import resource
import shutil
import struct
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

from corpus import IMAGES, readable, require_corpus, truth

from catalog.record import PhotoRecord, RawTag

FORMATS = ("JPEG", "TIFF", "PNG", "WEBP", "HEIC")

# Real files from the shared corpus, a few per container, chosen for variety (maker notes, GPS,
# MPO index, DNG, ImageMagick raw profile, eXIf, iPhone HEIC/WebP). Missing ones are left out.
SEED_FILES: dict[str, tuple[str, ...]] = {
    "JPEG": (
        "exifsamples__jpg__Canon_40D.jpg",
        "exifsamples__jpg__gps__DSCN0029.jpg",
        "exiftool__t__images__Apple.jpg",
        "mei__jpg__Apple_iPhone_6.jpg",
        "pillow__Tests__images__exif_gps_typeerror.jpg",
        "pillow__Tests__images__frozenpond.mpo",
    ),
    "TIFF": (
        "exiftool__t__images__ExifTool.tif",
        "exifsamples__tiff__Arbitro.tiff",
        "exiftool__t__images__DNG.dng",
    ),
    "PNG": ("mei__png__sampleWithExifData.png", "pillow__Tests__images__exif_imagemagick.png"),
    "WEBP": (
        "pillow__Tests__images__hopper_orientation_6.webp",
        "mei__webp__Issue_473_(Java).webp",
    ),
    "HEIC": (
        "exifsamples__heic__samplefilehub.heif",
        "mei__heic__IMG_2927.HEIC",
        "mei__heic__Issue_263_dotnet.heic",
    ),
}
# A seed is the shortest of these prefixes from which extract() reads what it reads from the
# whole file: the header, small enough to mutate fast and to commit when a case fails.
_SEED_CUTS = (2048, 4096, 8192, 16384, 32768, 65536)
_MAX_GROWTH = 64 * 1024  # a mutated file never grows beyond its seed by more than this

Mutation = tuple[str, int, int]  # (kind, a, b): a picks a place, b a value
KINDS = (
    "flip",
    "byte",
    "truncate",
    "insert",
    "delete",
    "dup",
    "seg_dup",
    "seg_drop",
    "seg_len",
    "ifd",
    "entry",
)
U32 = 2**32 - 1


@dataclass(frozen=True, slots=True)
class Seed:
    name: str
    fmt: str
    data: bytes
    suffix: str  # extension of the original, so nothing depends on a guessed name

    def __repr__(self) -> str:  # hypothesis prints it in every falsifying example
        return f"<{self.fmt} seed {self.name}, {len(self.data)} bytes>"


# --- seeds -----------------------------------------------------------------------------------


def _fingerprint(record: PhotoRecord) -> tuple[object, ...]:
    return (
        record.format,
        record.make,
        record.model,
        record.captured_at,
        record.width,
        record.height,
        record.latitude,
        record.orientation,
        len(record.tags),
        record.error,
    )


@cache
def seeds(fmt: str) -> tuple[Seed, ...]:
    """The seeds of one container format (skips, or fails under CI, without the corpus)."""
    from catalog.extract import extract

    require_corpus()
    known = truth()
    found: list[Seed] = []
    scratch = Path(tempfile.mkdtemp(prefix="photocat-seed-"))
    try:
        for name in SEED_FILES[fmt]:
            if name not in known or not readable(known[name]) or not (IMAGES / name).is_file():
                continue
            data = (IMAGES / name).read_bytes()
            whole = _fingerprint(extract(IMAGES / name))
            probe = scratch / ("probe" + Path(name).suffix)
            for cut in _SEED_CUTS:
                probe.write_bytes(data[:cut])
                if cut >= len(data) or _fingerprint(extract(probe)) == whole:
                    found.append(Seed(name, fmt, data[:cut], Path(name).suffix.lower()))
                    break
        if fmt == "PNG" and "exifsamples__jpg__Canon_40D.jpg" in known:
            found.append(_png_exif_after_idat(IMAGES / "exifsamples__jpg__Canon_40D.jpg"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return tuple(found)


def _png_exif_after_idat(jpeg: Path) -> Seed:
    """A real camera EXIF block in an eXIf chunk after IDAT: the layout where extract() walks
    the chunks itself (Pillow's own getexif() would decode the pixels there)."""
    from PIL import Image

    with Image.open(jpeg) as im:
        exif = im.info["exif"].removeprefix(b"Exif\x00\x00")

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 24 * 8)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
    data += chunk(b"eXIf", exif) + chunk(b"IEND", b"")
    return Seed("Canon_40D EXIF in eXIf after IDAT", "PNG", data, ".png")


# --- mutations -------------------------------------------------------------------------------


def random_mutations(rng: random.Random) -> list[Mutation]:
    """What hypothesis draws, drawn with a plain RNG (for fuzz/run.py); structure-aware kinds
    are drawn more often since they reach deeper than random bytes."""
    count = min(8, 1 + int(rng.expovariate(0.6)))
    weights = (3, 3, 1, 1, 1, 1, 1, 1, 2, 5, 3)
    return [
        (rng.choices(KINDS, weights)[0], rng.getrandbits(32), rng.getrandbits(32))
        for _ in range(count)
    ]


def mutate(data: bytes, mutations: Sequence[Mutation]) -> bytes:
    """Apply mutations in order; each works on the result of the previous one."""
    buf = bytearray(data)
    limit = len(data) + _MAX_GROWTH
    for kind, a, b in mutations:
        _MUTATORS[kind](buf, a & U32, b & U32)
        del buf[limit:]
    return bytes(buf)


def _pos(buf: bytearray, a: int) -> int:
    """A position in buf; half of the draws land in the first 8 KiB, where headers are."""
    if not buf:
        return 0
    return (a >> 1) % (min(len(buf), 8192) if a & 1 else len(buf))


def _flip(buf: bytearray, a: int, b: int) -> None:
    if buf:
        buf[_pos(buf, a)] ^= 1 << (b % 8)


_INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x3A, 0x0A)


def _byte(buf: bytearray, a: int, b: int) -> None:
    if buf:
        value = _INTERESTING_BYTES[(b >> 1) % len(_INTERESTING_BYTES)] if b & 1 else (b >> 1) % 256
        buf[_pos(buf, a)] = value


def _truncate(buf: bytearray, a: int, b: int) -> None:
    del buf[_pos(buf, a) :]


def _insert(buf: bytearray, a: int, b: int) -> None:
    at, size = _pos(buf, a), 1 + b % 64
    if b & 0x100 or not buf:
        filler = bytes([(b >> 9) % 256]) * size
    else:
        start = (b >> 9) % len(buf)
        filler = bytes(buf[start : start + size])
    buf[at:at] = filler


def _delete(buf: bytearray, a: int, b: int) -> None:
    at = _pos(buf, a)
    del buf[at : at + 1 + b % 256]


def _dup(buf: bytearray, a: int, b: int) -> None:
    at = _pos(buf, a)
    piece = bytes(buf[at : at + 1 + b % 1024])
    buf[at:at] = piece


@dataclass(frozen=True, slots=True)
class Segment:
    """A container unit: JPEG marker segment, PNG chunk, RIFF chunk, ISOBMFF box."""

    start: int
    end: int
    length_at: int  # where its length field is
    length_size: int
    endian: str


def segments(buf: bytes | bytearray) -> list[Segment]:
    head = bytes(buf[:12])
    if head.startswith(b"\xff\xd8"):
        return _jpeg_segments(buf)
    if head.startswith(b"\x89PNG"):
        return _chunks(buf, 8, "big", header=8, trailer=4, length_first=True)
    if head.startswith(b"RIFF"):
        return _chunks(buf, 12, "little", header=8, trailer=0, length_first=False)
    if head[4:8] == b"ftyp":
        return _boxes(buf, 0, len(buf), depth=0)
    return []


def _jpeg_segments(buf: bytes | bytearray) -> list[Segment]:
    found: list[Segment] = []
    pos = 2
    while pos + 4 <= len(buf) and len(found) < 256:
        if buf[pos] != 0xFF:
            break
        marker = buf[pos + 1]
        if marker in (0x01, 0xD8, 0xFF) or 0xD0 <= marker <= 0xD7:
            pos += 2 if marker != 0xFF else 1
            continue
        if marker == 0xD9:
            break
        end = min(pos + 2 + int.from_bytes(buf[pos + 2 : pos + 4], "big"), len(buf))
        found.append(Segment(pos, end, pos + 2, 2, "big"))
        if marker == 0xDA or end <= pos:
            break
        pos = end
    return found


def _chunks(
    buf: bytes | bytearray, pos: int, endian: str, *, header: int, trailer: int, length_first: bool
) -> list[Segment]:
    found: list[Segment] = []
    while pos + header <= len(buf) and len(found) < 256:
        length_at = pos if length_first else pos + 4
        size = int.from_bytes(buf[length_at : length_at + 4], endian)
        end = min(pos + header + size + trailer + (0 if length_first else size & 1), len(buf))
        found.append(Segment(pos, end, length_at, 4, endian))
        pos = end
    return found


_CONTAINER_BOXES = {b"meta": 4, b"iprp": 0, b"ipco": 0, b"dinf": 0}


def _boxes(buf: bytes | bytearray, pos: int, end: int, depth: int) -> list[Segment]:
    found: list[Segment] = []
    while pos + 8 <= end and len(found) < 256:
        size = int.from_bytes(buf[pos : pos + 4], "big")
        box_end = min(pos + max(size, 8), end)
        found.append(Segment(pos, box_end, pos, 4, "big"))
        skip = _CONTAINER_BOXES.get(bytes(buf[pos + 4 : pos + 8]))
        if skip is not None and depth < 3:
            found += _boxes(buf, pos + 8 + skip, box_end, depth + 1)
        pos = box_end
    return found


def _pick(items: Sequence[Any], a: int) -> Any:
    return items[a % len(items)] if items else None


def _seg_dup(buf: bytearray, a: int, b: int) -> None:
    found = segments(buf)
    seg: Segment | None = _pick(found, a)
    if seg is None:
        return _dup(buf, a, b)
    target: Segment = _pick(found, b)
    piece = bytes(buf[seg.start : seg.end])
    at = target.end if b & 1 else target.start
    buf[at:at] = piece


def _seg_drop(buf: bytearray, a: int, b: int) -> None:
    seg: Segment | None = _pick(segments(buf), a)
    if seg is None:
        return _delete(buf, a, b)
    del buf[seg.start : seg.end]


_BOUNDS = {
    2: (0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF),
    4: (
        *(0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000),
        *(0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF),
    ),
}


def _write(buf: bytearray, at: int, size: int, endian: str, value: int) -> None:
    if at + size <= len(buf):
        buf[at : at + size] = (value & (2 ** (8 * size) - 1)).to_bytes(size, endian)


def _boundary(b: int, size: int, relative: Sequence[int]) -> int:
    """b picks a boundary value (or, with its low bit set, is itself the raw value)."""
    if b & 1:
        return b >> 1
    candidates = (*_BOUNDS[size], *relative)
    return candidates[(b >> 1) % len(candidates)]


def _seg_len(buf: bytearray, a: int, b: int) -> None:
    seg: Segment | None = _pick(segments(buf), a)
    if seg is None:
        return _byte(buf, a, b)
    actual = seg.end - seg.start
    relative = (actual - 1, actual + 1, len(buf) - seg.start, len(buf) - seg.start + 1, 2 * actual)
    _write(buf, seg.length_at, seg.length_size, seg.endian, _boundary(b, seg.length_size, relative))


class IfdField(NamedTuple):  # a tuple: thousands are made per mutation, so it must be cheap
    """One integer of a TIFF structure: an entry's tag/type/count/value, an IFD's entry count,
    a next-IFD pointer, or the numerator/denominator of a RATIONAL value."""

    at: int
    size: int
    endian: str
    kind: str
    base: int  # where its TIFF header starts (offsets are relative to it)


_POINTER_TAGS = frozenset({0x8769, 0x8825, 0xA005, 0x014A})
_TAG_VALUES = (
    *(0x0000, 0x8769, 0x8825, 0xA005, 0x014A, 0x0112, 0x010F, 0x0110, 0x0131, 0x0132, 0x9003),
    *(0x9004, 0x9011, 0x9291, 0x829A, 0x829D, 0x8827, 0x920A, 0xA434, 0xA431, 0xC612, 0xC62F),
    *(0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x001D, 0x927C, 0x9286, 0x02BC),
    *(0x9C9B, 0x0201, 0x0202, 0x0100, 0x0101, 0x0111, 0x0117, 0x8773, 0xFFFF),
)
_TYPE_VALUES = (*range(0, 14), 16, 17, 18, 0x7FFF, 0xFFFF)


def ifd_fields(buf: bytes | bytearray) -> list[IfdField]:
    """Every IFD integer reachable from the first TIFF headers found anywhere in buf (TIFF
    files, JPEG APP1, PNG eXIf, WebP EXIF, HEIC Exif items, maker notes with their own header)."""
    found: list[IfdField] = []
    start = 0
    data = bytes(buf)
    for _ in range(4):
        hits = [i for i in (data.find(b"II*\x00", start), data.find(b"MM\x00*", start)) if i >= 0]
        if not hits:
            break
        base = min(hits)
        found += _walk_tiff(data, base)
        start = base + 4
    return found


def _walk_tiff(data: bytes, base: int) -> list[IfdField]:
    endian = "little" if data[base] == 0x49 else "big"
    order = "<" if endian == "little" else ">"
    short, long, entry_of = (
        struct.Struct(order + "H"),
        struct.Struct(order + "I"),
        struct.Struct(order + "HHII"),
    )
    size = len(data)

    def f(at: int, width: int, kind: str) -> IfdField:
        return IfdField(at, width, endian, kind, base)

    found = [f(base + 4, 4, "pointer")]
    todo = [long.unpack_from(data, base + 4)[0]] if base + 8 <= size else []
    seen: set[int] = set()
    while todo and len(seen) < 16:
        offset = todo.pop()
        at = base + offset
        if offset in seen or at + 2 > size:
            continue
        seen.add(offset)
        (count,) = short.unpack_from(data, at)
        found.append(f(at, 2, "entry_count"))
        for entry in range(at + 2, min(at + 2 + 12 * min(count, 256), size - 11), 12):
            tag, kind, n, value = entry_of.unpack_from(data, entry)
            found += (
                f(entry, 2, "tag"),
                f(entry + 2, 2, "type"),
                f(entry + 4, 4, "count"),
                f(entry + 8, 4, "pointer" if tag in _POINTER_TAGS else "value"),
            )
            if tag in _POINTER_TAGS:
                todo.append(value)
            if kind in (5, 10) and n * 8 > 4:
                for where in range(base + value, min(base + value + 8 * min(n, 3), size - 7), 8):
                    found += (f(where, 4, "numerator"), f(where + 4, 4, "denominator"))
        after = at + 2 + 12 * count
        if after + 4 <= size:
            found.append(f(after, 4, "pointer"))
            todo.append(long.unpack_from(data, after)[0])
    return found


def _ifd(buf: bytearray, a: int, b: int) -> None:
    fields = ifd_fields(buf)
    target: IfdField | None = _pick(fields, a)
    if target is None:
        return _byte(buf, a, b)
    if target.kind == "tag" and not b & 1:
        value = _TAG_VALUES[(b >> 1) % len(_TAG_VALUES)]
    elif target.kind == "type" and not b & 1:
        value = _TYPE_VALUES[(b >> 1) % len(_TYPE_VALUES)]
    else:
        size = len(buf) - target.base
        here = target.at - target.base
        relative = (size - 1, size, size + 1, size - 12, here, here - 2, here + 4)
        value = _boundary(b, target.size, relative if target.size == 4 else ())
    _write(buf, target.at, target.size, target.endian, value)


_ENTRY_TYPES = (3, 4, 8, 9, 5, 10, 2, 7, 1, 6, 11, 12, 0, 13)
_ENTRY_COUNTS = (1, 0, 2, 3, 4, 5, 8, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF)


def _entry(buf: bytearray, a: int, b: int) -> None:
    """Rewrite one IFD entry's type, count and value together: an ISO as LONG 0xFFFFFFFF, a
    width of 2**32-1, a 4-billion-character ASCII Make, a RATIONAL pointing at itself..."""
    target: IfdField | None = _pick([f for f in ifd_fields(buf) if f.kind == "type"], a)
    if target is None:
        return _byte(buf, a, b)
    kind = _ENTRY_TYPES[b % len(_ENTRY_TYPES)]
    b //= len(_ENTRY_TYPES)
    count = _ENTRY_COUNTS[b % len(_ENTRY_COUNTS)]
    b //= len(_ENTRY_COUNTS)
    size = len(buf) - target.base
    value = _boundary(b, 4, (size - 1, size - 8, target.at - 2 - target.base))
    _write(buf, target.at, 2, target.endian, kind)
    _write(buf, target.at + 2, 4, target.endian, count)
    _write(buf, target.at + 6, 4, target.endian, value)


_MUTATORS: dict[str, Callable[[bytearray, int, int], None]] = {
    "flip": _flip,
    "byte": _byte,
    "truncate": _truncate,
    "insert": _insert,
    "delete": _delete,
    "dup": _dup,
    "seg_dup": _seg_dup,
    "seg_drop": _seg_drop,
    "seg_len": _seg_len,
    "ifd": _ifd,
    "entry": _entry,
}


# --- the record contract ---------------------------------------------------------------------

_TEXT = {
    "format": 16,
    "make": 255,  # the device key, indexed: see extract.MAX_NAME
    "model": 255,
    "lens_model": None,
    "serial": None,
    "software": None,
    "captured_from": 32,
    "subsec": 16,
    "offset": 6,
    "offset_from": 32,
    "time_source": 16,
    "time_zone": 64,
    "error": None,
}  # field -> the catalog column's length limit (PostgreSQL enforces it), None for TEXT
_INTS = ("width", "height", "orientation", "iso")  # INTEGER columns: signed 32-bit
_FLOATS = ("latitude", "longitude", "altitude", "exposure_time", "f_number", "focal_length")
_TIMES = ("captured_at", "captured_at_utc", "gps_time_utc")
_IFDS = frozenset({"IFD0", "Exif", "GPS", "Interop", "IFD1", "XMP"})
INT32_MAX = 2**31 - 1


def _text_problem(where: str, value: object, *, single_line: bool = False) -> str | None:
    if not isinstance(value, str):
        return f"{where} is {type(value).__name__}, not str"
    if "\0" in value:
        return f"{where} holds NUL"
    try:
        value.encode("utf-8")  # lone surrogates would break SQLite, PostgreSQL and JSON output
    except UnicodeEncodeError:
        return f"{where} is not valid Unicode (lone surrogate)"
    if single_line and ("\n" in value or "\r" in value):
        return f"{where} spans several lines: {value[:80]!r}"  # warnings are stored \n-joined
    return None


def record_problems(record: object) -> list[str]:
    """Everything wrong with a record against the PhotoRecord contract; [] when well formed."""
    if not isinstance(record, PhotoRecord):
        return [f"extract() returned {type(record).__name__}, not PhotoRecord"]
    problems: list[str] = []

    def add(problem: str | None) -> None:
        if problem:
            problems.append(problem)

    for name, limit in _TEXT.items():
        value = getattr(record, name)
        if value is not None:
            add(_text_problem(name, value, single_line=name == "error"))
            if isinstance(value, str) and limit is not None and len(value) > limit:
                add(f"{name} is {len(value)} characters; the catalog column holds {limit}")
    for name in _INTS:
        value = getattr(record, name)
        if value is not None and (type(value) is not int or not 0 <= value <= INT32_MAX):
            add(f"{name} {value!r} is not an int in 0..2**31-1")
    if record.orientation is not None and not 1 <= record.orientation <= 8:
        add(f"orientation {record.orientation!r} is not 1..8")
    for name in ("width", "height"):
        if getattr(record, name) == 0:
            add(f"{name} is 0 (unknown must be None)")
    for name in _FLOATS:
        value = getattr(record, name)
        if value is not None and (type(value) is not float or not math.isfinite(value)):
            add(f"{name} {value!r} is not a finite float")
    if record.latitude is not None and not -90 <= record.latitude <= 90:
        add(f"latitude {record.latitude} out of range")
    if record.longitude is not None and not -180 <= record.longitude <= 180:
        add(f"longitude {record.longitude} out of range")
    for name in _TIMES:
        value = getattr(record, name)
        if value is not None and (type(value) is not datetime or value.tzinfo is not None):
            add(f"{name} {value!r} is not a naive datetime")
    if not isinstance(record.tags, list):
        add("tags is not a list")
    else:
        for tag in record.tags:
            if not isinstance(tag, RawTag):
                add(f"tag {tag!r} is not a RawTag")
                continue
            if tag.ifd not in _IFDS or type(tag.tag_id) is not int or not 0 <= tag.tag_id < 2**16:
                add(f"tag {tag.ifd}/{tag.tag_id!r} is not a known IFD / 16-bit id")
            add(_text_problem(f"tag {tag.ifd}/{tag.name} name", tag.name))
            add(_text_problem(f"tag {tag.ifd}/{tag.name} value", tag.value))
    if not isinstance(record.warnings, list):
        add("warnings is not a list")
    else:
        for warning in record.warnings:
            add(_text_problem("warning", warning, single_line=True))
    for text in [record.error or "", *(w for w in record.warnings if isinstance(w, str))]:
        if "MemoryError" in text:
            add(f"ran out of memory: {text[:200]}")
    return problems


# --- running cases in a watchdog worker --------------------------------------------------------

TIMEOUT = float(os.environ.get("PHOTOCAT_FUZZ_TIMEOUT", "5"))  # seconds per case
ADDRESS_SPACE = 2 * 1024**3  # worker's RLIMIT_AS: a bomb fails to allocate instead of swapping
PEAK_LIMIT_MIB = 256  # peak RSS over the warmed-up worker's, for any single case
GROWTH_LIMIT_MIB = 64  # RSS growth over a whole run (a leak)
_WARMUP = 20


@dataclass(slots=True)
class Outcome:
    record: PhotoRecord | None
    problems: list[str]
    elapsed: float
    rss_kib: int = 0
    peak_kib: int = 0


def _memory_kib() -> tuple[int, int]:
    """(current RSS, peak RSS since the last _reset_peak) of this process, in KiB.

    Linux: VmRSS / VmHWM. Not ru_maxrss: it survives exec, so a worker spawned by a big pytest
    process would start out "using" the parent's peak. Elsewhere ru_maxrss is all there is.
    """
    try:
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux >= 4.0), so each case's own peak is measured."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _worker(conn: Connection, folder: str) -> None:
    """Child process: extract one file per message; report the record, net hits, time, RSS."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > ADDRESS_SPACE:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, hard))
    import catalog.extract as extraction

    conn.send("ready")  # imports done: the per-case timeout starts counting from here

    inner = extraction._extract
    caught: list[str] = []

    def traced(path: str, record: PhotoRecord) -> None:
        # extract()'s last-resort `except Exception` keeps the record but loses every field not
        # read yet: for the fuzzer an exception reaching it is a bug to fix, so note it.
        try:
            inner(path, record)
        except Exception:
            caught.append(traceback.format_exc(limit=-6))
            raise

    extraction._extract = traced
    while True:
        message = conn.recv()
        if message is None:
            return
        data, suffix = message
        path = os.path.join(folder, "case" + suffix)
        with open(path, "wb") as fh:
            fh.write(data)
        caught.clear()
        _reset_peak()
        started = time.perf_counter()
        try:
            record: Any = extraction.extract(path)
            raised = None
        except BaseException:  # reported to the parent, which fails the case
            record, raised = None, traceback.format_exc(limit=-6)
        elapsed = time.perf_counter() - started
        os.unlink(path)
        rss, peak = _memory_kib()
        conn.send((record, raised, list(caught), elapsed, rss, peak))


class Runner:
    """Runs cases in a worker process, with a timeout per case and RSS bounds over the run."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.cases = 0
        self.restarts = 0
        self.slowest = 0.0
        self.baseline_kib = 0
        self.last_rss_kib = 0
        self._folder = tempfile.mkdtemp(prefix="photocat-fuzz-")
        self._context = multiprocessing.get_context("spawn")  # no inherited locks or threads
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(
            target=_worker, args=(child, self._folder), daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(120) or self._conn.recv() != "ready":
            raise RuntimeError("the fuzzing worker did not start")
        self._started_at = self.cases

    def _restart(self) -> None:
        self._process.kill()
        self._process.join()
        self._conn.close()
        self.restarts += 1
        self._start()

    def run(self, data: bytes, suffix: str = ".jpg") -> Outcome:
        self.cases += 1
        self._conn.send((data, suffix))
        if not self._conn.poll(self.timeout):
            self._restart()
            return Outcome(None, [f"hang: no result within {self.timeout:g} s"], self.timeout)
        try:
            record, raised, caught, elapsed, rss, peak = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(1)
            code = self._process.exitcode
            self._restart()
            return Outcome(None, [f"crash: the worker died (exit code {code})"], 0.0)
        self.slowest = max(self.slowest, elapsed)
        self.last_rss_kib = rss
        if self.cases - self._started_at == _WARMUP:
            self.baseline_kib = max(self.baseline_kib, rss)
        problems = [f"extract() raised:\n{raised}"] if raised else record_problems(record)
        problems += [f"extract() needed its last-resort safety net:\n{tb}" for tb in caught]
        if self.baseline_kib and (peak - self.baseline_kib) / 1024 > PEAK_LIMIT_MIB:
            problems.append(f"peak RSS {peak // 1024} MiB, {PEAK_LIMIT_MIB} MiB over the baseline")
        return Outcome(record, problems, elapsed, rss, peak)

    def growth_mib(self) -> float:
        """RSS growth of the worker since warm-up (0 before warm-up)."""
        if not self.baseline_kib:
            return 0.0
        return (self.last_rss_kib - self.baseline_kib) / 1024

    def close(self) -> None:
        try:
            self._conn.send(None)
            self._process.join(5)
        except OSError:
            pass
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        shutil.rmtree(self._folder, ignore_errors=True)


# --- failures --------------------------------------------------------------------------------


def signature(problems: Sequence[str]) -> str:
    """What a failure is about, stable under minimisation: the first problem's first line and,
    for a traceback, its innermost frame."""
    first = problems[0]
    lines = [line.strip() for line in first.splitlines() if line.strip()]
    frames = [line for line in lines if line.startswith("File ")]
    return " | ".join([lines[0], *(frames[-1:]), *(lines[-1:] if frames else [])])


def minimise(data: bytes, fails: Callable[[bytes], bool], budget: int = 400) -> bytes:
    """Shrink a failing file while `fails` holds: cut the tail, then delete ever smaller blocks
    (a simple ddmin), so what gets committed under tests/data/fuzz/ is small."""
    tries = 0
    low, high = 1, len(data)
    while low < high and tries < budget:  # shortest failing prefix, by bisection
        middle = (low + high) // 2
        tries += 1
        if fails(data[:middle]):
            high = middle
        else:
            low = middle + 1
    data = data[:high] if fails(data[:high]) else data
    block = max(1, len(data) // 2)
    while block >= 1 and tries < budget:
        at = 0
        while at < len(data) and tries < budget:
            candidate = data[:at] + data[at + block :]
            tries += 1
            if candidate and fails(candidate):
                data = candidate
            else:
                at += block
        block //= 2
    return data


def describe(record: PhotoRecord | None) -> dict[str, Any]:
    """A record as plain JSON-able data, for failure reports."""
    if record is None:
        return {}
    out = {}
    for f in dataclasses.fields(PhotoRecord):
        value = getattr(record, f.name)
        if f.name == "tags":
            value = len(value)
        out[f.name] = value if isinstance(value, int | float | str | list | None) else repr(value)
    return out
