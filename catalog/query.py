"""Search the catalog: a Filter becomes one SQL statement; rows come back as JSON-ready records.

`parse_terms` gives the same filters from beets-style terms (`model:SM-G920F`,
`date:2016-11-01..2016-11-30`), so a query can be written as words as well as options.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    desc,
    func,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles

from catalog import tables as t
from catalog.distance import EARTH_RADIUS_M, bounding_box
from catalog.paths import SURROGATE, from_db, relative_to, to_db
from catalog.places import SOURCE as PLACE_SOURCE
from catalog.store import Catalog, this_host


def _text(i: int) -> Callable[[Any], Any]:
    return lambda row: row[i] or None  # "" is stored for an unknown make, model or region


def _local(i: int) -> Callable[[Any], Any]:
    return lambda row: _iso(row[i])


def _utc(i: int) -> Callable[[Any], Any]:
    return lambda row: _iso(row[i], "Z")


def _path(i: int, j: int) -> Callable[[Any], Any]:
    return lambda row: _join(from_db(row[i]), from_db(row[j]))


# The JSON record, whose keys json, jsonl and csv share in this order. Each key: the columns it
# is read from, and what makes the getter of its value from their positions in a row. A search
# for some keys only (a table's nine, a list of paths) selects only their columns: a month's
# 5,498 rows as a table's records ~60-75 -> ~38 ms. The whole record is made the same way.
FIELDS: dict[str, tuple[tuple[Any, ...], Callable[..., Callable[[Any], Any]]]] = {
    "path": ((t.roots.c.path, t.photos.c.rel_path), _path),
    "sha256": ((t.photos.c.sha256,), itemgetter),
    "blake2b": ((t.photos.c.blake2b,), itemgetter),
    "format": ((t.photos.c.format,), itemgetter),
    "width": ((t.photos.c.width,), itemgetter),
    "height": ((t.photos.c.height,), itemgetter),
    "make": ((t.devices.c.make,), _text),
    "model": ((t.devices.c.model,), _text),
    "captured_at": ((t.photos.c.captured_at,), _local),
    "offset": ((t.photos.c.utc_offset,), itemgetter),
    "captured_at_utc": ((t.photos.c.captured_at_utc,), _utc),
    "time_source": ((t.photos.c.time_source,), itemgetter),
    "time_zone": ((t.photos.c.time_zone,), itemgetter),
    "latitude": ((t.gps_positions.c.latitude,), itemgetter),
    "longitude": ((t.gps_positions.c.longitude,), itemgetter),
    "altitude": ((t.gps_positions.c.altitude,), itemgetter),
    "country": ((t.places.c.country_code,), itemgetter),
    "region": ((t.places.c.region,), _text),
    "city": ((t.places.c.city,), itemgetter),
    "lens_model": ((t.photos.c.lens_model,), itemgetter),
    "serial": ((t.photos.c.serial,), itemgetter),
    "iso": ((t.photos.c.iso,), itemgetter),
    "exposure_time": ((t.photos.c.exposure_time,), itemgetter),
    "f_number": ((t.photos.c.f_number,), itemgetter),
    "focal_length": ((t.photos.c.focal_length,), itemgetter),
    "orientation": ((t.photos.c.orientation,), itemgetter),
    "software": ((t.photos.c.software,), itemgetter),
    "error": ((t.photos.c.error,), itemgetter),
}
RECORD_KEYS = tuple(FIELDS)


def record_maker(keys: Sequence[str]) -> tuple[list[Any], Callable[[Any], dict[str, Any]]]:
    """(the columns to select, the function making a row of them into a record of `keys`, in
    that order). A key that is not in RECORD_KEYS is a ValueError."""
    columns: list[Any] = []
    at: dict[int, int] = {}  # id(column) -> its position (columns compare by SQL, not ==)
    getters = []
    for key in keys:
        if key not in FIELDS:
            raise ValueError(f"no record key {key!r}")
        cols, getter = FIELDS[key]
        for c in cols:
            if id(c) not in at:
                at[id(c)] = len(columns)
                columns.append(c)
        getters.append(getter(*(at[id(c)] for c in cols)))
    pairs = tuple(zip(keys, getters, strict=True))
    return columns, lambda row: {k: get(row) for k, get in pairs}


# What a search for whole records selects, and how a row of it (these columns first) becomes
# the record.
RECORD_COLUMNS, to_record = record_maker(RECORD_KEYS)

SORTS = {
    "captured_at": t.photos.c.sort_time,  # the UTC instant where known, else the local time
    "path": None,  # root path + relative path, see _order
    "make": t.devices.c.make,
    "model": t.devices.c.model,
    "size": t.photos.c.size,
    "iso": t.photos.c.iso,
    "id": t.photos.c.id,
    "distance": None,  # from the position searched near, see _order
}


class QueryError(ValueError):
    """A filter that cannot be understood (bad date, unknown field...)."""


@dataclass(frozen=True, slots=True)
class TimeBound:
    """A date or date-time as given, with the precision it was given in (a day, a minute...)."""

    start: datetime
    end: datetime  # exclusive: the instant after the given day/minute/second

    @classmethod
    def parse(cls, text: str) -> TimeBound:
        t = text.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
                d = date.fromisoformat(t)
                start = datetime(d.year, d.month, d.day)
                return cls(start, _end(lambda: start + timedelta(days=1)))
            if re.fullmatch(r"\d{4}-\d{2}", t):
                start = datetime.strptime(t, "%Y-%m")
                y, m = start.year + start.month // 12, start.month % 12 + 1
                return cls(start, _end(lambda: datetime(y, m, 1)))
            if re.fullmatch(r"\d{4}", t):
                year = int(t)
                return cls(datetime(year, 1, 1), _end(lambda: datetime(year + 1, 1, 1)))
            dt = datetime.fromisoformat(t.replace(" ", "T"))
        except ValueError:
            raise QueryError(
                f"not a date or date-time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])"
            ) from None
        if dt.tzinfo is not None:
            raise QueryError(f"{text!r}: give a local wall time without offset (or use --utc)")
        step = timedelta(seconds=1) if dt.second or t.count(":") >= 2 else timedelta(minutes=1)
        if dt.microsecond:
            step = timedelta(microseconds=1)
        return cls(dt, _end(lambda: dt + step))


def _end(after: Callable[[], datetime]) -> datetime:
    """The instant after a bound; past the end of year 9999, the last one Python can hold (a
    range "to 9999-12-31" then leaves out only its very last microsecond)."""
    try:
        return after()
    except (OverflowError, ValueError):
        return datetime.max


DEFAULT_WITHIN_M = 1000.0
XMP_ENTRIES = ("XMLPacket", "ExtendedXMP")  # the listing's XMP entries (catalog.extract)


@dataclass(frozen=True, slots=True)
class Near:
    """Photos whose GPS position is at most `radius_m` metres from (latitude, longitude), by the
    great-circle distance (catalog.distance)."""

    latitude: float
    longitude: float
    radius_m: float = DEFAULT_WITHIN_M


_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)"  # decimal digits, no exponent
_NUMBER = rf"[+-]?{_UNSIGNED}"
_POINT = re.compile(rf"\s*({_NUMBER})\s*,\s*({_NUMBER})\s*")
_DISTANCE = re.compile(rf"\s*({_UNSIGNED})\s*(m|km)\s*", re.IGNORECASE)


def parse_point(text: str) -> tuple[float, float]:
    """'48.8584,2.2945' → (latitude, longitude), decimal degrees, south and west negative."""
    m = _POINT.fullmatch(text)
    if m is None:
        raise QueryError(
            f"not a position: {text!r} (give LAT,LON in decimal degrees, e.g. 48.8584,2.2945)"
        )
    latitude, longitude = float(m[1]), float(m[2])
    if not -90 <= latitude <= 90:
        raise QueryError(f"{text!r}: latitude {m[1]} is not within -90..90")
    if not -180 <= longitude <= 180:
        raise QueryError(f"{text!r}: longitude {m[2]} is not within -180..180")
    return latitude, longitude


def parse_distance(text: str) -> float:
    """'500m', '2km', '2.5 km' → metres. A unit is required: a bare number could be either."""
    m = _DISTANCE.fullmatch(text)
    metres = float(m[1]) * (1000 if m[2].lower() == "km" else 1) if m else math.nan
    if not math.isfinite(metres):
        raise QueryError(f"not a distance: {text!r} (give metres or kilometres: 500m, 2km)")
    return metres


def locate(f: Filter, near: str | None = None, within: str | None = None) -> Filter:
    """`f` searching near the position `near` ('LAT,LON') within the distance `within` ('2km'),
    as given; either may be None, to keep f's own (or the default distance, 1 km)."""
    if near is None and within is None:
        return f
    if near is not None:
        latitude, longitude = parse_point(near)
    elif f.near is not None:
        latitude, longitude = f.near.latitude, f.near.longitude
    else:
        raise QueryError(
            "a distance (--within, within:) needs a position to measure it from "
            "(--near LAT,LON or near:LAT,LON)"
        )
    if within is not None:
        radius = parse_distance(within)
    else:
        radius = f.near.radius_m if f.near is not None else DEFAULT_WITHIN_M
    return replace(f, near=Near(latitude, longitude, radius))


