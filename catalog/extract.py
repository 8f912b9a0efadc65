"""Path -> PhotoRecord: header-only EXIF extraction with Pillow + pillow-heif. Never raises.

Only headers are read, pixel data is never decoded: a 100-megapixel photo costs about what a
thumbnail does. Format is detected by content, never by extension. Traps this module steps around:

* `PngImageFile.getexif()` calls `load()` (decodes every pixel) when the eXIf chunk comes after
  IDAT, so PNG chunks are walked here, seeking over IDAT, and the eXIf / ImageMagick
  "Raw profile type exif" bytes are handed to `Image.Exif().load()`.
* `Image.getexif()` copies an XMP `tiff:Orientation` into IFD0 when the EXIF has none; the catalog
  reports EXIF only, so that injected value is dropped.
* pillow-heif's Pillow plugin rewrites the EXIF Orientation to 1 (it applies irot/imir itself) and
  reports the size after irot (Pillow's own AVIF plugin does the same). HEIC and AVIF therefore go
  through `pillow_heif.open_heif()`, which keeps the EXIF as stored, and the primary item's `ispe`
  size (before irot, as ExifTool reports it) is read from the `meta` box here.
* Image.open raises DecompressionBombError for huge pixel counts although nothing is decoded here;
  such files are re-opened with the limit lifted (briefly, under a lock) so metadata is still read.
* Pillow reports corrupt EXIF through `warnings` and some header problems through `logging`; both
  become `record.warnings`. If Pillow rejects a damaged JPEG header, the markers are walked here
  for whatever Exif segment and frame size are still there (the record keeps `error` set).

Camera raws that are TIFF inside (DNG, CR2, NEF, ARW, PEF...) are read like any TIFF; DNG and
CR2 are named by their content, the others (plain TIFF inside) by their extension as ExifTool
does, and their size is that of the full-resolution image, not IFD0's preview (_tiff_raw).

Known limits: Pillow's WebP plugin and libheif read the whole file into memory (they still decode
nothing); RAF, MRW, RW2, ORF, CR3... are error rows (Pillow cannot identify them) named by their
signature.

Pillow's warnings are captured with `warnings.catch_warnings`, which is process-global: run one
extraction per thread at a time (use processes for parallelism).
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import re
import stat
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import IO, Any

from PIL import ExifTags, Image, ImageFile, TiffImagePlugin, UnidentifiedImageError
from PIL.TiffImagePlugin import TiffImageFile

from catalog import plain_jpeg, when
from catalog.errors import describe, one_line
from catalog.exif_values import (
    capture_time,
    clean_text,
    finite_float,
    first_int,
    gps_altitude,
    gps_coordinate,
    gps_timestamp,
    render_value,
)
from catalog.record import PhotoRecord, RawTag, add_warning

# What Image.open may identify. Keeping Pillow's exotic plugins out means junk is never
# "recognised" as, say, a TGA by a loose header check. MPO is produced by the JPEG factory.
PHOTO_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "GIF", "BMP")

GIGAPIXEL = 1_000_000_000
INT32_MAX = 2**31 - 1  # the catalog's INTEGER columns (PostgreSQL rejects anything larger)
MAX_NAME = 255  # make/model: the device key, indexed (a PostgreSQL btree entry holds ~2.7 kB)
_HEAD_SIZE = 256  # enough for every signature below and a HEIF ftyp brand list
_MAX_CHUNK = 64 * 1024 * 1024  # cap for one PNG EXIF chunk or HEIF meta box read into memory

IFD_EXIF = int(ExifTags.IFD.Exif)
IFD_GPS = int(ExifTags.IFD.GPSInfo)
IFD_INTEROP = int(ExifTags.IFD.Interop)
IFD_1 = int(ExifTags.IFD.IFD1)
_ORIENTATION = int(ExifTags.Base.Orientation)
_DNG_VERSION = 0xC612

_NAMES: dict[str, dict[int, str]] = {
    "IFD0": ExifTags.TAGS,
    "Exif": ExifTags.TAGS,
    "GPS": ExifTags.GPSTAGS,
    "Interop": {**ExifTags.TAGS, **{int(tag): tag.name for tag in ExifTags.Interop}},
    "IFD1": ExifTags.TAGS,
}

# Camera raw formats Pillow cannot identify: named in the error row instead of "unknown".
_RAW_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"FUJIFILMCCD-RAW", "RAF"),
    (0, b"\x00MRM", "MRW"),
    (0, b"IIU\x00", "RW2"),
    (0, b"IIRO", "ORF"),
    (0, b"IIRS", "ORF"),
    (0, b"MMOR", "ORF"),
    (0, b"FOVb", "X3F"),
    (4, b"ftypcrx ", "CR3"),
    (0, b"II\x1a\x00\x00\x00HEAPCCDR", "CRW"),
)
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
# Camera raws that are plain TIFF inside, by extension, named as ExifTool names them.
_TIFF_RAWS = ("NEF", "NRW", "ARW", "SRF", "SR2", "PEF", "IIQ", "3FR", "ERF", "KDC", "SRW")
_TIFF_RAW_EXTENSIONS = {f".{name.lower()}": name for name in _TIFF_RAWS}
_NEW_SUBFILE_TYPE = 0x00FE
_SUB_IFDS = 0x014A
_MAX_SUB_IFDS = 8  # raws have 1-3; a hostile list of thousands is not walked
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC
_HEIC_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_RAW_PROFILE_KEYS = (b"Raw profile type exif", b"Raw profile type APP1")
_RAW_PROFILE = re.compile(r"\s*\S+\s+(\d+)\s+(.*)", re.DOTALL)  # "\nexif\n   1234\n4578..."
_XMP_ORIENTATION = re.compile(rb"tiff:Orientation")

# Plain JPEGs (most photos) take catalog.plain_jpeg's fast path; False reads every file through
# Pillow (the tests compare the two).
FAST_JPEG = True

_BOMB_LOCK = threading.Lock()
_PIL_LOGGER = logging.getLogger("PIL")


def extract(
    path: str | os.PathLike[str], data: bytes | IO[bytes] | None = None, *, with_time: bool = True
) -> PhotoRecord:
    """Read one file's metadata. Never raises: problems become `error` / `warnings`.
    `data`: the file's bytes when they are already read whole (a small file, read once for its
    digest too), or the file already open (read from its start, left open, its position moved);
    a plain JPEG is then parsed from them, any other file still read from `path`."""
    record = _plain_jpeg(path, data) if FAST_JPEG else None
    if record is None:
        record = _pillow_record(path)
    if with_time:  # the UTC instant: EXIF offset, else GPS clock, else zone at the position
        when.apply(record)
    return record


def _plain_jpeg(
    path: str | os.PathLike[str], data: bytes | IO[bytes] | None = None
) -> PhotoRecord | None:
    """The record of a plain JPEG, by catalog.plain_jpeg (from `data`, else from the file at
    `path`); None for any other file (or any surprise), which _pillow_record then reads. No
    Pillow reader runs here, so there are no Pillow warnings or log messages to capture
    (capturing them costs ~20% of a fast read)."""
    try:
        with _opened(path, data) as fp:
            if fp.read(3) != b"\xff\xd8\xff":
                return None
            plain = plain_jpeg.read(fp)
            if plain is None:
                return None
            record = PhotoRecord(format="JPEG")
            _set_size(record, plain.width, plain.height)
            if plain.exif is not None:  # duck-types the Image.Exif that _read_exif reads
                _read_exif(plain.exif, _ifd0_offset(plain.raw), len(plain.raw), record)
            _add_xmp(record, plain.xmp)
            _add_extended_xmp(record, plain.xmp_extension)
            return record
    except Exception:
        return None


def _opened(
    path: str | os.PathLike[str], data: bytes | IO[bytes] | None
) -> AbstractContextManager[IO[bytes]]:
    """The file to parse, at its start: `data` as a file, the caller's open file (not closed
    here), or the file at `path`."""
    if data is None:
        return open_regular(path)
    if isinstance(data, bytes):
        return io.BytesIO(data)
    data.seek(0)
    return nullcontext(data)


def _pillow_record(path: str | os.PathLike[str]) -> PhotoRecord:
    """Any file's record through Pillow, its warnings and log messages captured."""
    record = PhotoRecord()
    logged: list[str] = []
    _PIL_LOG_CAPTURE.sink.messages = logged
    _PIL_LOGGER.addHandler(_PIL_LOG_CAPTURE)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                _extract(path, record)
            except Exception as exc:  # any reader bug or hostile file: keep what was read
                record.error = record.error or f"metadata extraction failed ({describe(exc)})"
    finally:
        _PIL_LOGGER.removeHandler(_PIL_LOG_CAPTURE)
        _PIL_LOG_CAPTURE.sink.messages = None
    for warning in caught:
        # Bomb warnings are about decoding, which we never do; our own check is in _set_size.
        if not issubclass(warning.category, Image.DecompressionBombWarning | ResourceWarning):
            add_warning(record, "Pillow: " + " ".join(str(warning.message).split()))
    for message in logged:
        add_warning(record, f"Pillow: {message}")
    return record


