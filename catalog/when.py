"""When a photo was really taken: the UTC instant of its local capture time, and how that is known.

Pure (no database, no I/O beyond timezonefinder's own data files). `captured_at`, the wall-clock
time as written by the camera, is never changed; the offset in effect at capture is found by the
first rule that applies, and `time_source` records which:

1. "offset_tag": an EXIF OffsetTime* tag, the one that belongs to the date tag the capture time
   came from (OffsetTimeOriginal for DateTimeOriginal...; `exif_values.capture_time` reads it).
2. "gps_time": the GPS clock (GPSDateStamp + GPSTimeStamp, always UTC). The offset is the local
   time minus the GPS time, rounded to the nearest quarter hour. It is rejected (with a warning)
   when it is outside -12:00..+14:00 or more than `GPS_TOLERANCE` (3 minutes) away from a
   quarter hour: a GPS fix may lag the shutter by a few seconds to a minute or two, but a larger
   gap means the camera clock or the GPS stamp is simply wrong, and a wrong offset is worse
   than none.
3. "gps_zone": the time zone at the GPS position, looked up offline (timezonefinder, land zones
   only: the open sea gives no zone), with its daylight-saving rules from the IANA database
   (zoneinfo). A local time that happened twice (clocks went back) or never (clocks went
   forward) takes the offset before the change (fold=0), with a warning.
4. otherwise the offset, the UTC instant and the source stay None: the machine's own time zone
   is never assumed.

Whenever the position gives a zone, its IANA name is kept in `time_zone`, whichever rule found
the offset, and a disagreement between that zone and an offset from rules 1-2 is reported as a
warning (the camera clock was not on local time, or the position is elsewhere).

timezonefinder costs about 0.3 s and 25 MB the first time a process needs it, and is fast after;
it is loaded lazily, once per process, and only for a photo with a GPS position.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from catalog.errors import describe
from catalog.record import PhotoRecord, add_warning

GPS_TOLERANCE = timedelta(minutes=3)
QUARTER_HOUR = timedelta(minutes=15)
MIN_OFFSET = timedelta(hours=-12)
MAX_OFFSET = timedelta(hours=14)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The time fields of a record, as the rules found them."""

    offset: str | None = None  # "+05:45", in effect at capture
    captured_at_utc: datetime | None = None  # naive UTC
    time_source: str | None = None  # "offset_tag" | "gps_time" | "gps_zone"
    time_zone: str | None = None  # IANA name at the GPS position
    warnings: list[str] = field(default_factory=list)


def apply(record: PhotoRecord) -> None:
    """Fill offset / captured_at_utc / time_source / time_zone of an extracted record. Never
    raises: a failure here (a bug, a zone database that cannot be read) leaves the time
    unresolved with a warning saying why, and the record is kept."""
    try:
        found = resolve(
            record.captured_at,
            record.offset if record.time_source == "offset_tag" else None,
            record.offset_from,
            record.latitude,
            record.longitude,
            record.gps_time_utc,
        )
    except Exception as exc:
        add_warning(record, f"UTC time not resolved ({describe(exc)})")
        return
    record.offset = found.offset
    record.captured_at_utc = found.captured_at_utc
    record.time_source = found.time_source
    record.time_zone = found.time_zone
    if found.time_source != "offset_tag":
        record.offset_from = None
    for message in found.warnings:
        add_warning(record, message)


def resolve(
    captured_at: datetime | None,
    tag_offset: str | None,
    tag_name: str | None,
    latitude: float | None,
    longitude: float | None,
    gps_time_utc: datetime | None,
) -> Resolved:
    """The rules of this module's docstring on plain values. `tag_offset` is the offset rule 1
    found ("+02:00", already validated), `tag_name` the tag it came from."""
    warnings: list[str] = []
    zone = zone_at(latitude, longitude)
    offset: timedelta | None = None
    source: str | None = None
    if captured_at is not None and tag_offset is not None:
        offset, source = parse_offset(tag_offset), "offset_tag"
    if offset is None and captured_at is not None and gps_time_utc is not None:
        offset, problem = gps_time_offset(captured_at, gps_time_utc)
        if offset is not None:
            source = "gps_time"
        elif problem:
            warnings.append(problem)
    if captured_at is not None and zone is not None:
        zone_offset, problem, both = _in_zone(captured_at, zone)
        if offset is None and zone_offset is not None:
            offset, source = zone_offset, "gps_zone"
            if problem:
                warnings.append(problem)
        elif offset is not None and zone_offset is not None and offset not in both:
            what = tag_name if source == "offset_tag" else "the GPS clock"
            warnings.append(
                f"offset {format_offset(offset)} from {what} differs from {zone}"
                f" ({format_offset(zone_offset)} then) at the GPS position"
            )
    if offset is None or captured_at is None:
        return Resolved(time_zone=zone, warnings=warnings)
    try:
        utc = captured_at - offset
    except OverflowError:  # year 1 or 9999 at the edge
        return Resolved(time_zone=zone, warnings=warnings)
    return Resolved(format_offset(offset), utc, source, zone, warnings)