@dataclass(frozen=True, slots=True)
class Between:
    """A numeric range, both ends inclusive; None: open on that side."""

    low: float | None = None
    high: float | None = None

    @classmethod
    def parse(cls, text: str, number: Callable[[str, str], float] | None = None) -> Between:
        """'100..800', '..2.8', '1/250..', '200' (exactly); a number may be a fraction. `number`
        reads each end (default: a number or fraction; _bytes: a file size)."""
        number = number or _number
        low, sep, high = text.partition("..")
        bounds = (number(low, text) if low.strip() else None,
                  number(high, text) if high.strip() else None)  # fmt: skip
        if not sep:
            bounds = (bounds[0], bounds[0])
        if bounds == (None, None):
            raise QueryError(f"not a number or range: {text!r} (e.g. 200, 100..800, ..2.8)")
        if None not in bounds and bounds[0] > bounds[1]:  # type: ignore[operator]
            raise QueryError(f"{text!r}: the range ends before it starts")
        return cls(*bounds)


@dataclass(frozen=True, slots=True)
class TagMatch:
    """A tag of the listing, by name (its IFD too, when given), and its value as `show` prints
    it: case-insensitive, exactly or with * ? wildcards (as the text filters)."""

    name: str
    value: str
    ifd: str | None = None

    @classmethod
    def parse(cls, text: str) -> TagMatch:
        """'Artist=Ann', 'Copyright=*2016*', 'GPS:GPSLatitudeRef=N', 'OwnerName=*' (any value)."""
        key, sep, value = _unicode(text).partition("=")
        ifd, colon, name = key.strip().rpartition(":")
        if not sep or not name or (colon and not ifd):
            raise QueryError(
                f"not a tag and value: {text!r} (NAME=VALUE or IFD:NAME=VALUE, e.g. Artist=Ann)"
            )
        return cls(name.strip(), value, ifd.strip() or None)


_FRACTION = re.compile(rf"\s*({_NUMBER})\s*(?:/\s*({_UNSIGNED})\s*)?")


def _number(text: str, whole: str) -> float:
    m = _FRACTION.fullmatch(text)
    value = math.nan
    if m:
        denominator = float(m[2]) if m[2] else 1.0
        value = float(m[1]) / denominator if denominator else math.nan
    if not math.isfinite(value):
        raise QueryError(f"not a number or range: {whole!r} (e.g. 200, 100..800, ..2.8, 1/250)")
    return value


_SIZE = re.compile(rf"\s*({_UNSIGNED})\s*([kmg]i?b|b)?\s*", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20,
               "gib": 2**30}  # fmt: skip


def _bytes(text: str, whole: str) -> float:
    """A file size: bytes, or with a unit (KB MB GB: powers of 1000; KiB MiB GiB: of 1024)."""
    m = _SIZE.fullmatch(text)
    if not m:
        raise QueryError(f"not a size or range of sizes: {whole!r} (e.g. 10MB.., ..200KiB)")
    return float(m[1]) * _SIZE_UNITS[(m[2] or "b").lower()]


