"""Pure helpers that turn Pillow's raw EXIF values into catalog values.

No I/O: plain values in (str, bytes, int, float, rationals such as Pillow's IFDRational, tuples),
plain values out, so every rule can be tested and reused on its own (the GPS-time / GPS-zone
rules will sit next to `capture_time`). Nothing here raises on bad input: unusable values become
None and, where a person would want to know, a warning is appended to the `warnings` list the
caller passes in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from numbers import Rational
from typing import Any

from PIL.TiffImagePlugin import IFDRational

# Concrete classes first: isinstance against the numbers.Rational ABC is slow on the hot path.
_RATIONALS = (IFDRational, Fraction)

# Tags whose value is never worth showing as text in the forensic listing.
_ALWAYS_BINARY = frozenset({0x927C, 0xC4A5})  # MakerNote, PrintIM
_USER_COMMENT = 0x9286
_XML_PACKET = 0x02BC  # XMP in a TIFF IFD
_XP_TAGS = frozenset(range(0x9C9B, 0x9CA0))  # XPTitle .. XPSubject: UTF-16LE in BYTE tags
# Longer byte blobs (XMP packets, ICC profiles, thumbnails...) are summarised by length.
_MAX_BYTES_SHOWN = 256
# Longer arrays (TIFF StripOffsets, colour maps...) are summarised by count.
_MAX_ITEMS_SHOWN = 64


# --- text -------------------------------------------------------------------------------------


def decode_bytes(raw: bytes) -> str:
    """UTF-8 when valid, else Latin-1 (what truth.json does); never raises."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def clean_text(value: object) -> str | None:
    """An ASCII/UNDEFINED tag value as a person reads it (and as ExifTool prints it).

    Cut at the first NUL, trailing blanks stripped, UTF-8 else Latin-1. Empty or non-text -> None.
    Pillow decodes ASCII tags as Latin-1, which is lossless, so re-encoding recovers the bytes and
    lets UTF-8 strings (common from phones) come out right.
    """
    if type(value) is str and value.isascii():  # the common case: the same text, found faster
        return value.split("\0", 1)[0].rstrip(" \t\r\n") or None
    if isinstance(value, str):
        try:
            raw = value.encode("latin-1")
        except UnicodeEncodeError:  # not from Pillow's Latin-1 decode: already real text
            text = value.split("\0", 1)[0]
            return text.rstrip(" \t\r\n") or None
    elif isinstance(value, bytes):
        raw = value
    else:
        return None
    text = decode_bytes(raw.split(b"\0", 1)[0]).rstrip(" \t\r\n")
    return text or None


# --- numbers ----------------------------------------------------------------------------------


def finite_float(value: object) -> float | None:
    """A rational/int/float (or the first of a tuple of them) as a finite float, else None.

    Pillow turns a zero-denominator rational into NaN instead of raising; NaN and inf are
    "undefined" here.
    """
    if isinstance(value, tuple):
        if not value:
            return None
        value = value[0]
    if type(value) is IFDRational:  # the commonest: float(value) is this division, 4x slower
        numerator, denominator = value.numerator, value.denominator
        if type(numerator) is int and type(denominator) is int:
            if not denominator:
                return None
            try:
                number = numerator / denominator
            except OverflowError:
                return None
            return number if math.isfinite(number) else None
    if isinstance(value, str | bytes | bool) or value is None:
        return None
    try:
        number = float(value)
    except (ValueError, ZeroDivisionError, OverflowError, TypeError, AttributeError):
        return None
    return number if math.isfinite(number) else None