class _LogCapture(logging.Handler):
    """Collects what Pillow logs at WARNING and above (e.g. a corrupt TIFF header) for one file.

    Attached to the "PIL" logger only while extract() runs (so Pillow's logging is untouched
    otherwise); one instance, since creating a Handler per file is surprisingly costly.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.sink = threading.local()  # .messages: the list of the extraction in this thread

    def emit(self, record: logging.LogRecord) -> None:
        messages = getattr(self.sink, "messages", None)
        if messages is not None:
            messages.append(" ".join(record.getMessage().split()))


_PIL_LOG_CAPTURE = _LogCapture()


# --- containers ------------------------------------------------------------------------------


def _extract(path: str | os.PathLike[str], record: PhotoRecord) -> None:
    try:
        fp = open_regular(path)  # closed below; kept open for lazy IFD reads
    except OSError as exc:
        record.error = f"cannot read file ({exc.strerror or exc})"
        return
    with fp:
        head = fp.read(_HEAD_SIZE)
        if not head:
            record.error = "empty file"
            return
        heif_format = _heif_format(head)
        if heif_format is not None:
            _read_heif(fp, heif_format, record)
            return
        try:
            im = _pillow_open(fp)
        except UnidentifiedImageError:
            if head[:4] in _TIFF_MAGIC:
                _read_tiff_without_pillow(path, fp, head, record)
                return
            record.format = _raw_format(head)
            record.error = f"not a recognised image ({_what_is_it(head, record.format)})"
            return
        except Exception as exc:  # recognised, but Pillow failed inside the header (truncated...)
            record.error = f"damaged image header ({describe(exc)})"
            if head.startswith(b"\xff\xd8\xff"):
                _salvage_jpeg(fp, record)
            return
        record.format = _format_name(im)
        _set_size(record, *im.size)
        exif, ifd0_offset, data_size = _exif_of(im, fp, head, record)
        if exif is not None:
            _read_exif(exif, ifd0_offset, data_size, record)
        _add_xmp(record, im.info.get("xmp"))  # JPEG's APP1, PNG's iTXt, WebP's chunk, TIFF's tag
        if record.format in ("JPEG", "MPO"):
            applist = getattr(im, "applist", ())
            extension = [s for m, s in applist if m == "APP1" and s.startswith(XMP_EXTENSION)]
            _add_extended_xmp(record, extension)
        if isinstance(im, TiffImageFile):
            _tiff_raw(path, fp, head, im.tag_v2 if exif is None else exif, record)


def open_regular(
    path: str | os.PathLike[str], *, follow_symlinks: bool = True, buffered: bool = True
) -> IO[bytes]:
    """Open a file for reading only if it is a regular file, without ever blocking: a FIFO named
    like a photo would wait forever for a writer and a device (/dev/zero) never ends, so both
    raise OSError instead; with follow_symlinks=False a symbolic link does too (a file swapped
    for a link after the folder walk saw it). `buffered=False`: a raw file, for reading a whole
    file in large blocks (hashing: ~10 us a file less than through a buffer)."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # none on Windows, nor os.set_blocking (< 3.12)
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_symlinks:
            raise OSError(errno.ELOOP, "a symbolic link, not followed", os.fspath(path)) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (FIFO, device or socket)")
        if nonblocking:  # opened without blocking; a read must never come back empty
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=-1 if buffered else 0)
    except BaseException:
        os.close(fd)
        raise


