#!/usr/bin/env python3
"""A synthetic catalog of N photos, written through photocat's own store layer, for query timing.

    .venv/bin/python benchmarks/make_catalog.py --photos 1000000 --db /tmp/photocat-1m.db

Every row goes through `Catalog.upsert` with `FileEntry`/`PhotoRecord`, as a scan writes it (the
GPS positions get their places through catalog.places like any scan), only the records are made
up instead of read from files: no image exists. What is in it:

* several hundred devices (`--devices`, default 400): the corpus generator's 32 real makes and
  models plus invented ones, by a Zipf-like popularity; samsung SM-G920F gets `--g920f` of the
  photos (default 1%);
* capture times uniform over 15 years (2010-2024), half with a UTC offset (and so a UTC instant);
* GPS on 60%, over the same land boxes as make_corpus.py, with altitude on most;
* exposure fields, orientation, software, a lens on some, a 12-tag raw listing, a fake SHA-256;
* paths YYYY/MM/IMG_nnnnnnn.jpg under one root, /synthetic/photos on this host;
* rows written in the order a scan of those folders writes them (`--order scan`, the default):
  one month's folder after another (folders sorted, as a scan's walk takes them one at a time),
  in a random order inside each, so a month's photos sit together in the file as they do in a
  scanned library. `--order random` writes them in random time order, the worst case for a
  date-range search (Catalog.upsert still writes each batch in path order, so with the default
  `--batch 5000` a month's photos come in runs of ~30 at a million photos, not one by one).

Deterministic for a given --seed. Prints the time it took and the photos/s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catalog.record import PhotoRecord, RawTag
from catalog.store import FileEntry, open_catalog

REAL = [
    ("Apple", "iPhone 6"), ("Apple", "iPhone 8"), ("Apple", "iPhone X"), ("Apple", "iPhone 12 Pro"),
    ("Apple", "iPhone 14 Pro"), ("Apple", "iPhone 15"), ("samsung", "SM-G950F"),
    ("samsung", "SM-G973F"), ("samsung", "SM-S911B"), ("samsung", "SM-A525F"),
    ("Google", "Pixel 3"), ("Google", "Pixel 4a"), ("Google", "Pixel 7"), ("HUAWEI", "VOG-L29"),
    ("HUAWEI", "ELE-L29"), ("Xiaomi", "Redmi Note 8 Pro"), ("OnePlus", "ONEPLUS A6003"),
    ("Canon", "Canon EOS 5D Mark IV"), ("Canon", "Canon EOS 80D"),
    ("Canon", "Canon PowerShot G7 X Mark II"), ("NIKON CORPORATION", "NIKON D750"),
    ("NIKON CORPORATION", "NIKON D3200"), ("NIKON CORPORATION", "NIKON Z 6"),
    ("SONY", "ILCE-7M3"), ("SONY", "ILCE-6000"), ("SONY", "DSC-RX100M3"), ("FUJIFILM", "X-T3"),
    ("OLYMPUS CORPORATION", "E-M10MarkII"), ("Panasonic", "DMC-GX80"), ("GoPro", "HERO7 Black"),
    ("DJI", "FC3170"),
]  # fmt: skip
MAKES = [
    "Canon", "NIKON CORPORATION", "SONY", "samsung", "Apple", "Google", "HUAWEI", "Xiaomi", "OPPO",
    "vivo", "Motorola", "LG Electronics", "FUJIFILM", "Panasonic", "PENTAX", "Leica",
]  # fmt: skip
LAND = [
    (44.0, 48.5, 0.5, 5.5, "+01:00"), (48.5, 53.5, 7.5, 13.5, "+01:00"),
    (38.0, 42.5, -6.0, -1.0, "+01:00"), (51.5, 53.5, -2.5, 0.0, "+00:00"),
    (44.6, 45.8, 8.0, 12.0, "+01:00"), (53.0, 57.0, 35.0, 42.0, "+03:00"),
    (37.5, 40.0, 30.0, 38.0, "+03:00"), (33.0, 45.0, -105.0, -85.0, "-06:00"),
    (35.0, 39.0, -120.0, -117.0, "-08:00"), (50.0, 54.0, -114.0, -100.0, "-07:00"),
    (19.0, 22.0, -103.0, -98.0, "-06:00"), (-20.0, -8.0, -55.0, -42.0, "-03:00"),
    (-38.0, -28.0, -66.0, -60.0, "-03:00"), (35.0, 36.5, 137.0, 139.5, "+09:00"),
    (25.0, 38.0, 103.0, 115.0, "+08:00"), (18.0, 27.0, 74.0, 83.0, "+05:30"),
    (-32.0, -22.0, 120.0, 145.0, "+09:30"), (-6.0, 2.0, 34.0, 38.0, "+03:00"),
    (-30.0, -25.0, 24.0, 30.0, "+02:00"),
]  # fmt: skip
START = datetime(2010, 1, 1)
SPAN_S = int((datetime(2025, 1, 1) - START).total_seconds()) - 1


def devices(count: int, rng: random.Random) -> list[tuple[str, str]]:
    found = list(REAL)
    while len(found) < count - 1:
        make = rng.choice(MAKES)
        model = f"{make.split()[0][:3].upper()}-{rng.randrange(100, 9999)}{rng.choice('ABCDEFX')}"
        if (make, model) not in found:
            found.append((make, model))
    return found


def offset_delta(offset: str) -> timedelta:
    sign = -1 if offset[0] == "-" else 1
    return sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))


def capture_times(count: int, order: str, rng: random.Random) -> list[int]:
    """Seconds after START for each photo, in the order they are written."""
    seconds = [rng.randrange(SPAN_S) for _ in range(count)]
    if order == "random":
        return seconds
    months: dict[str, list[int]] = {}
    for s in seconds:
        months.setdefault(f"{START + timedelta(seconds=s):%Y/%m}", []).append(s)
    ordered: list[int] = []
    for folder in sorted(months):
        rng.shuffle(months[folder])  # a directory lists its files in no time order
        ordered.extend(months[folder])
    return ordered


def record(i: int, second: int, device: tuple[str, str], rng: random.Random) -> PhotoRecord:
    taken = START + timedelta(seconds=second)
    r = PhotoRecord(
        format="JPEG",
        width=4032,
        height=3024,
        orientation=rng.choice((1, 1, 1, 6, 8, 3)),
        make=device[0],
        model=device[1],
        software=f"{device[1]} firmware {rng.randrange(1, 9)}.{rng.randrange(10)}",
        captured_at=taken,
        captured_from="DateTimeOriginal",
        iso=rng.choice((50, 100, 200, 400, 800, 1600, 3200)),
        exposure_time=rng.choice((1 / 1000, 1 / 250, 1 / 60, 1 / 30, 0.5)),
        f_number=rng.choice((1.8, 2.2, 2.8, 4.0, 5.6, 8.0)),
        focal_length=rng.choice((4.3, 6.0, 24.0, 35.0, 50.0, 85.0)),
    )
    if rng.random() < 0.6:
        s, n, w, e, zone = rng.choice(LAND)
        r.latitude, r.longitude = round(rng.uniform(s, n), 6), round(rng.uniform(w, e), 6)
        if rng.random() < 0.9:
            r.altitude = round(rng.uniform(0, 2500), 1)
        if rng.random() < 0.5:
            r.offset = zone
    elif rng.random() < 0.4:
        r.offset = rng.choice(("+00:00", "+01:00", "+02:00", "-05:00", "+08:00"))
    if r.offset is not None:
        r.offset_from = "OffsetTimeOriginal"
        r.captured_at_utc = taken - offset_delta(r.offset)
        r.time_source = "offset_tag"
    if rng.random() < 0.4:
        r.lens_model = f"{device[1]} lens {r.focal_length}mm f/{r.f_number}"
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    r.tags = [
        RawTag("IFD0", 0x010F, "Make", device[0]),
        RawTag("IFD0", 0x0110, "Model", device[1]),
        RawTag("IFD0", 0x0112, "Orientation", str(r.orientation)),
        RawTag("IFD0", 0x0131, "Software", r.software or ""),
        RawTag("IFD0", 0x0132, "DateTime", stamp),
        RawTag("Exif", 0x829A, "ExposureTime", str(r.exposure_time)),
        RawTag("Exif", 0x829D, "FNumber", str(r.f_number)),
        RawTag("Exif", 0x8827, "ISOSpeedRatings", str(r.iso)),
        RawTag("Exif", 0x9003, "DateTimeOriginal", stamp),
        RawTag("Exif", 0x9004, "DateTimeDigitized", stamp),
        RawTag("Exif", 0x920A, "FocalLength", str(r.focal_length)),
        RawTag("Exif", 0xA002, "ExifImageWidth", "4032"),
    ]
    return r


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, required=True)
    p.add_argument("--db", required=True, help="catalog path or URL (a new one is best)")
    p.add_argument("--devices", type=int, default=400)
    p.add_argument("--g920f", type=float, default=0.01, help="share of samsung SM-G920F photos")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--batch", type=int, default=5000, help="photos per upsert (transaction)")
    p.add_argument(
        "--order", choices=("scan", "random"), default="scan",
        help="row order: folder by folder as a scan writes them, or random dates (worst case)",
    )  # fmt: skip
    a = p.parse_args()

    rng = random.Random(a.seed)
    others = devices(a.devices, rng)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(others))]  # Zipf-like popularity
    seconds = capture_times(a.photos, a.order, rng)
    start = time.perf_counter()
    with open_catalog(a.db) as catalog:
        root = catalog.root_id("/synthetic/photos")
        assert root is not None
        done = 0
        while done < a.photos:
            n = min(a.batch, a.photos - done)
            picks = rng.choices(others, weights, k=n)
            batch = []
            for k in range(n):
                i = done + k
                device = ("samsung", "SM-G920F") if rng.random() < a.g920f else picks[k]
                r = record(i, seconds[i], device, rng)
                assert r.captured_at is not None
                rel = f"{r.captured_at:%Y/%m}/IMG_{i:07d}.jpg"
                digest = rng.randbytes(32).hex()
                batch.append(
                    FileEntry(root, rel, rng.randrange(1_000_000, 9_000_000), i, r, digest)
                )
            catalog.upsert(batch)
            done += n
            if done % (a.batch * 20) == 0 or done == a.photos:
                took = time.perf_counter() - start
                print(f"{done} photos, {took:.0f} s, {done / took:.0f} photos/s", flush=True)
    took = time.perf_counter() - start
    print(f"made {a.photos} photos in {took:.1f} s ({a.photos / took:.0f} photos/s): {a.db}")


if __name__ == "__main__":
    main()