def first_int(value: object) -> int | None:
    """An integer tag value, or the first one of a tuple (e.g. ISOSpeedRatings)."""
    if isinstance(value, tuple):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bytes) and len(value) == 1:  # BYTE tags arrive as bytes
        return value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _number(value: float) -> str:
    """72.0 -> "72", 0.004 -> "0.004" (shortest round-trip repr)."""
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _rational(value: Rational) -> str:
    numerator, denominator = value.numerator, value.denominator
    if denominator == 0:
        return f"{numerator}/0"  # undefined: show what is stored rather than "nan"
    if isinstance(numerator, int) and isinstance(denominator, int) and numerator % denominator == 0:
        return str(numerator // denominator)  # exact even beyond float precision
    return _number(numerator / denominator)


# --- forensic listing -------------------------------------------------------------------------


def render_value(value: Any, tag_id: int = -1, big_endian: bool = False) -> str:
    """Any Pillow tag value as one line of text: numbers as numbers, text decoded, blobs summarised.

    Rationals are always rendered as decimals ("1/250" -> "0.004", "72/1" -> "72"); undefined
    rationals as "n/0".
    """
    kind = type(value)  # exact types first: isinstance against the ABCs below is slow
    if kind is str:
        return clean_text(value) or ""
    if kind is int:
        return str(value)
    if kind is IFDRational:
        return _rational(value)
    if kind is bytes:
        return _render_bytes(value, tag_id, big_endian)
    if kind is tuple and len(value) <= _MAX_ITEMS_SHOWN:
        return " ".join([render_value(item, tag_id, big_endian) for item in value])
    if isinstance(value, str):
        return clean_text(value) or ""
    if isinstance(value, int):
        return str(int(value))  # int() also turns True into "1"
    if isinstance(value, _RATIONALS):
        return _rational(value)
    if isinstance(value, bytes):
        return _render_bytes(value, tag_id, big_endian)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple | list):
        if len(value) > _MAX_ITEMS_SHOWN:
            return f"({len(value)} values)"
        return " ".join(render_value(item, tag_id, big_endian) for item in value)
    if isinstance(value, Rational):
        return _rational(value)
    return str(value).replace("\0", "")


def _render_bytes(raw: bytes, tag_id: int, big_endian: bool) -> str:
    if tag_id in _ALWAYS_BINARY:
        return f"(binary, {len(raw)} bytes)"
    if tag_id == _USER_COMMENT:
        return _user_comment(raw, big_endian)
    if tag_id in _XP_TAGS:
        return raw.decode("utf-16-le", "replace").split("\0", 1)[0].rstrip()
    if len(raw) > _MAX_BYTES_SHOWN:
        kind = "XMP" if tag_id == _XML_PACKET else "binary"
        return f"({kind}, {len(raw)} bytes)"
    # A short all-NUL value is a number (GPSAltitudeRef 0 = above sea level), not blank text.
    text = None if len(raw) <= 4 and not raw.strip(b"\0") else _as_text(raw)
    if text is not None:
        return text
    return " ".join(str(byte) for byte in raw)  # e.g. ComponentsConfiguration "1 2 3 0"


def _as_text(raw: bytes) -> str | None:
    """Short byte values that are really text (ExifVersion b"0230"), else None."""
    stripped = raw.rstrip(b"\0 ")
    if not stripped:
        return "" if raw else None
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def _user_comment(raw: bytes, big_endian: bool) -> str:
    """UserComment: an 8-byte character-code prefix, then the comment."""
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        if body.startswith((b"\xff\xfe", b"\xfe\xff")):
            text = body.decode("utf-16", "replace")
        else:
            text = body.decode("utf-16-be" if big_endian else "utf-16-le", "replace")
    elif code.startswith(b"JIS"):
        text = body.decode("shift_jis", "replace")
    elif code.startswith(b"ASCII") or code == b"\0" * 8:
        text = _as_text(body) if len(body) <= 4096 else None
        if text is None:
            return f"(binary, {len(raw)} bytes)"
    else:
        return f"(binary, {len(raw)} bytes)"
    return text.split("\0", 1)[0].rstrip()


# --- dates and capture time ------------------------------------------------------------------

_EXIF_DATETIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_SUBSEC = re.compile(r"\d{1,16}")  # digits only; 16 is also the catalog column's width