def _pillow_open(fp: IO[bytes]) -> ImageFile.ImageFile:
    try:
        return Image.open(fp, formats=PHOTO_FORMATS)
    except Image.DecompressionBombError:
        # The pixel limit protects decoding, which never happens here; metadata must still be
        # read. Lift it for this one open only, under a lock (the limit is a Pillow global).
        with _BOMB_LOCK:
            saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
            try:
                return Image.open(fp, formats=PHOTO_FORMATS)
            finally:
                Image.MAX_IMAGE_PIXELS = saved


def _format_name(im: ImageFile.ImageFile) -> str:
    fmt = im.format or "unknown"
    if fmt == "MPO" and _only_previews(getattr(im, "mpinfo", None)):
        # Pillow says MPO for any MP index with 2+ images; a JPEG whose extra images are just its
        # own large preview (cameras, phones) is still a JPEG to people (and to ExifTool).
        return "JPEG"
    return fmt  # a TIFF's raw flavour (DNG, CR2, NEF...) is named by _tiff_raw


def _only_previews(mpinfo: object) -> bool:
    try:
        entries = mpinfo[0xB002]  # type: ignore[index]
        return all(e["Attribute"]["MPType"].startswith("Large Thumbnail") for e in entries[1:])
    except (TypeError, KeyError, IndexError, AttributeError):
        return False


def _set_size(record: PhotoRecord, width: int, height: int) -> None:
    if width > INT32_MAX or height > INT32_MAX:  # TIFF LONGs reach 2**32-1; no image is that big
        add_warning(record, f"claims {width}x{height} pixels, beyond any real image; size ignored")
        return
    if width > 0 and height > 0:
        record.width, record.height = width, height
        if width * height > GIGAPIXEL:
            add_warning(
                record,
                f"claims {width}x{height} pixels ({width * height / GIGAPIXEL:.1f} gigapixels):"
                " likely a decompression bomb, never decode it",
            )


def _exif_of(
    im: ImageFile.ImageFile, fp: IO[bytes], head: bytes, record: PhotoRecord
) -> tuple[Image.Exif | None, int | None, int]:
    """The file's EXIF as a Pillow Exif, plus IFD0's offset and the data size (loop guards)."""
    if im.format == "PNG":
        payload = _png_exif_payload(im, fp, record)
        return _exif_from_bytes(payload, record), _ifd0_offset(payload), len(payload or b"")
    if isinstance(im, TiffImageFile):
        size = os.fstat(fp.fileno()).st_size
        try:
            exif = im.getexif()  # IFD0 of the file itself, read from fp
        except Exception as exc:
            # Pillow's XMP-orientation lookup raises TypeError when the XMP tag is typed ASCII
            # (a str searched with a bytes pattern): read IFD0 without that lookup.
            add_warning(record, f"Pillow could not read IFD0 ({describe(exc)}); read without it")
            exif = Image.Exif()
            fp.seek(0)
            try:
                exif.load_from_fp(fp)
            except Exception as again:
                add_warning(record, f"IFD0 unreadable ({describe(again)})")
                return None, None, 0
            return exif, _ifd0_offset(head), size
        if _ORIENTATION in exif and _ORIENTATION not in im.tag_v2:
            del exif[_ORIENTATION]  # injected from XMP by Pillow, not EXIF
        return exif, _ifd0_offset(head), size
    raw = im.info.get("exif")
    if not isinstance(raw, bytes) or not raw:
        return None, None, 0
    try:
        exif = im.getexif()  # JPEG already parsed IFD0 while opening (for DPI): reuse it
    except Exception:
        exif = Image.Exif()  # re-read below, which reports the error
    xmp = im.info.get("xmp")
    injected = (
        _ORIENTATION in exif and isinstance(xmp, bytes) and bool(_XMP_ORIENTATION.search(xmp))
    )
    if len(exif) == 0 or injected:
        # Either Pillow swallowed an error (re-read to report it) or may have added the XMP
        # orientation: parse the stored bytes afresh.
        return _exif_from_bytes(raw, record), _ifd0_offset(raw), len(raw)
    return exif, _ifd0_offset(raw), len(raw)


