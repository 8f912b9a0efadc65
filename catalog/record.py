"""The photo record: what extraction produces and every later stage consumes.

Plain data, no database and no CLI. `extract.extract(path)` builds one per file and never raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from json.encoder import encode_basestring
from operator import attrgetter
from typing import Any


@dataclass(slots=True)
class RawTag:
    """One EXIF tag as found in the file."""

    ifd: str  # "IFD0", "Exif", "GPS", "Interop", "IFD1"; "XMP" for the XMP packet
    tag_id: int
    name: str  # as in PIL.ExifTags, or "Tag0xNNNN" when unknown
    value: str  # rendered as a person reads it; blobs summarised by length


@dataclass(slots=True)
class PhotoRecord:
    """Normalised metadata of one image file. Every field is None when unknown."""

    format: str | None = None  # by content: JPEG, TIFF, PNG, WEBP, HEIC, MPO, ...
    width: int | None = None
    height: int | None = None
    orientation: int | None = None  # 1..8 only
    make: str | None = None
    model: str | None = None
    lens_model: str | None = None
    serial: str | None = None
    software: str | None = None
    # capture time: wall clock as written in the file, never shifted
    captured_at: datetime | None = None  # naive local time
    captured_from: str | None = None  # "DateTimeOriginal" | "DateTimeDigitized" | "DateTime"
    subsec: str | None = None  # SubSecTime* exactly as stored
    offset: str | None = None  # "+02:00" in effect at capture
    offset_from: str | None = None  # EXIF tag the offset came from, e.g. "OffsetTimeOriginal"
    captured_at_utc: datetime | None = None  # naive UTC instant, set only when the offset is known
    time_source: str | None = None  # how UTC was resolved: "offset_tag" | "gps_time" | "gps_zone"
    time_zone: str | None = None  # IANA name when a position gave one
    # place
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    gps_time_utc: datetime | None = None  # GPSDateStamp + GPSTimeStamp, naive UTC
    # exposure
    iso: int | None = None
    exposure_time: float | None = None  # seconds
    f_number: float | None = None
    focal_length: float | None = None  # mm
    # everything, for the forensic listing
    tags: list[RawTag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when the file could not be read as an image

    def __reduce__(self) -> tuple[type[PhotoRecord], tuple[Any, ...]]:
        return PhotoRecord, _RECORD_VALUES(self)


@dataclass(slots=True)
class FileEntry:
    """One file to record: where it is, what stat said, what extraction found."""

    root_id: int
    rel_path: str
    size: int
    mtime_ns: int
    record: PhotoRecord
    # the digest taken while reading, if any, in its algorithm's field (else the hash stage's)
    sha256: str | None = None
    blake2b: str | None = None
    # record.tags already serialised (tags_json) by the worker that read the file, so the listing
    # crosses the process boundary as one string; record.tags is then empty. None: serialise here.
    tags_json: str | None = None

    def __reduce__(self) -> tuple[type[FileEntry], tuple[Any, ...]]:
        return FileEntry, _ENTRY_VALUES(self)


# Records cross from the worker processes to the writer: pickled as their constructor's
# arguments (read in one C call) instead of by the slots dataclasses' own __getstate__ and
# __setstate__ (a Python loop over fields(), each way): 9 + 9 -> 7 + 5 us a record.
_RECORD_VALUES = attrgetter(*(f.name for f in fields(PhotoRecord)))
_ENTRY_VALUES = attrgetter(*(f.name for f in fields(FileEntry)))


MAX_WARNINGS = 30  # a hostile file can raise a warning per tag: a record keeps this many


def add_warning(record: PhotoRecord, message: str) -> None:
    """Note a problem on a record: once, and at most MAX_WARNINGS of them."""
    if message not in record.warnings and len(record.warnings) < MAX_WARNINGS:
        record.warnings.append(message)


def tags_json(r: PhotoRecord) -> str:
    """A record's tag listing as raw_tags.tags stores it: a JSON list of [ifd, tag_id, name,
    value], compact, non-ASCII kept. Written here rather than by json.dumps: a tag's first three
    fields recur in every photo, so their text is made once (_TAG_PREFIX) and only the value is
    encoded, by the function json.dumps uses for strings (20 -> 10 us a photo)."""
    get = _TAG_PREFIX.get
    parts = [
        f"{get((t.ifd, t.tag_id, t.name)) or _tag_prefix(t)}{encode_basestring(t.value)}]"
        for t in r.tags
    ]
    return "[" + ",".join(parts) + "]"


def _tag_prefix(t: RawTag) -> str:
    prefix = f"[{encode_basestring(t.ifd)},{int(t.tag_id)},{encode_basestring(t.name)},"
    if len(_TAG_PREFIX) < _MAX_TAG_PREFIXES:  # a hostile file's thousand unknown tags
        _TAG_PREFIX[(t.ifd, t.tag_id, t.name)] = prefix
    return prefix


_TAG_PREFIX: dict[tuple[str, int, str], str] = {}  # (ifd, tag_id, name) -> '["IFD0",271,"Make",'
_MAX_TAG_PREFIXES = 4096