def _is_blank(text: str) -> bool:
    """EXIF writes "    :  :     :  :  " (or "   :  ") for an unknown date or offset."""
    return not text.strip(" :\t")


def parse_exif_datetime(text: str | None) -> datetime | None:
    """'YYYY:MM:DD HH:MM:SS' (anything after the seconds ignored) -> naive datetime, else None."""
    if not text:
        return None
    match = _EXIF_DATETIME.match(text.strip())
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))
    except (ValueError, OverflowError):  # month 13, hour 25, year 0000...
        return None


def parse_offset(text: str | None, warnings: list[str], tag: str) -> timedelta | None:
    """'+02:00' -> timedelta; anything else None (with a warning unless it is blank)."""
    if not text or _is_blank(text):
        return None
    match = _OFFSET.fullmatch(text.strip())
    if match is not None:
        sign, hours, minutes = match[1], int(match[2]), int(match[3])
        # real zones span -12:00 .. +14:00
        if minutes < 60 and hours * 60 + minutes <= (14 if sign == "+" else 12) * 60:
            delta = timedelta(hours=hours, minutes=minutes)
            return -delta if sign == "-" else delta
    warnings.append(f"{tag} {text!r} is not a valid UTC offset; ignored")
    return None


def parse_subsec(text: str | None, warnings: list[str], tag: str) -> str | None:
    """SubSecTime* as stored ('046'), when it is the digits EXIF says it is; else None."""
    if not text or _is_blank(text):
        return None
    if _SUBSEC.fullmatch(text.strip()):
        return text.strip()
    warnings.append(f"{tag} {text[:40]!r} is not 1-16 digits; ignored")
    return None


@dataclass(frozen=True, slots=True)
class CaptureTime:
    """The capture-time fields of a PhotoRecord, resolved from EXIF date tags."""

    captured_at: datetime | None = None
    captured_from: str | None = None
    subsec: str | None = None
    offset: str | None = None
    offset_from: str | None = None
    captured_at_utc: datetime | None = None
    time_source: str | None = None


# (date tag, its SubSecTime tag, its OffsetTime tag), most trustworthy first
CAPTURE_SOURCES = (
    ("DateTimeOriginal", "SubSecTimeOriginal", "OffsetTimeOriginal"),
    ("DateTimeDigitized", "SubSecTimeDigitized", "OffsetTimeDigitized"),
    ("DateTime", "SubSecTime", "OffsetTime"),
)


def capture_time(tags: Mapping[str, str | None], warnings: list[str]) -> CaptureTime:
    """Pick the capture time from EXIF date tags (values already `clean_text`-ed), by tag name.

    DateTimeOriginal, else DateTimeDigitized, else DateTime; a present-but-invalid date is
    skipped with a warning, and a fallback after an invalid one says so. The matching SubSecTime*
    and OffsetTime* come with it; UTC is set only when that offset is valid.
    """
    invalid: list[str] = []
    for date_tag, subsec_tag, offset_tag in CAPTURE_SOURCES:
        raw = tags.get(date_tag)
        if raw is None:
            continue
        when = parse_exif_datetime(raw)
        if when is None:
            if _is_blank(raw):
                warnings.append(f"{date_tag} is blank")
            else:
                warnings.append(f"{date_tag} {raw!r} is not a valid date")
            invalid.append(date_tag)
            continue
        if invalid:
            warnings.append(f"capture time taken from {date_tag} because {invalid[0]} is invalid")
        offset_text = tags.get(offset_tag)
        delta = parse_offset(offset_text, warnings, offset_tag)
        utc = None
        if delta is not None:
            try:
                utc = when - delta
            except OverflowError:  # year 1 or 9999 at the edge
                delta = None
        return CaptureTime(
            captured_at=when,
            captured_from=date_tag,
            subsec=parse_subsec(tags.get(subsec_tag), warnings, subsec_tag),
            offset=offset_text.strip() if delta is not None and offset_text else None,
            offset_from=offset_tag if delta is not None else None,
            captured_at_utc=utc,
            time_source="offset_tag" if utc is not None else None,
        )
    return CaptureTime()