def _exif_from_bytes(payload: bytes | None, record: PhotoRecord) -> Image.Exif | None:
    if not payload:
        return None
    exif = Image.Exif()
    try:
        exif.load(payload)
    except Exception as exc:
        add_warning(record, f"EXIF block unreadable ({describe(exc)})")
        return None
    return exif


def _ifd0_offset(data: bytes | None) -> int | None:
    """Where IFD0 starts, from a TIFF header (optionally behind "Exif\\0\\0")."""
    if not data:
        return None
    for _ in range(2):  # Pillow tolerates the prefix twice, so do we
        if data.startswith(b"Exif\x00\x00"):
            data = data[6:]
    if data[:4] == b"II*\x00":
        return int.from_bytes(data[4:8], "little")
    if data[:4] == b"MM\x00*":
        return int.from_bytes(data[4:8], "big")
    if data[:4] in (b"II+\x00", b"MM\x00+"):  # BigTIFF
        return int.from_bytes(data[8:16], "little" if data[0] == 0x49 else "big")
    return None


def _read_tiff_without_pillow(
    path: str | os.PathLike[str], fp: IO[bytes], head: bytes, record: PhotoRecord
) -> None:
    """A TIFF (often a camera raw) whose pixel layout Pillow rejects: its IFDs are still EXIF."""
    record.format = "TIFF"  # its raw flavour named by _tiff_raw, once IFD0 is read
    add_warning(
        record, "Pillow cannot open this TIFF's image data; metadata read from its IFDs only"
    )
    exif = Image.Exif()
    fp.seek(0)
    try:
        exif.load_from_fp(fp)
    except Exception as exc:  # header cut short (struct.error) or IFD0 beyond the file
        record.error = f"damaged image header ({describe(exc)})"
        return
    width, height = first_int(exif.get(0x0100)), first_int(exif.get(0x0101))
    if width and height:
        _set_size(record, width, height)
    _read_exif(exif, _ifd0_offset(head), os.fstat(fp.fileno()).st_size, record)
    _add_xmp(record, exif.get(XMP_TAG))
    _tiff_raw(path, fp, head, exif, record)


def _tiff_raw(
    path: str | os.PathLike[str], fp: IO[bytes], head: bytes, ifd0: Any, record: PhotoRecord
) -> None:
    """What a TIFF-based camera raw is, and the size of its main image, as ExifTool says them.

    The content says TIFF (DNG and CR2 are told apart by it); the other raws are plain TIFF
    inside, and ExifTool names them by their extension: so does photocat, for a TIFF only (a
    JPEG named .nef is still a JPEG). The main image is IFD0's unless IFD0 does not say it is
    the full-resolution image (NewSubfileType 0) and a SubIFD does: DNG's and NEF's IFD0 is a
    small preview (NewSubfileType 1). ExifTool gives that IFD's tags priority the same way.
    For CR2 and IIQ it is the Exif IFD's ExifImageWidth/Height."""
    if _DNG_VERSION in ifd0:
        record.format = "DNG"
    elif head[8:10] == b"CR":
        record.format = "CR2"
    else:
        ext = os.path.splitext(os.fsdecode(path))[1].lower()
        record.format = _TIFF_RAW_EXTENSIONS.get(ext, "TIFF")
    if record.format in ("CR2", "IIQ"):
        try:
            sub = ifd0.get_ifd(IFD_EXIF)
        except Exception:  # already warned about by _read_exif (or no Exif object at all)
            return
        width, height = first_int(sub.get(0xA002)), first_int(sub.get(0xA003))
        if width and height:
            _set_size(record, width, height)
        return
    if first_int(ifd0.get(_NEW_SUBFILE_TYPE)) == 0:  # IFD0 says it is the full image
        return
    offsets = ifd0.get(_SUB_IFDS)
    offsets = (offsets,) if isinstance(offsets, int) else offsets
    if not isinstance(offsets, tuple):
        return
    size = os.fstat(fp.fileno()).st_size
    for offset in offsets[:_MAX_SUB_IFDS]:
        if not isinstance(offset, int) or not 8 <= offset < size:
            continue
        sub_ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=head[:2])
        try:
            fp.seek(offset)
            sub_ifd.load(fp)
        except Exception as exc:  # a SubIFD pointer into garbage: IFD0's size stands
            add_warning(record, f"SubIFD at {offset} unreadable ({describe(exc)})")
            continue
        if first_int(sub_ifd.get(_NEW_SUBFILE_TYPE)) == 0:
            width, height = first_int(sub_ifd.get(0x0100)), first_int(sub_ifd.get(0x0101))
            if width and height:
                _set_size(record, width, height)
            return