# The numeric fields a field:value term may give a range of: the record's keys, and the file's
# size in bytes.
RANGES = {
    "iso": t.photos.c.iso,
    "f_number": t.photos.c.f_number,
    "focal_length": t.photos.c.focal_length,
    "exposure_time": t.photos.c.exposure_time,
    "width": t.photos.c.width,
    "height": t.photos.c.height,
    "size": t.photos.c.size,
}


@dataclass(frozen=True, slots=True)
class Filter:
    """What to search for. Text matches are case-insensitive; `*` and `?` are wildcards."""

    make: str | None = None
    model: str | None = None
    lens: str | None = None
    serial: str | None = None  # the camera body's serial number (BodySerialNumber)
    software: str | None = None  # what wrote the file last (a camera firmware, an editor)
    date_from: TimeBound | None = None  # inclusive
    date_to: TimeBound | None = None  # inclusive (the whole day for a bare date)
    utc: bool = False  # compare dates with the UTC instant instead of the local wall time
    has_gps: bool | None = None
    dated: bool | None = None  # True: with a capture time; False: none (unread files too)
    time_source: str | None = None  # how the UTC instant was found (TIME_SOURCES, or "none")
    country: str | None = None  # ISO 3166-1 alpha-2 code, or the country's name
    city: str | None = None
    errors: bool | None = None  # True: only files that could not be read; False: none of them
    warned: bool | None = None  # True: only photos read with warnings; False: without any
    warning: str | None = None  # a warning containing this text (* ? wildcards)
    path: str | None = None  # absolute path prefix or wildcard pattern
    near: Near | None = None
    sha256: str | None = None  # a digest in hex, or its first 8 or more digits
    blake2b: str | None = None
    sha256_in: frozenset[str] | None = None  # a hash set: full digests, lowercase (digest_set)
    blake2b_in: frozenset[str] | None = None
    sha256_not_in: frozenset[str] | None = None  # known files to leave out; unhashed ones stay
    blake2b_not_in: frozenset[str] | None = None
    tag: TagMatch | None = None  # a tag of the listing (raw_tags), by name and value
    xmp: str | None = None  # text the XMP packet or its extension contains (* ? wildcards)
    iso: Between | None = None
    f_number: Between | None = None
    focal_length: Between | None = None
    exposure_time: Between | None = None  # seconds
    width: Between | None = None  # pixels
    height: Between | None = None
    size: Between | None = None  # bytes
    file_type: str | None = None  # the file's format (the record's "format": JPEG, HEIC, DNG...)
    sort: str = "captured_at"
    desc: bool = False
    limit: int | None = None


def _text_match(column: Any, value: str) -> ColumnElement[bool]:
    """Case-insensitive exact match, or a LIKE when the value holds * or ? wildcards."""
    pattern = _like_pattern(_unicode(value))
    if pattern is not None:
        return func.lower(column).like(pattern, escape="\\")
    return func.lower(column) == value.lower()


def _has(column: Any, wanted: bool | None) -> list[ColumnElement[bool]]:
    """A yes/no filter on whether `column` holds a value (None: no filter)."""
    if wanted is None:
        return []
    return [column.is_not(None) if wanted else column.is_(None)]


def _contains(column: Any, value: str) -> ColumnElement[bool]:
    """Case-insensitive: the text holds `value` (* and ? wildcards inside it)."""
    value = _unicode(value)
    pattern = _like_pattern(value) or _like_escaped(value.lower())
    return func.lower(column).like(f"%{pattern}%", escape="\\")


def _like_pattern(value: str) -> str | None:
    """A text filter's value with * ? wildcards as a LIKE pattern (escape \\) of its lowercase,
    % _ and \\ themselves escaped; None without wildcards (an exact match)."""
    if "*" not in value and "?" not in value:
        return None
    return _like_escaped(value.lower()).replace("*", "%").replace("?", "_")


