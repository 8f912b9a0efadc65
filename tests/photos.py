"""Make small real image files with chosen EXIF, written by Pillow (no other writer)."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    v = abs(value)
    d = int(v)
    m = int((v - d) * 60)
    s = Fraction((v - d - m / 60) * 3600).limit_denominator(10000)
    return IFDRational(d, 1), IFDRational(m, 1), IFDRational(s.numerator, s.denominator)


def make_photo(
    path: Path,
    *,
    make: str | None = "Canon",
    model: str | None = "Canon EOS 5D",
    taken: str | None = "2016:11:10 18:22:47",
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    altitude: float | None = None,
    gps_time: tuple[str, tuple[int, int, int]] | None = None,
    size: tuple[int, int] = (64, 48),
    fmt: str = "JPEG",
    color: tuple[int, int, int] = (200, 120, 40),
    extra: dict[int, object] | None = None,
) -> Path:
    """Write an image with the given EXIF; returns its path."""
    exif = Image.Exif()
    if make is not None:
        exif[0x010F] = make
    if model is not None:
        exif[0x0110] = model
    exif[0x0112] = 1
    for tag, value in (extra or {}).items():
        exif[tag] = value
    sub = exif.get_ifd(EXIF_IFD)
    if taken is not None:
        sub[0x9003] = taken
    if offset is not None:
        sub[0x9011] = offset
    sub[0x829A] = IFDRational(1, 250)
    sub[0x829D] = IFDRational(28, 10)
    sub[0x8827] = 200
    if gps is not None or gps_time is not None:
        g = exif.get_ifd(GPS_IFD)
        if gps is not None:
            g[1] = "N" if gps[0] >= 0 else "S"
            g[2] = _dms(gps[0])
            g[3] = "E" if gps[1] >= 0 else "W"
            g[4] = _dms(gps[1])
        if altitude is not None:
            g[5] = b"\x00" if altitude >= 0 else b"\x01"
            g[6] = IFDRational(round(abs(altitude) * 100), 100)
        if gps_time is not None:
            g[29] = gps_time[0]
            g[7] = tuple(IFDRational(x, 1) for x in gps_time[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt, exif=exif)
    return path


def with_xmp(source: Path, *packets: bytes, extension: Sequence[bytes] = ()) -> bytes:
    """The JPEG `source`'s bytes with an XMP APP1 segment for each packet, right after its SOI,
    then an APP1 segment for each of `extension` (extended_xmp's segments)."""
    data = source.read_bytes()
    payloads = [b"http://ns.adobe.com/xap/1.0/\x00" + p for p in packets] + list(extension)
    segments = b"".join(b"\xff\xe1" + (2 + len(p)).to_bytes(2, "big") + p for p in payloads)
    return data[:2] + segments + data[2:]


def extended_xmp(
    whole: bytes, cuts: Sequence[int] = (), guid: str | None = None, full: int | None = None
) -> tuple[str, list[bytes]]:
    """(GUID, APP1 payloads) of an extended XMP `whole` cut at `cuts` (offsets), as XMP part 3
    writes it: each payload its name, the GUID (the MD5 of `whole`, unless given), the whole's
    length (`full`, unless given) and the part's offset, then the part."""
    guid = guid or hashlib.md5(whole).hexdigest().upper()
    full = len(whole) if full is None else full
    bounds = [0, *cuts, len(whole)]
    return guid, [
        b"http://ns.adobe.com/xmp/extension/\x00" + guid.encode() + full.to_bytes(4, "big")
        + start.to_bytes(4, "big") + whole[start:end]
        for start, end in itertools.pairwise(bounds)
    ]  # fmt: skip