def _salvage_jpeg(fp: IO[bytes], record: PhotoRecord) -> None:
    """Pillow gave up on this JPEG's header: walk the markers for the Exif APP1 and SOF size."""
    record.format = "JPEG"
    payload = b""
    fp.seek(2)
    while True:
        marker = fp.read(2)
        if len(marker) < 2 or marker[0] != 0xFF or marker[1] in (0xD9, 0xDA):  # EOI, SOS
            break
        if marker[1] == 0xFF:  # fill byte
            fp.seek(-1, os.SEEK_CUR)
            continue
        if marker[1] == 0x01 or 0xD0 <= marker[1] <= 0xD8:  # markers without a length
            continue
        length = int.from_bytes(fp.read(2), "big") - 2
        if length < 0:
            break
        data = fp.read(length)
        if marker[1] == 0xE1 and data.startswith(b"Exif\x00\x00") and not payload:
            payload = data  # possibly cut short: what is there may still hold IFD0
        elif marker[1] in _SOF_MARKERS and len(data) >= 5:
            height, width = struct.unpack_from(">HH", data, 1)
            _set_size(record, width, height)
        if len(data) < length:
            break
    exif = _exif_from_bytes(payload, record)
    if exif is not None:
        _read_exif(exif, _ifd0_offset(payload), len(payload), record)


def _raw_format(head: bytes) -> str | None:
    for offset, signature, name in _RAW_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def _what_is_it(head: bytes, raw_format: str | None) -> str:
    if raw_format is not None:
        return f"{raw_format} camera raw; Pillow cannot read it"
    sample = head[:64]
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in sample):
        return "looks like text"
    return f"unknown signature {sample[:8].hex(' ')}"


# --- PNG -------------------------------------------------------------------------------------


def _png_exif_payload(im: ImageFile.ImageFile, fp: IO[bytes], record: PhotoRecord) -> bytes | None:
    # Chunks before the first IDAT were parsed by Image.open already.
    raw = im.info.get("exif")
    if isinstance(raw, bytes) and raw:
        return raw
    for key in _RAW_PROFILE_KEYS:
        text = im.info.get(key.decode())
        if isinstance(text, str):
            return _raw_profile_bytes(text, record)
    # Later chunks: walk the headers, seeking over image data (never PngImageFile.getexif()).
    fp.seek(8)
    while True:
        header = fp.read(8)
        if len(header) < 8:
            return None
        length, chunk_type = struct.unpack(">I4s", header)
        start = fp.tell()
        if chunk_type == b"IEND":
            return None
        if chunk_type == b"eXIf" and length <= _MAX_CHUNK:
            return fp.read(length)
        if chunk_type in (b"tEXt", b"zTXt", b"iTXt") and length <= _MAX_CHUNK:
            keyword = fp.read(min(length, 80)).split(b"\0", 1)[0]
            if keyword in _RAW_PROFILE_KEYS:
                fp.seek(start)
                return _raw_profile_from_chunk(chunk_type, fp.read(length), record)
        fp.seek(start + length + 4)  # data + CRC


def _raw_profile_from_chunk(chunk_type: bytes, data: bytes, record: PhotoRecord) -> bytes | None:
    """ImageMagick's hex-encoded EXIF in a tEXt / zTXt / iTXt chunk."""
    try:
        _, rest = data.split(b"\0", 1)
        if chunk_type == b"zTXt":
            text = _inflate(rest[1:])
        elif chunk_type == b"iTXt":
            compressed, rest = rest[0], rest[2:]
            _, _, text = rest.split(b"\0", 2)
            if compressed:
                text = _inflate(text)
        else:
            text = rest
    except (ValueError, IndexError, zlib.error) as exc:
        add_warning(record, f"PNG raw EXIF profile chunk unreadable ({describe(exc)})")
        return None
    return _raw_profile_bytes(text.decode("latin-1"), record)


def _inflate(data: bytes) -> bytes:
    return zlib.decompressobj().decompress(data, _MAX_CHUNK)