def _like_escaped(text: str) -> str:
    """`text` taken literally in a LIKE pattern whose escape character is \\."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _unicode(value: str) -> str:
    """`value`, or a QueryError if it holds bytes the terminal sent that are not UTF-8."""
    if SURROGATE.search(value):
        raise QueryError(f"'{value}' is not valid UTF-8 text: type it as Unicode")
    return value


def build(f: Filter, columns: Sequence[Any] = RECORD_COLUMNS) -> Select[Any]:
    """The SELECT of `columns` for a filter: one row per photo.

    With a limit, the photos are chosen first by a lean statement (photos and only the tables
    the filter needs, so an index can serve both filter and order) and joined to the rest after:
    a 100-photo page of a 10,000-photo device costs 100 joins, not 10,000."""
    stmt = (
        select(*columns)
        .select_from(t.photos)
        .join(t.roots, t.roots.c.id == t.photos.c.root_id)
        .outerjoin(t.devices, t.devices.c.id == t.photos.c.device_id)
        .outerjoin(t.gps_positions, t.gps_positions.c.photo_id == t.photos.c.id)
        .outerjoin(t.places, t.places.c.id == t.photos.c.place_id)
    )
    if f.limit is not None:
        chosen = lean(f, t.photos.c.id).order_by(*_order(f)).limit(f.limit)
        return stmt.where(t.photos.c.id.in_(chosen.scalar_subquery())).order_by(*_order(f))
    conds = _conditions(f)
    if conds:
        stmt = stmt.where(*conds)
    return stmt.order_by(*_order(f))


def lean(f: Filter, *columns: Any) -> Select[Any]:
    """SELECT columns (of photos) FROM photos joined only to what the filter and its sort refer
    to, WHERE the filter: for choosing and counting photos."""
    stmt = select(*columns).select_from(t.photos)
    if f.path is not None or f.sort == "path":
        stmt = stmt.join(t.roots, t.roots.c.id == t.photos.c.root_id)
    if f.sort in ("make", "model"):
        stmt = stmt.outerjoin(t.devices, t.devices.c.id == t.photos.c.device_id)
    if f.has_gps is not None or f.near is not None:
        stmt = stmt.outerjoin(t.gps_positions, t.gps_positions.c.photo_id == t.photos.c.id)
    conds = _conditions(f)
    return stmt.where(*conds) if conds else stmt


def _conditions(f: Filter) -> list[ColumnElement[bool]]:
    time_col = t.photos.c.captured_at_utc if f.utc else t.photos.c.captured_at
    conds: list[ColumnElement[bool]] = []
    if f.make is not None or f.model is not None:
        # Devices are few: resolve them first so photos are found through their device index.
        d = t.devices.alias()
        dev = select(d.c.id)
        if f.make is not None:
            dev = dev.where(_text_match(d.c.make, f.make))
        if f.model is not None:
            dev = dev.where(_text_match(d.c.model, f.model))
        conds.append(t.photos.c.device_id.in_(dev.scalar_subquery()))
    for value, column in (
        (f.lens, t.photos.c.lens_model),
        (f.serial, t.photos.c.serial),
        (f.software, t.photos.c.software),
    ):
        if value is not None:
            conds.append(_text_match(column, value))
    if f.country is not None or f.city is not None:
        # Places are few: resolve them first so photos are found through their place index.
        p = t.places.alias()
        where = select(p.c.id)
        if f.country is not None:
            where = where.where(
                _text_match(p.c.country_code, f.country) | _text_match(p.c.country, f.country)
            )
        if f.city is not None:
            where = where.where(_text_match(p.c.city, f.city))
        conds.append(t.photos.c.place_id.in_(where.scalar_subquery()))
    if f.date_from is not None and f.date_to is not None and f.date_from.start >= f.date_to.end:
        raise QueryError("the date range ends before it starts: is --from after --to?")
    if f.date_from is not None:
        conds.append(time_col >= f.date_from.start)
    if f.date_to is not None:
        conds.append(time_col < f.date_to.end)
    if not f.utc:
        conds.extend(_sort_time_bounds(f))
    if f.has_gps is True:
        conds.append(
            and_(t.gps_positions.c.latitude.is_not(None), t.gps_positions.c.longitude.is_not(None))
        )
    elif f.has_gps is False:
        conds.append(
            (t.gps_positions.c.latitude.is_(None)) | (t.gps_positions.c.longitude.is_(None))
        )
    conds.extend(_has(t.photos.c.captured_at, f.dated))
    if f.time_source is not None:
        source = f.time_source.strip().lower()
        if source not in TIME_SOURCES:
            raise QueryError(
                f"time source {f.time_source!r}: one of {', '.join(TIME_SOURCES)}"
                " (none: the UTC time is not known)"
            )
        column = t.photos.c.time_source
        conds.append(column.is_(None) if source == "none" else column == source)
    conds.extend(_has(t.photos.c.error, f.errors))
    if f.file_type is not None:
        conds.append(_text_match(t.photos.c.format, f.file_type))
    conds.extend(_has(t.photos.c.warnings, f.warned))
    if f.warning is not None:
        conds.append(_contains(t.photos.c.warnings, f.warning))
    if f.path is not None:
        conds.append(_path_match(f.path))
    if f.near is not None:
        conds.extend(_near_conditions(f.near))
    for algorithm, column in t.DIGEST_COLUMNS.items():
        value = getattr(f, algorithm)
        if value is not None:
            conds.append(_digest_match(algorithm, value))
        listed = getattr(f, algorithm + "_in")
        if listed is not None:
            conds.append(_Listed(column, listed))
        unlisted = getattr(f, algorithm + "_not_in")
        if unlisted is not None:  # a file without the digest cannot be known: it stays
            conds.append(or_(column.is_(None), _Listed(column, unlisted, negate=True)))
    if f.tag is not None:
        conds.append(_Tagged(f.tag))
    if f.xmp is not None:  # the listing's entries XMP:XMLPacket and XMP:ExtendedXMP (extract)
        text = f"*{_unicode(f.xmp)}*"
        conds.append(or_(*(_Tagged(TagMatch(name, text, "XMP")) for name in XMP_ENTRIES)))
    for key, column in RANGES.items():
        between: Between | None = getattr(f, key)
        if between is not None:
            # Exact: a stored rational (28/10, 1/250) is the very float its typed value parses to.
            if between.low is not None:
                conds.append(column >= between.low)
            if between.high is not None:
                conds.append(column <= between.high)
    return conds


DIGEST_NAMES = {"sha256": "SHA-256", "blake2b": "BLAKE2b-256"}
_HEX_DIGEST = re.compile(r"[0-9a-f]{8,64}")


def _digest_match(algorithm: str, value: str) -> ColumnElement[bool]:
    """Files with this digest, or (for fewer than its 64 digits) whose digest begins with it:
    a range of the column's index, whatever the database's collation."""
    digits = value.strip().lower()
    if not _HEX_DIGEST.fullmatch(digits):
        raise QueryError(
            f"not a {DIGEST_NAMES[algorithm]} digest: {value!r} "
            "(64 hex digits, or the first 8 or more)"
        )
    column = t.DIGEST_COLUMNS[algorithm]
    if len(digits) == 64:
        return column == digits  # type: ignore[no-any-return]
    return and_(column >= digits, column < digits + "g")  # "g" follows every hex digit


_DIGEST_LINE = re.compile(
    r"(?:(?P<bsd>[A-Za-z0-9-]+) \(.*\) = (?P<bsd_hex>[0-9a-fA-F]+)"  # BSD: SHA256 (name) = hex
    r"|(?P<hex>[0-9a-fA-F]+)(?:[ \t].*)?)"  # bare, or as sha256sum prints: hex, blank, name
)
_BSD_NAMES = {"sha256": ("SHA256",), "blake2b": ("BLAKE2b-256", "BLAKE2B-256")}


def digest_set(lines: Iterable[str], algorithm: str, source: str) -> frozenset[str]:
    """A hash set: the `algorithm` digests listed in `lines` (of the file named `source`), one a
    line, bare or as sha256sum / b2sum -l 256 print them (GNU or BSD style); blank lines and #
    comments skipped. A line that is none of these is an error naming it, never skipped: a
    digest left out of the set silently would hide a match. Empty: an error too."""
    name = DIGEST_NAMES[algorithm]
    found: set[str] = set()
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        # sha256sum marks a line whose name it escaped (a backslash or newline in it) with \
        m = _DIGEST_LINE.fullmatch(text[1:] if text.startswith("\\") else text)
        digits = m and (m["hex"] or m["bsd_hex"])
        if m and m["bsd"] and m["bsd"] not in _BSD_NAMES[algorithm]:
            digits = None  # another algorithm's line
        if not digits or len(digits) != 64:  # the name beside it may be anything
            raise QueryError(f"{source}, line {number}: not a {name} digest: {text[:100]!r}")
        found.add(digits.lower())
    if not found:
        raise QueryError(f"{source} lists no {name} digest")
    return frozenset(found)


class _Listed(ColumnElement[bool]):
    """`column` IN (or, `negate`, NOT IN) a set of strings passed as one JSON parameter, however
    many (a hash set of millions: an IN list takes a parameter each, and SQLite allows 32,766):
    SQLite reads it with json_each, PostgreSQL with jsonb_array_elements_text. IN probes the
    column's index; NOT IN reads every row the other filters leave (a NULL column is neither)."""

    inherit_cache = False  # a value of its own in every statement

    def __init__(self, column: Any, values: frozenset[str], negate: bool = False) -> None:
        self.column = column
        self.values = bindparam(None, json.dumps(list(values)), type_=Text, unique=True)
        self.negate = negate