# --- GPS --------------------------------------------------------------------------------------


def gps_coordinate(dms: object, ref: object, axis: str, warnings: list[str]) -> float | None:
    """GPSLatitude/GPSLongitude (deg, min, sec rationals) + Ref -> signed decimal degrees.

    axis is "Latitude" or "Longitude". None when absent, undefined (0/0), sign unknown or out of
    range.
    """
    if dms is None:
        return None
    parts = (dms if isinstance(dms, tuple) else (dms,))[:3]
    degrees = _exact_degrees(parts) if parts else None
    if degrees is None:  # not plain int ratios (a float, n/0, a huge value): as floats
        values = [finite_float(part) for part in parts]
        if not values or any(value is None or value < 0 for value in values):
            warnings.append(f"GPS{axis} {render_value(dms)!r} is undefined; ignored")
            return None
        degrees = sum(value / 60**i for i, value in enumerate(values))  # type: ignore[operator]
    positive, negative, limit = ("N", "S", 90.0) if axis == "Latitude" else ("E", "W", 180.0)
    ref_text = (clean_text(ref) or "").strip().upper()[:1]
    if ref_text not in (positive, negative):
        warnings.append(f"GPS{axis}Ref {render_value(ref)!r} missing or invalid: sign unknown")
        return None
    if degrees > limit:
        warnings.append(f"GPS{axis} {degrees!r} is out of range; ignored")
        return None
    return -degrees if ref_text == negative else degrees


def _exact_degrees(parts: tuple[object, ...]) -> float | None:
    """deg + min/60 + sec/3600 of int ratios, as the double nearest the exact sum (int / int is
    correctly rounded): summing the parts as floats is often a unit in the last place off
    (2° 17' 40.1316" gave 2.2944809999999998, not 2.294481). None when a part is no int ratio."""
    numerator, denominator = 0, 1
    for i, part in enumerate(parts):
        if type(part) is int:
            n, d = part, 1
        elif isinstance(part, Rational) and not isinstance(part, bool):
            n, d = part.numerator, part.denominator
        else:
            return None
        if type(n) is not int or type(d) is not int or d <= 0 or n < 0:
            return None  # the float path says why it is no coordinate
        scale = d * 60**i
        numerator, denominator = numerator * scale + n * denominator, denominator * scale
    try:
        return numerator / denominator
    except OverflowError:
        return None


def gps_altitude(altitude: object, ref: object, warnings: list[str]) -> float | None:
    """GPSAltitude in metres, negative when GPSAltitudeRef is 1 (below sea level)."""
    if altitude is None:
        return None
    metres = finite_float(altitude)
    if metres is None:
        warnings.append(f"GPSAltitude {render_value(altitude)!r} is undefined; ignored")
        return None
    return -metres if first_int(ref) == 1 else metres


def gps_timestamp(date: object, time: object, warnings: list[str]) -> datetime | None:
    """GPSDateStamp 'YYYY:MM:DD' + GPSTimeStamp (h, m, s) -> naive UTC datetime, seconds floored."""
    if date is None or time is None:
        return None
    date_text = clean_text(date) or ""
    match = _EXIF_DATE.fullmatch(date_text.strip())
    parts = time if isinstance(time, tuple) else (time,)
    hms = [finite_float(part) for part in parts]
    if match is None or len(hms) != 3 or any(value is None or value < 0 for value in hms):
        warnings.append(
            f"GPSDateStamp/GPSTimeStamp {date_text!r} {render_value(time)!r} invalid; ignored"
        )
        return None
    hours, minutes, seconds = (int(value) for value in hms)  # type: ignore[arg-type]
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3]), hours, minutes, seconds)
    except (ValueError, OverflowError):
        warnings.append(
            f"GPSDateStamp/GPSTimeStamp {date_text!r} {render_value(time)!r} invalid; ignored"
        )
        return None