def _raw_profile_bytes(text: str, record: PhotoRecord) -> bytes | None:
    match = _RAW_PROFILE.match(text)
    try:
        if match is None:
            raise ValueError("no length line")
        digits = "".join(match[2].split())
        return bytes.fromhex(digits[: len(digits) // 2 * 2])[: int(match[1])]  # cut short: keep
    except ValueError as exc:
        add_warning(record, f"PNG raw EXIF profile unreadable ({exc})")
        return None


# --- HEIF ------------------------------------------------------------------------------------


def _heif_format(head: bytes) -> str | None:
    """ "HEIC" / "AVIF" from the ftyp brands, None when this is not a HEIF file."""
    if head[4:8] != b"ftyp":
        return None
    end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & (_HEIC_BRANDS - {b"mif1", b"msf1"}):
        return "HEIC"
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & _HEIC_BRANDS:
        return "HEIC"  # generic HEIF: ExifTool and truth.json call these HEIC too
    return None


def _read_heif(fp: IO[bytes], fmt: str, record: PhotoRecord) -> None:
    import pillow_heif  # here, not at the top: loading libheif costs ~15-45 ms a process

    fp.seek(0)
    try:
        heif = pillow_heif.open_heif(fp)  # parses the container; decodes nothing
        size, info = heif.size, heif.info  # both of the primary image
    except Exception as exc:
        record.error = f"not a recognised image ({fmt} that libheif cannot read: {one_line(exc)})"
        return
    record.format = fmt
    try:
        geometry = _heif_geometry(fp)
    except (struct.error, IndexError, ValueError, OSError):
        geometry = None
    if geometry is not None:
        _set_size(record, geometry[0], geometry[1])
    else:
        _set_size(record, *size)  # after irot: may be swapped against the stored size
        add_warning(record, "HEIF primary item size (ispe) not found; size reported after rotation")
    payload = info.get("exif")
    exif = _exif_from_bytes(payload, record)
    if exif is not None:
        _read_exif(exif, _ifd0_offset(payload), len(payload or b""), record)
    _add_xmp(record, info.get("xmp"))


def _heif_geometry(fp: IO[bytes]) -> tuple[int, int, int] | None:
    """(width, height, irot degrees) of the primary item, from the top-level meta box."""
    position = 0
    fp.seek(0)
    for _ in range(64):  # meta sits near the start; stop rather than walk a broken file
        header = fp.read(16)
        if len(header) < 8:
            return None
        size, box_type = struct.unpack(">I4s", header[:8])
        header_size = 8
        if size == 1:
            size, header_size = struct.unpack(">Q", header[8:16])[0], 16
        elif size == 0:
            size = _MAX_CHUNK + header_size
        if size < header_size:
            return None
        if box_type == b"meta":
            fp.seek(position + header_size)
            return _primary_geometry(fp.read(min(size - header_size, _MAX_CHUNK)))
        position += size
        fp.seek(position)
    return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of the ISOBMFF boxes in data[start:end]."""
    while start + 8 <= end:
        size, box_type = struct.unpack_from(">I4s", data, start)
        header_size = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, start + 8)
            header_size = 16
        elif size == 0:
            size = end - start
        if size < header_size or start + size > end:
            return
        yield box_type, start + header_size, start + size
        start += size


def _primary_geometry(meta: bytes) -> tuple[int, int, int] | None:
    primary: int | None = None
    properties: list[tuple[bytes, int, int]] = []
    associations: dict[int, list[int]] = {}
    for box_type, start, end in _boxes(meta, 4, len(meta)):  # meta is a full box
        if box_type == b"pitm":
            id_size = 2 if meta[start] == 0 else 4  # version 0: 16-bit item ids
            primary = int.from_bytes(meta[start + 4 : start + 4 + id_size], "big")
        elif box_type == b"iprp":
            for inner_type, inner_start, inner_end in _boxes(meta, start, end):
                if inner_type == b"ipco":
                    properties = list(_boxes(meta, inner_start, inner_end))
                elif inner_type == b"ipma":
                    associations = _property_associations(meta, inner_start)
    width = height = 0
    rotation = 0
    for index in associations.get(primary, []) if primary is not None else []:
        if not 1 <= index <= len(properties):
            continue
        prop_type, start, end = properties[index - 1]
        if prop_type == b"ispe" and end - start >= 12:
            width, height = struct.unpack_from(">II", meta, start + 4)
        elif prop_type == b"irot" and end > start:
            rotation = (meta[start] & 3) * 90
    return (width, height, rotation) if width and height else None


def _property_associations(meta: bytes, start: int) -> dict[int, list[int]]:
    version, flags = meta[start], int.from_bytes(meta[start + 1 : start + 4], "big")
    (count,) = struct.unpack_from(">I", meta, start + 4)
    position = start + 8
    associations: dict[int, list[int]] = {}
    for _ in range(min(count, 1 << 16)):
        if version < 1:
            (item,) = struct.unpack_from(">H", meta, position)
            position += 2
        else:
            (item,) = struct.unpack_from(">I", meta, position)
            position += 4
        indices = []
        for _ in range(meta[position]):
            if flags & 1:
                indices.append(struct.unpack_from(">H", meta, position + 1)[0] & 0x7FFF)
                position += 2
            else:
                indices.append(meta[position + 1] & 0x7F)
                position += 1
        position += 1
        associations[item] = indices
    return associations


# --- EXIF IFDs -> record ---------------------------------------------------------------------


def _read_exif(
    exif: Image.Exif, ifd0_offset: int | None, data_size: int, record: PhotoRecord
) -> None:
    seen = {ifd0_offset} if ifd0_offset is not None else set()
    if ifd0_offset is not None and not 8 <= ifd0_offset < data_size:
        add_warning(record, f"IFD0 offset {ifd0_offset} is outside the EXIF data: no tag readable")
    try:
        ifd0 = dict(exif)
    except Exception as exc:
        add_warning(record, f"IFD0 unreadable ({describe(exc)})")
        ifd0 = {}
    exif_ifd = _sub_ifd(exif, ifd0, IFD_EXIF, "Exif", seen, data_size, record)
    gps = _sub_ifd(exif, ifd0, IFD_GPS, "GPS", seen, data_size, record)
    interop = _sub_ifd(exif, exif_ifd, IFD_INTEROP, "Interop", seen, data_size, record)
    ifd1: dict[int, Any] = {}
    if ifd0:
        try:
            ifd1 = exif.get_ifd(IFD_1)
        except Exception as exc:
            add_warning(record, f"IFD1 unreadable ({describe(exc)})")
        if ifd1 and ifd1 == ifd0:
            add_warning(record, "IFD1 pointer loops back to IFD0; ignored")
            ifd1 = {}
    big_endian = exif.endian == ">"
    for name, ifd in (
        ("IFD0", ifd0),
        ("Exif", exif_ifd),
        ("GPS", gps),
        ("Interop", interop),
        ("IFD1", ifd1),
    ):
        names = _NAMES[name]
        append = record.tags.append
        for tag_id in sorted(ifd):
            label = names.get(tag_id) or f"Tag0x{tag_id:04X}"
            value = ifd[tag_id]  # an int is rendered here, as render_value would: 40% of tags
            text = str(value) if type(value) is int else _render(value, tag_id, big_endian)
            append(RawTag(name, tag_id, label, text))
    _fill_fields(record, ifd0, exif_ifd, gps)


XMP_TAG = 0x02BC  # TIFF's XMLPacket: the number the XMP entry of the listing takes too


def _add_xmp(
    record: PhotoRecord, packet: object, name: str = "XMLPacket", what: str = "XMP packet"
) -> None:
    """The file's XMP packet, whole, as the last entry of the tag listing ("XMP", 700,
    "XMLPacket"), whatever the container held it in (an IFD0 XMLPacket entry is summarised by
    its length). UTF-8, or UTF-16/32 as its first bytes say; bytes that are not are shown as
    U+FFFD and NUL characters inside are left out (a database text holds none), each with a
    warning; NULs that end it (a C string's terminator, as HEIF writers leave) are dropped.
    `name` and `what`: the entry's name and the warnings' word for it (_add_extended_xmp)."""
    if isinstance(packet, tuple) and len(packet) == 1:  # a TIFF tag typed as one value
        packet = packet[0]
    if isinstance(packet, bytes):
        codec = _xmp_codec(packet)
        try:
            text = packet.decode(codec)
        except UnicodeDecodeError:
            text = packet.decode(codec, "replace")
            add_warning(record, f"{what} ({len(packet)} bytes) is not {codec}: shown with U+FFFD")
    elif isinstance(packet, str):  # PNG's iTXt, decoded by Pillow
        text = packet
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: no database text or JSON holds them
            text = text.encode("utf-8", "replace").decode("utf-8")
            add_warning(record, f"{what} is not valid Unicode: shown with ?")
    else:
        return
    text = text.rstrip("\0")
    if "\0" in text:
        text = text.replace("\0", "")
        add_warning(record, f"{what} holds NUL characters: left out of the listing")
    if text.strip():
        record.tags.append(RawTag("XMP", XMP_TAG, name, text))


XMP_EXTENSION = plain_jpeg.XMP_EXTENSION  # what an extended XMP segment starts with
# The main packet names its extension by the MD5 of it, in hex: as an attribute or an element.
_HAS_EXTENDED_XMP = re.compile(r"HasExtendedXMP\s*(?:=\s*[\"']|>)\s*([0-9A-Fa-f]{32})\b")


def _add_extended_xmp(record: PhotoRecord, segments: list[bytes]) -> None:
    """A JPEG's extended XMP, after its packet in the listing as ("XMP", 700, "ExtendedXMP").

    A packet too large for one APP1 segment (64 KB) continues in segments of its own (XMP part
    3): each the extension's name, the GUID, the whole's length and this part's offset (4 bytes
    each, big-endian), then the part. The main packet names the GUID (xmpNote:HasExtendedXMP),
    which is the MD5 of the whole. Only that GUID's segments are read, as ExifTool reads them;
    the parts are put together by offset and listed only when they make the whole, exactly:
    segments of another GUID or none named, parts missing or overlapping, a GUID named with no
    segment, and a whole whose MD5 is not its GUID (listed all the same) are warnings."""
    last = record.tags[-1] if record.tags else None  # the packet, if any (_add_xmp, just before)
    packet = last.value if last is not None and last.ifd == "XMP" else ""
    if not packet and not segments:  # most photos: nothing to read, nothing to say
        return
    named = _HAS_EXTENDED_XMP.search(packet)
    guid = named.group(1).upper() if named else None
    parts: dict[str, set[tuple[int, int, bytes]]] = {}
    short = 0
    for segment in segments:
        body = segment[len(XMP_EXTENSION) :]
        if len(body) < 40:
            short += 1
            continue
        key = body[:32].decode("latin-1").upper()
        full, offset = int.from_bytes(body[32:36], "big"), int.from_bytes(body[36:40], "big")
        parts.setdefault(key, set()).add((offset, full, body[40:]))  # a repeated segment: once
    if short:
        add_warning(record, f"{short} extended XMP segment(s) too short to hold a part: ignored")
    others = sum(len(p) for key, p in parts.items() if key != guid)
    if others:
        which = f"another GUID than {guid}, which" if guid else "a GUID"
        add_warning(
            record,
            f"{others} extended XMP segment(s) of {which} the XMP packet does not name: not read",
        )
    if guid is None:
        return
    mine = sorted(parts.get(guid, ()))
    if not mine:
        add_warning(record, f"the XMP packet names extended XMP {guid}, not in the file")
        return
    full = mine[0][1]
    at = 0  # where the next part must start: each one where the one before ends
    for offset, length, part in mine:
        if offset != at or length != full:
            at = -1
            break
        at += len(part)
    if at != full:
        add_warning(
            record,
            f"extended XMP {guid}: its {len(mine)} part(s) do not make its {full} bytes exactly"
            " (missing, overlapping or of another length): not read",
        )
        return
    whole = b"".join(part for _, _, part in mine)
    digest = hashlib.md5(whole, usedforsecurity=False).hexdigest().upper()
    if digest != guid:
        add_warning(record, f"extended XMP {guid}: its MD5 is {digest}, not its GUID")
    _add_xmp(record, whole, "ExtendedXMP", "extended XMP")


# XMP's own rule for its encoding: the packet starts with "<", so its first bytes say which.
_XMP_CODECS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)


def _xmp_codec(packet: bytes) -> str:
    for start, codec in _XMP_CODECS:
        if packet.startswith(start):
            return codec
    return "utf-8"


def _sub_ifd(
    exif: Image.Exif,
    parent: dict[int, Any],
    tag: int,
    name: str,
    seen: set[int],
    data_size: int,
    record: PhotoRecord,
) -> dict[int, Any]:
    pointer = parent.get(tag)
    if pointer is None:
        return {}
    if not isinstance(pointer, int) or pointer < 8 or pointer >= data_size:
        where = str(pointer)[:40]
        add_warning(record, f"{name} IFD pointer {where!r} is outside the EXIF data; ignored")
        return {}
    if pointer in seen:
        add_warning(
            record, f"{name} IFD pointer {pointer} loops back to an IFD already read; ignored"
        )
        return {}
    seen.add(pointer)
    try:
        return exif.get_ifd(tag)
    except Exception as exc:
        add_warning(record, f"{name} IFD unreadable ({describe(exc)})")
        return {}


def _render(value: Any, tag_id: int, big_endian: bool) -> str:
    try:
        return render_value(value, tag_id, big_endian)
    except Exception as exc:  # a value type nobody anticipated must not lose the record
        return f"(unreadable value: {describe(exc)})"


def _fill_fields(
    record: PhotoRecord, ifd0: dict[int, Any], exif_ifd: dict[int, Any], gps: dict[int, Any]
) -> None:
    record.make = _name(record, "Make", clean_text(ifd0.get(0x010F)))
    record.model = _name(record, "Model", clean_text(ifd0.get(0x0110)))
    record.software = clean_text(ifd0.get(0x0131))
    record.lens_model = clean_text(exif_ifd.get(0xA434))
    # BodySerialNumber, sometimes written to IFD0 (Photoshop), else DNG's CameraSerialNumber
    record.serial = (
        clean_text(exif_ifd.get(0xA431))
        or clean_text(ifd0.get(0xA431))
        or clean_text(ifd0.get(0xC62F))
    )

    orientation = ifd0.get(_ORIENTATION)
    if orientation is not None:
        value = first_int(orientation)
        if value is not None and 1 <= value <= 8:
            record.orientation = value
        else:
            add_warning(record, f"Orientation {render_value(orientation)!r} is not 1-8; ignored")

    iso = first_int(exif_ifd.get(0x8827))
    if iso is not None and not 0 <= iso <= INT32_MAX:  # a hostile LONG / SLONG
        add_warning(record, f"ISO {iso} is out of range; ignored")
        iso = None
    record.iso = iso
    record.exposure_time = finite_float(exif_ifd.get(0x829A))
    record.f_number = finite_float(exif_ifd.get(0x829D))
    record.focal_length = finite_float(exif_ifd.get(0x920A))

    when = capture_time(
        {
            "DateTimeOriginal": clean_text(exif_ifd.get(0x9003)),
            "DateTimeDigitized": clean_text(exif_ifd.get(0x9004)),
            "DateTime": clean_text(ifd0.get(0x0132)),
            "SubSecTimeOriginal": clean_text(exif_ifd.get(0x9291)),
            "SubSecTimeDigitized": clean_text(exif_ifd.get(0x9292)),
            "SubSecTime": clean_text(exif_ifd.get(0x9290)),
            "OffsetTimeOriginal": clean_text(exif_ifd.get(0x9011)),
            "OffsetTimeDigitized": clean_text(exif_ifd.get(0x9012)),
            "OffsetTime": clean_text(exif_ifd.get(0x9010)),
        },
        record.warnings,
    )
    record.captured_at = when.captured_at
    record.captured_from = when.captured_from
    record.subsec = when.subsec
    record.offset = when.offset
    record.offset_from = when.offset_from
    record.captured_at_utc = when.captured_at_utc
    record.time_source = when.time_source

    record.latitude = gps_coordinate(gps.get(2), gps.get(1), "Latitude", record.warnings)
    record.longitude = gps_coordinate(gps.get(4), gps.get(3), "Longitude", record.warnings)
    record.altitude = gps_altitude(gps.get(6), gps.get(5), record.warnings)
    record.gps_time_utc = gps_timestamp(gps.get(29), gps.get(7), record.warnings)


# --- small helpers ---------------------------------------------------------------------------


def _name(record: PhotoRecord, tag: str, text: str | None) -> str | None:
    """Make/Model cut to MAX_NAME characters for the device key; the tag listing keeps it all."""
    if text is not None and len(text) > MAX_NAME:
        add_warning(record, f"{tag} is {len(text)} characters long; cut to {MAX_NAME}")
        return text[:MAX_NAME]
    return text