# How each database reads a JSON list of strings given as one parameter ({}: the parameter).
_JSON_STRINGS = {
    "sqlite": "SELECT value FROM json_each({})",
    "postgresql": "SELECT jsonb_array_elements_text(CAST({} AS JSONB))",
}


@compiles(_Listed, "sqlite")
@compiles(_Listed, "postgresql")
def _listed(element: _Listed, compiler: Any, **kw: Any) -> str:
    strings = _JSON_STRINGS[compiler.dialect.name].format(compiler.process(element.values, **kw))
    operator = "NOT IN" if element.negate else "IN"
    return f"{compiler.process(element.column, **kw)} {operator} ({strings})"


class _Tagged(ColumnElement[bool]):
    """The photo's tag listing (raw_tags: one JSON list of [ifd, id, name, value] a photo) holds
    a tag named so (in that IFD, when given) whose value matches: every listing a search
    reaches is read (no index; beside a device, date or place filter, only theirs)."""

    inherit_cache = False

    def __init__(self, match: TagMatch) -> None:
        pattern = _like_pattern(match.value)
        self.like = pattern is not None
        value = match.value.lower() if pattern is None else pattern
        self.name = bindparam(None, match.name.lower(), type_=Text, unique=True)
        self.value = bindparam(None, value, type_=Text, unique=True)
        self.ifd = None if match.ifd is None else bindparam(None, match.ifd.lower(), Text, True)
        # The listing's text holds '"Name",' wherever it holds the tag (tags_json), so a LIKE
        # over the text skips every listing without it before its JSON is read: a million
        # photos' listings in 0.65 s where reading them all takes 5.4 s (SQLite).
        named = _like_escaped(encode_basestring(match.name.lower()) + ",")
        self.named = bindparam(None, f"%{named}%", type_=Text, unique=True)


# How each database lists the entries of a photo's tag listing (`listing`, a raw_tags row),
# reads an entry's i-th field (0 ifd, 2 name, 3 value) as text, and matches a pattern ignoring
# ASCII case.
_TAG_ENTRIES = {
    "sqlite": ("json_each(listing.tags) AS tag", "json_extract(tag.value, '$[{i}]')", "LIKE"),
    "postgresql": (
        "jsonb_array_elements(CAST(listing.tags AS JSONB)) AS tag(entry)",
        "tag.entry ->> {i}",
        "ILIKE",  # SQLite's LIKE ignores ASCII case, as this does
    ),
}


@compiles(_Tagged, "sqlite")
@compiles(_Tagged, "postgresql")
def _tagged(element: _Tagged, compiler: Any, **kw: Any) -> str:
    entries, field, like = _TAG_ENTRIES[compiler.dialect.name]
    p = functools.partial(compiler.process, **kw)
    value = f"LIKE {p(element.value)} ESCAPE '\\'" if element.like else f"= {p(element.value)}"
    where = f"lower({field.format(i=2)}) = {p(element.name)} AND lower({field.format(i=3)}) {value}"
    if element.ifd is not None:
        where += f" AND lower({field.format(i=0)}) = {p(element.ifd)}"
    return (
        f"EXISTS (SELECT 1 FROM raw_tags AS listing, {entries}"
        f" WHERE listing.photo_id = {p(t.photos.c.id)}"
        f" AND listing.tags {like} {p(element.named)} ESCAPE '\\' AND {where})"
    )


def _near_conditions(near: Near) -> list[ColumnElement[bool]]:
    """Within the circle's bounding box (which the (latitude, longitude) index serves), then
    within the distance itself."""
    latitude, longitude = t.gps_positions.c.latitude, t.gps_positions.c.longitude
    south, north, ranges = bounding_box(near.latitude, near.longitude, near.radius_m)
    conds = [latitude.between(south, north)]
    if ranges is not None:
        conds.append(or_(*(longitude.between(west, east) for west, east in ranges)))
    conds.append(_distance_from(near) <= near.radius_m)
    return conds


def _distance_from(near: Near) -> ColumnElement[float]:
    """The SQL distance in metres from a photo's GPS position to the one searched near."""
    position = (t.gps_positions.c.latitude, t.gps_positions.c.longitude)
    return _distance_function()(*position, near.latitude, near.longitude)  # type: ignore[no-any-return]