# --- rule 2: the GPS clock ---------------------------------------------------------------------


def gps_time_offset(local: datetime, gps_utc: datetime) -> tuple[timedelta | None, str | None]:
    """(offset, None), or (None, why not) when the gap is no plausible UTC offset."""
    gap = local - gps_utc
    quarters = round(gap / QUARTER_HOUR)
    offset = quarters * QUARTER_HOUR
    if not MIN_OFFSET <= offset <= MAX_OFFSET:
        return None, (
            f"GPS time {gps_utc.isoformat()}Z is {_signed(gap)} from the capture time, outside"
            " -12:00..+14:00: not used for the UTC offset"
        )
    if abs(gap - offset) > GPS_TOLERANCE:
        return None, (
            f"GPS time {gps_utc.isoformat()}Z is {_signed(gap)} from the capture time, more than"
            f" {GPS_TOLERANCE.seconds // 60} minutes off any quarter hour: not used for the UTC"
            " offset"
        )
    return offset, None


# --- rule 3: the time zone at the position -------------------------------------------------------

_FINDER_LOCK = threading.Lock()
_FINDER: Any = None


def zone_at(latitude: float | None, longitude: float | None) -> str | None:
    """IANA zone name of the land (or territorial waters) at a position; None at sea or unknown.

    timezonefinder is loaded on the first call with a position, once per process."""
    global _FINDER
    if latitude is None or longitude is None:
        return None
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    with _FINDER_LOCK:
        if _FINDER is None:
            from timezonefinder import TimezoneFinder

            _FINDER = TimezoneFinder()
        name = _FINDER.timezone_at_land(lng=longitude, lat=latitude)
    return name if isinstance(name, str) and name else None


def finder_loaded() -> bool:
    """Whether this process has loaded timezonefinder (for tests and measurements)."""
    return _FINDER is not None


def offset_in_zone(local: datetime, zone_name: str) -> tuple[timedelta | None, str | None]:
    """(UTC offset of a wall-clock time in a zone, a warning or None).

    Times in a daylight-saving fold (they happened twice) or gap (they never happened) take the
    offset before the change (fold=0) and say so. Offsets that are no whole minute (local mean
    time, before a country adopted standard time) are not used."""
    offset, problem, _ = _in_zone(local, zone_name)
    return offset, problem


def _in_zone(
    local: datetime, zone_name: str
) -> tuple[timedelta | None, str | None, set[timedelta | None]]:
    """offset_in_zone's answer, and both offsets the time can have there (two in a fold), which
    resolve checks another offset against."""
    try:
        zone = _zone(zone_name)
    except Exception:
        return None, f"time zone {zone_name} is missing from this machine's zone database", set()
    try:
        first = local.replace(tzinfo=zone, fold=0)
        offset = first.utcoffset()
        other = local.replace(tzinfo=zone, fold=1).utcoffset()
        back = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    except (OverflowError, ValueError):
        return None, None, set()
    both = {offset, other}
    if offset is None or offset % timedelta(minutes=1):
        return None, (
            f"{zone_name} had no standard UTC offset on {local.date().isoformat()}"
            " (local mean time): not used"
        ), both  # fmt: skip
    if back != local:
        return offset, (
            f"{local.isoformat()} never happened in {zone_name} (clocks went forward):"
            f" taken as {format_offset(offset)}, the offset before the change (fold=0)"
        ), both  # fmt: skip
    if other is not None and other != offset:
        return offset, (
            f"{local.isoformat()} happened twice in {zone_name} (clocks went back):"
            f" taken as the first, {format_offset(offset)} (fold=0)"
        ), both  # fmt: skip
    return offset, None, both


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    """ZoneInfo(name), kept: ZoneInfo's own cache holds only the 8 zones used last strongly, so
    photos from more places re-read their zone files from disk again and again (~35 us each)."""
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


# --- offsets as text -----------------------------------------------------------------------------


@cache  # a few dozen offsets recur in a library (whole minutes, within a day either way)
def format_offset(offset: timedelta) -> str:
    """timedelta -> "+05:45" / "-03:30" / "+00:00"."""
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def parse_offset(text: str) -> timedelta | None:
    """ "+05:45" -> timedelta (the validated form `exif_values.parse_offset` keeps), else None."""
    text = text.strip()
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        delta = timedelta(hours=int(text[1:3]), minutes=int(text[4:6]))
    except ValueError:
        return None
    return -delta if text[0] == "-" else delta


def _signed(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    days, seconds = divmod(seconds, 86400)
    clock = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{sign}{days} days {clock}" if days else f"{sign}{clock}"