@functools.cache
def _distance_function() -> Any:
    """photocat_distance_m(lat1, lon1, lat2, lon2) in SQL: on SQLite the Python function the
    store registers on each connection (catalog.distance.sql_distance_m; SQLite's own math
    functions are an optional part of its build); elsewhere (PostgreSQL) the same haversine
    formula in SQL. Made on first use: most searches never measure a distance."""
    from sqlalchemy import Float
    from sqlalchemy.ext.compiler import compiles
    from sqlalchemy.sql.functions import FunctionElement

    class distance_m(FunctionElement[float]):
        type = Float()
        name = "photocat_distance_m"
        inherit_cache = True

    @compiles(distance_m, "sqlite")
    def _registered(element: Any, compiler: Any, **kw: Any) -> str:
        return f"photocat_distance_m({compiler.process(element.clauses, **kw)})"

    @compiles(distance_m)
    def _formula(element: Any, compiler: Any, **kw: Any) -> str:
        lat1, lon1, lat2, lon2 = element.clauses
        half_radians = math.pi / 360  # radians(x) / 2, as catalog.distance computes it
        a = func.power(func.sin((lat2 - lat1) * half_radians), 2) + func.cos(
            lat1 * (math.pi / 180)
        ) * func.cos(lat2 * (math.pi / 180)) * func.power(func.sin((lon2 - lon1) * half_radians), 2)
        expr = 2 * EARTH_RADIUS_M * func.asin(func.least(1.0, func.sqrt(a)))
        return str(compiler.process(expr, **kw))

    return distance_m


# sort_time is the UTC instant where known, else the local time itself; a UTC offset is always
# less than a day (Python's tzinfo contract; extraction keeps tag and GPS offsets within
# -12:00..+14:00), so sort_time lies within a day of captured_at.
SORT_TIME_SLACK = timedelta(days=1)


def _sort_time_bounds(f: Filter) -> list[ColumnElement[bool]]:
    """A local-time range widened by a day, on sort_time: implied by the range itself, so no
    photo is lost, and it lets the sort_time index find the photos already in the order a
    search returns them (no sort of every matching row before the first one comes out)."""
    bounds: list[ColumnElement[bool]] = []
    try:
        if f.date_from is not None:
            bounds.append(t.photos.c.sort_time >= f.date_from.start - SORT_TIME_SLACK)
        if f.date_to is not None:
            bounds.append(t.photos.c.sort_time < f.date_to.end + SORT_TIME_SLACK)
    except OverflowError:  # a bound within a day of year 1 or 9999: nothing to narrow
        return []
    return bounds


def _path_match(value: str) -> ColumnElement[bool]:
    full = t.roots.c.path + "/" + t.photos.c.rel_path  # stored form: see catalog.paths
    if "*" in value or "?" in value:
        return _text_match(full, to_db(value))
    prefix = to_db(os.path.abspath(value))
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return (full == prefix) | full.like(escaped.rstrip("/") + "/%", escape="\\")


def _order(f: Filter) -> list[Any]:
    if f.sort not in SORTS:
        raise QueryError(f"cannot sort by {f.sort!r}; choose one of {', '.join(SORTS)}")
    if f.sort == "captured_at":
        # UTC where known, else local time. With a UTC bound every row has a UTC instant, so
        # sorting by it is the same order and lets one index serve both filter and order.
        utc_bound = f.utc and (f.date_from is not None or f.date_to is not None)
        cols = [t.photos.c.captured_at_utc if utc_bound else t.photos.c.sort_time]
    elif f.sort == "path":
        cols = [t.roots.c.path, t.photos.c.rel_path]
    elif f.sort == "distance":
        if f.near is None:
            raise QueryError(
                "sorting by distance needs a position (--near LAT,LON or near:LAT,LON)"
            )
        cols = [_distance_from(f.near)]
    else:
        cols = [SORTS[f.sort]]
    cols = [c.desc() if f.desc else c.asc() for c in cols]
    return [c.nulls_last() for c in cols] + [t.photos.c.id.desc() if f.desc else t.photos.c.id]


def _join(root: str, rel: str) -> str:
    return root.rstrip("/") + "/" + rel if "/" in root else os.path.join(root, rel)


def _iso(value: datetime | None, suffix: str = "") -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="seconds") + suffix


def search(
    catalog: Catalog, f: Filter, keys: Sequence[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Stream the records matching a filter: whole, or with only `keys` (in that order), for
    which only the columns those keys need are read (see FIELDS)."""
    columns, make = (RECORD_COLUMNS, to_record) if keys is None else record_maker(keys)
    stmt = build(f, columns)
    with catalog.engine.connect() as conn:
        for row in conn.execute(stmt):
            yield make(row)


def count(catalog: Catalog, f: Filter) -> int:
    stmt = lean(replace(f, sort="id"), func.count())  # no joins the filter does not need
    with catalog.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _span(row: Any) -> dict[str, Any]:
    """A summary row's photo count and first/last capture time (devices, bodies, places)."""
    return {
        "photos": row.photos,
        "first_captured_at": _iso(row.first),
        "last_captured_at": _iso(row.last),
    }


def devices(catalog: Catalog, serials: bool = False) -> list[dict[str, Any]]:
    """Each make/model with its photo count and first/last capture time; with `serials`, each
    camera body: make, model and serial number (None: the camera wrote none)."""
    if serials:
        return _bodies(catalog)

    # Per device, three lookups in the (device_id, captured_at) index (a count of its range, its
    # first and last entry) instead of a GROUP BY over every photo: 8x faster at a million.
    def of_device(value: Any) -> Any:
        return select(value).where(t.photos.c.device_id == t.devices.c.id).scalar_subquery()

    stmt = select(
        t.devices.c.make,
        t.devices.c.model,
        of_device(func.count()).label("photos"),
        of_device(func.min(t.photos.c.captured_at)).label("first"),
        of_device(func.max(t.photos.c.captured_at)).label("last"),
    ).order_by(
        desc("photos"), t.devices.c.make, t.devices.c.model
    )  # by label: each count runs once
    with catalog.engine.connect() as conn:
        return [
            {
                "make": r.make or None,
                "model": r.model or None,
                **_span(r),
            }
            for r in conn.execute(stmt)
            if r.photos  # a device whose photos are all gone
        ]


def _bodies(catalog: Catalog) -> list[dict[str, Any]]:
    """Each (make, model, serial) with its photo count and first/last capture time, most photos
    first: the photos read whole (no index holds the serial), grouped by serial first: grouped
    by device first, SQLite walks the device index and reads each row out of order (a million
    photos: 1.6 s instead of 0.7)."""
    bodies = (
        select(
            t.photos.c.serial,
            t.photos.c.device_id,
            func.count().label("photos"),
            func.min(t.photos.c.captured_at).label("first"),
            func.max(t.photos.c.captured_at).label("last"),
        )
        .group_by(t.photos.c.serial, t.photos.c.device_id)
        .subquery()
    )
    stmt = (
        select(t.devices.c.make, t.devices.c.model, bodies)
        .join_from(bodies, t.devices, t.devices.c.id == bodies.c.device_id)
        .order_by(  # no serial first on both databases (PostgreSQL sorts NULL last)
            bodies.c.photos.desc(),
            t.devices.c.make,
            t.devices.c.model,
            bodies.c.serial.nulls_first(),
        )
    )
    with catalog.engine.connect() as conn:
        return [
            {
                "make": r.make or None,
                "model": r.model or None,
                "serial": r.serial,
                **_span(r),
            }
            for r in conn.execute(stmt)
        ]


def duplicates(
    catalog: Catalog, algorithm: str = "sha256", path: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """Files whose bytes are another's too (the same `algorithm` digest), under `path` if given:
    one record per file (the digest, how many copies, size, path), the largest files first, a
    group's copies together, by path. Also how many files there have no such digest (not hashed
    yet, or hashed with the other algorithm): their copies cannot be listed."""
    if algorithm not in t.DIGEST_COLUMNS:
        choices = ", ".join(t.DIGEST_COLUMNS)
        raise QueryError(f"no digest {algorithm!r}; choose one of {choices}")
    column = t.DIGEST_COLUMNS[algorithm]
    f = Filter(path=path)
    groups = (
        lean(f, column.label("digest"), func.count().label("copies"))
        .where(column.is_not(None))
        .group_by(column)
        .having(func.count() > 1)
        .subquery()
    )
    stmt = (
        select(
            groups.c.digest, groups.c.copies, t.photos.c.size, t.roots.c.path, t.photos.c.rel_path
        )
        .select_from(t.photos)
        .join(groups, column == groups.c.digest)
        .join(t.roots, t.roots.c.id == t.photos.c.root_id)
        .where(*_conditions(f))
        .order_by(t.photos.c.size.desc(), groups.c.digest, t.roots.c.path, t.photos.c.rel_path)
    )
    unhashed = lean(f, func.count()).where(column.is_(None))
    with catalog.engine.connect() as conn:
        rows = [
            {
                algorithm: digest,
                "copies": copies,
                "size": size,
                "path": _join(from_db(root), from_db(rel)),
            }
            for digest, copies, size, root, rel in conn.execute(stmt)
        ]
        return rows, int(conn.execute(unhashed).scalar_one())


def _catalogued_here(folders: Sequence[str]) -> list[ColumnElement[bool]]:
    """Files catalogued on this machine (the only ones it can read), under any of `folders`
    (all of them when there is none)."""
    conds = [t.roots.c.host == this_host()]
    if folders:
        conds.append(or_(*(_path_match(folder) for folder in folders)))
    return conds


def count_catalogued(catalog: Catalog, folders: Sequence[str] = ()) -> int:
    stmt = (
        select(func.count())
        .select_from(t.photos)
        .join(t.roots, t.roots.c.id == t.photos.c.root_id)
        .where(*_catalogued_here(folders))
    )
    with catalog.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def catalogued_files(
    catalog: Catalog, algorithm: str, folders: Sequence[str] = (), batch: int = 1000
) -> Iterator[tuple[str, str | None]]:
    """(path, its `algorithm` digest or None) of each file catalogued on this machine under
    `folders` (all when there is none), by id, read `batch` rows at a time: no connection is
    held while the caller works through a page (a watcher may be writing meanwhile)."""
    column = t.DIGEST_COLUMNS[algorithm]
    conds = _catalogued_here(folders)
    after = 0
    while True:
        stmt = (
            select(t.photos.c.id, t.roots.c.path, t.photos.c.rel_path, column)
            .select_from(t.photos)
            .join(t.roots, t.roots.c.id == t.photos.c.root_id)
            .where(*conds, t.photos.c.id > after)
            .order_by(t.photos.c.id)
            .limit(batch)
        )
        with catalog.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return
        after = rows[-1][0]
        for _, root, rel, digest in rows:
            yield _join(from_db(root), from_db(rel)), digest


def folders(catalog: Catalog) -> list[dict[str, Any]]:
    """Each catalogued folder (a root: scanned or watched, on any machine) with its number of
    photos, when it was added and last scanned (UTC); by machine, then path."""
    count = (
        select(func.count())
        .where(t.photos.c.root_id == t.roots.c.id)  # the (root_id, rel_path) index: a range count
        .scalar_subquery()
        .label("photos")
    )
    stmt = select(
        t.roots.c.host, t.roots.c.path, count, t.roots.c.added_at, t.roots.c.last_scan_at
    ).order_by(t.roots.c.host, t.roots.c.path)
    with catalog.engine.connect() as conn:
        return [
            {
                "host": r.host,
                "path": from_db(r.path),
                "photos": r.photos,
                "added_at": _iso(r.added_at, "Z"),
                "last_scan_at": _iso(r.last_scan_at, "Z"),
            }
            for r in conn.execute(stmt)
        ]


def places(catalog: Catalog) -> list[dict[str, Any]]:
    """Each place photos were found in (nearest town to their GPS position), with its photo
    count and first/last capture time; most photos first."""
    stmt = (
        select(
            t.places.c.country_code,
            t.places.c.country,
            t.places.c.region,
            t.places.c.city,
            func.count(t.photos.c.id).label("photos"),
            func.min(t.photos.c.captured_at).label("first"),
            func.max(t.photos.c.captured_at).label("last"),
        )
        .join(t.photos, t.photos.c.place_id == t.places.c.id)
        .group_by(
            t.places.c.id,
            t.places.c.country_code,
            t.places.c.country,
            t.places.c.region,
            t.places.c.city,
        )
        .order_by(
            func.count(t.photos.c.id).desc(),
            t.places.c.country_code,
            t.places.c.region,
            t.places.c.city,
        )
    )
    with catalog.engine.connect() as conn:
        return [
            {
                "country": r.country_code,
                "country_name": r.country,
                "region": r.region or None,
                "city": r.city,
                **_span(r),
            }
            for r in conn.execute(stmt)
        ]


TERM = re.compile(r"^(?P<key>[a-z_][a-z0-9_]*):(?P<value>.*)$")
_TEXT_TERMS = (
    "make", "model", "lens", "serial", "software", "path", "country", "city", "sha256", "blake2b",
    "warning", "xmp",
)  # fmt: skip
# what a field:value term may name
TERM_FIELDS = (
    *_TEXT_TERMS, "tag", "type", "date", "utc", "dated", "time_source", "gps", "error", "warned",
    "near", "within", *RANGES,
)  # fmt: skip
# how a photo's UTC instant was found (catalog.when), and "none" where it is not known
TIME_SOURCES = ("offset_tag", "gps_time", "gps_zone", "none")


def parse_terms(terms: list[str], base: Filter | None = None) -> Filter:
    """Beets-style terms → Filter: `make:Canon`, `model:*G920*`, `date:2016-11..2016-12`,
    `dated:no`, `time_source:gps_zone`, `gps:yes`, `error:yes`, `warned:yes`,
    `warning:*differs from*`, `lens:...`, `serial:...`,
    `software:*photoshop*`, `tag:Artist=Ann`, `path:/photos/2016`, `country:FR`, `city:Paris`,
    `near:48.8584,2.2945`, `within:2km`, `sha256:9f86d081...`, `type:heic`, `iso:100..800`,
    `width:4000..`, `size:..200KiB`,
    `f_number:..2.8`, `focal_length:24..70`, `exposure_time:1/250..1/60`. Options given beside
    win."""
    f = base or Filter()
    near: str | None = None
    within: str | None = None
    for term in terms:
        m = TERM.match(term)
        if not m:
            raise QueryError(f"not a field:value term: {term!r}")
        key, value = m["key"], m["value"]
        if key in _TEXT_TERMS:
            f = replace(f, **{key: value})
        elif key in ("date", "utc"):
            lo, sep, hi = value.partition("..")
            start = TimeBound.parse(lo) if lo else None
            end = (TimeBound.parse(hi) if hi else None) if sep else start
            f = replace(f, date_from=start, date_to=end, utc=key == "utc")
        elif key == "tag":
            f = replace(f, tag=TagMatch.parse(value))
        elif key == "gps":
            f = replace(f, has_gps=_yes(value, term))
        elif key == "dated":
            f = replace(f, dated=_yes(value, term))
        elif key == "time_source":
            f = replace(f, time_source=value)
        elif key == "error":
            f = replace(f, errors=_yes(value, term))
        elif key == "warned":
            f = replace(f, warned=_yes(value, term))
        elif key in RANGES:
            f = replace(f, **{key: Between.parse(value, _bytes if key == "size" else None)})
        elif key == "type":
            f = replace(f, file_type=value)
        elif key == "near":
            near = value
        elif key == "within":
            within = value
        else:
            raise QueryError(
                f"unknown field {key!r} in {term!r} (the fields: {', '.join(TERM_FIELDS)})"
            )
    return locate(f, near, within)


def _yes(value: str, term: str) -> bool:
    v = value.lower()
    if v in ("yes", "true", "1", "y"):
        return True
    if v in ("no", "false", "0", "n"):
        return False
    raise QueryError(f"{term!r}: use yes or no")


# What `show` and `search --full` add to the record: provenance, warnings and every tag.
DETAIL_COLUMNS = (
    t.roots.c.host,
    t.photos.c.size,
    t.photos.c.subsec,
    t.photos.c.captured_from,
    t.photos.c.offset_from,
    t.photos.c.mtime_ns,
    t.photos.c.warnings,
    t.photos.c.first_seen,
    t.photos.c.last_scanned,
    t.photos.c.read_by,
    t.gps_positions.c.gps_time_utc,
    t.raw_tags.c.tags,
)


def _with_details(stmt: Select[Any]) -> Select[Any]:
    return stmt.add_columns(*DETAIL_COLUMNS).outerjoin(
        t.raw_tags, t.raw_tags.c.photo_id == t.photos.c.id
    )


def _detail(row: Any) -> dict[str, Any]:
    """A row of build(...) with DETAIL_COLUMNS as everything known about its file."""
    m = row._mapping
    detail = to_record(row)
    detail.update(
        {
            "host": m["host"],
            "size": m["size"],
            "modified_ns": m["mtime_ns"],
            "captured_from": m["captured_from"],
            "subsec": m["subsec"],
            "offset_from": m["offset_from"],
            "time_source": m["time_source"],
            "time_zone": m["time_zone"],
            "gps_time_utc": _iso(m["gps_time_utc"], "Z"),
            "place_source": PLACE_SOURCE if m["city"] is not None else None,
            "first_seen": _iso(m["first_seen"], "Z"),
            "last_scanned": _iso(m["last_scanned"], "Z"),
            "read_by": m["read_by"],
            "warnings": m["warnings"].split("\n") if m["warnings"] else [],
            "tags": [
                {"ifd": t[0], "id": t[1], "name": t[2], "value": t[3]}
                for t in json.loads(m["tags"] or "[]")
            ],
        }
    )
    return detail


def details(catalog: Catalog, f: Filter) -> Iterator[dict[str, Any]]:
    """search(), each photo as photo_detail gives it: for exporting everything known."""
    with catalog.engine.connect() as conn:
        for row in conn.execute(_with_details(build(f))):
            yield _detail(row)


def photo_detail(catalog: Catalog, path: str) -> dict[str, Any] | None:
    """Everything known about one file: the record, provenance fields, warnings and all tags."""
    target = os.path.abspath(path)
    for root_id, root_path in catalog.roots(host=this_host()):
        rel = relative_to(target, root_path)
        if not rel:  # a file lies strictly inside its root
            continue
        stmt = _with_details(build(Filter(sort="id"))).where(
            t.photos.c.root_id == root_id, t.photos.c.rel_path == to_db(rel)
        )
        with catalog.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is not None:
            return _detail(row)
    return None
