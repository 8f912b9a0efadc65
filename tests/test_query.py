"""The query layer: table-driven tests of the parsers, then the used-by questions on the corpus,
whose expected answers are computed from truth.json, never from photocat; last, the record a
search and `show` give, against extraction's own record of the same file (no database)."""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from conftest import Scanned
from corpus import IMAGES, broken_expected, readable, require_corpus, truth
from hypothesis import given, settings
from hypothesis import strategies as st
from photos import make_photo
from sqlalchemy.dialects import postgresql, sqlite

from catalog import __version__ as catalog_version
from catalog import query
from catalog.cli import TABLE_COLUMNS
from catalog.distance import distance_m
from catalog.extract import extract
from catalog.ingest import scan
from catalog.query import Between, Filter, Near, QueryError, TagMatch, TimeBound
from catalog.store import open_catalog, this_host


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2016-11-01", "2016-11-01T00:00:00", "2016-11-02T00:00:00"),
        ("2016-12-31", "2016-12-31T00:00:00", "2017-01-01T00:00:00"),
        ("2016-02", "2016-02-01T00:00:00", "2016-03-01T00:00:00"),
        ("2016-12", "2016-12-01T00:00:00", "2017-01-01T00:00:00"),
        ("2016", "2016-01-01T00:00:00", "2017-01-01T00:00:00"),
        ("2016-11-10T18:22", "2016-11-10T18:22:00", "2016-11-10T18:23:00"),
        ("2016-11-10 18:22:47", "2016-11-10T18:22:47", "2016-11-10T18:22:48"),
        ("2016-11-10T18:22:00", "2016-11-10T18:22:00", "2016-11-10T18:22:01"),
        # the last day, month and year Python can hold end at its last instant, not an error
        ("9999-12-31", "9999-12-31T00:00:00", "9999-12-31T23:59:59.999999"),
        ("9999-12", "9999-12-01T00:00:00", "9999-12-31T23:59:59.999999"),
        ("9999", "9999-01-01T00:00:00", "9999-12-31T23:59:59.999999"),
        ("9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999"),
        ("0001-01-01", "0001-01-01T00:00:00", "0001-01-02T00:00:00"),
    ],
)
def test_time_bounds_cover_the_precision_given(text: str, start: str, end: str) -> None:
    b = TimeBound.parse(text)
    assert (b.start, b.end) == (datetime.fromisoformat(start), datetime.fromisoformat(end))


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2016-13-01", "2016-11-31", "2016-11-10T25:00", "2016-11-10T10:00+02:00"],
)
def test_bad_dates_are_query_errors(text: str) -> None:
    with pytest.raises(QueryError):
        TimeBound.parse(text)


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (["model:SM-G920F"], Filter(model="SM-G920F")),
        (["make:Canon", "model:*5D*"], Filter(make="Canon", model="*5D*")),
        (
            ["date:2016-11-01..2016-11-30"],
            Filter(date_from=TimeBound.parse("2016-11-01"), date_to=TimeBound.parse("2016-11-30")),
        ),
        (
            ["date:2016-11"],
            Filter(date_from=TimeBound.parse("2016-11"), date_to=TimeBound.parse("2016-11")),
        ),
        (["date:..2010"], Filter(date_to=TimeBound.parse("2010"))),
        (["date:2020.."], Filter(date_from=TimeBound.parse("2020"))),
        (["utc:2020.."], Filter(date_from=TimeBound.parse("2020"), utc=True)),
        (["gps:yes"], Filter(has_gps=True)),
        (["gps:no"], Filter(has_gps=False)),
        (["error:yes"], Filter(errors=True)),
        (["dated:no"], Filter(dated=False)),
        (["dated:yes"], Filter(dated=True)),
        (["time_source:gps_zone"], Filter(time_source="gps_zone")),  # checked when searched
        (["lens:*50mm*"], Filter(lens="*50mm*")),
        (["serial:PI040378D25L000046"], Filter(serial="PI040378D25L000046")),
        (["software:*Photoshop*", "serial:"], Filter(software="*Photoshop*", serial="")),
        (["near:48.8584,2.2945"], Filter(near=Near(48.8584, 2.2945, 1000.0))),
        (["near: -33.8568 , 151.2153", "within:300m"], Filter(near=Near(-33.8568, 151.2153, 300))),
        (["within:2.5km", "near:90,-180"], Filter(near=Near(90, -180, 2500.0))),  # any order
        (["near:1,2", "within:0M", "near:-1,-2"], Filter(near=Near(-1, -2, 0.0))),  # last wins
        (["near:.5,-.5", "within:.5 Km"], Filter(near=Near(0.5, -0.5, 500.0))),
        (["sha256:9F86D081"], Filter(sha256="9F86D081")),  # checked when searched
        (["blake2b:" + "0" * 64], Filter(blake2b="0" * 64)),
        (["iso:100..800"], Filter(iso=Between(100, 800))),
        (["iso:3200"], Filter(iso=Between(3200, 3200))),
        (["f_number:..2.8"], Filter(f_number=Between(None, 2.8))),
        (["focal_length:24.."], Filter(focal_length=Between(24, None))),
        (["exposure_time:1/250..1/60"], Filter(exposure_time=Between(1 / 250, 1 / 60))),
        (["exposure_time: 1 / 4 .. 2"], Filter(exposure_time=Between(0.25, 2))),
        (["type:HEIC"], Filter(file_type="HEIC")),
        (["width:4000.."], Filter(width=Between(4000, None))),
        (
            ["height:..1600", "width:1600"],
            Filter(height=Between(None, 1600), width=Between(1600, 1600)),
        ),
        (["size:10MB.."], Filter(size=Between(10_000_000, None))),
        (["size:..200KiB"], Filter(size=Between(None, 200 * 1024))),
        (["size: 1.5 gb "], Filter(size=Between(1.5e9, 1.5e9))),
        (["size:512..2KB"], Filter(size=Between(512, 2000))),
        (["warned:yes"], Filter(warned=True)),
        (["warned:no", "warning:*differs from*"], Filter(warned=False, warning="*differs from*")),
    ],
)
def test_terms_become_filters(terms: list[str], expected: Filter) -> None:
    assert query.parse_terms(terms) == expected


@pytest.mark.parametrize(
    "terms",
    [
        ["model"],
        ["colour:red"],
        ["gps:maybe"],
        ["dated:often"],
        ["warned:some"],
        ["size:10XB"],
        ["size:-5"],
        ["size:1e6"],
        ["size:10MB..1KB"],
        ["size:1/2"],
        ["width:wide"],
        ["date:2016-99"],
        ["near:91,0"],  # latitude beyond a pole
        ["near:0,180.5"],
        ["near:48.8584"],  # one number
        ["near:48.8584,2.2945,10"],
        ["near:nan,0"],
        ["near:inf,0"],
        ["near:1e1,0"],  # decimal degrees only
        ["near:48°51'N,2°17'E"],
        ["near:"],
        ["within:2km"],  # a distance from nowhere
        ["near:1,2", "within:5"],  # no unit
        ["near:1,2", "within:-1km"],
        ["near:1,2", "within:2 miles"],
        ["near:1,2", "within:" + "9" * 400 + "km"],  # beyond any float
        ["iso:"],
        ["iso:.."],
        ["iso:800..100"],  # ends before it starts
        ["iso:high"],
        ["iso:1..2..3"],
        ["exposure_time:1/0"],
        ["f_number:nan"],
        ["focal_length:" + "9" * 400],
        ["exposure_time:1/250s"],
    ],
)
def test_bad_terms_are_query_errors(terms: list[str]) -> None:
    with pytest.raises(QueryError):
        query.parse_terms(terms)


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(query.TERM_FIELDS), st.text(max_size=40))
def test_any_value_of_any_term_is_a_filter_or_a_query_error(field: str, value: str) -> None:
    """Hostile or absurd values: parsed into a filter whose SQL compiles on both backends, or
    refused with a QueryError (the CLI's one-line message), never another exception."""
    terms = [f"{field}:{value}", "near:1,2"] if field == "within" else [f"{field}:{value}"]
    try:
        f = query.parse_terms(terms)
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            query.build(f).compile(dialect=dialect)
            query.lean(f, query.t.photos.c.id).compile(dialect=dialect)
    except QueryError as exc:
        assert "\n" not in str(exc)


def test_options_beside_terms_set_the_circle() -> None:
    f = query.parse_terms(["near:1,2", "within:5km"])
    assert query.locate(f, within="300m").near == Near(1, 2, 300)  # --within beside near:
    assert query.locate(f, near="3,4").near == Near(3, 4, 5000)  # --near beside within:
    assert query.locate(Filter(), near="3,4").near == Near(3, 4, 1000)  # 1 km by default
    with pytest.raises(QueryError, match="needs a position"):
        query.locate(Filter(), within="1km")


@pytest.mark.parametrize(
    "terms",
    [
        ["date:2017..2016"],
        ["date:2016-11-30..2016-11-01"],
        ["utc:2016-11-30T10:01..2016-11-30T10:00"],
    ],
)
def test_a_date_range_that_ends_before_it_starts_is_refused(
    corpus_db: Scanned, terms: list[str]
) -> None:
    """Not an empty answer: a reversed range is a mistake, and nothing found would hide it."""
    with corpus_db.open() as catalog, pytest.raises(QueryError, match="ends before it starts"):
        query.count(catalog, query.parse_terms(terms))
    day = query.parse_terms(["date:2016-11-30..2016-11-30"])  # one day, one minute: fine
    minute = query.parse_terms(["date:2016-11-30T10:00..2016-11-30T10:00"])
    with corpus_db.open() as catalog:
        assert query.count(catalog, day) >= 0 and query.count(catalog, minute) >= 0


def test_sorting_by_distance_needs_a_position(corpus_db: Scanned) -> None:
    with corpus_db.open() as catalog, pytest.raises(QueryError, match="needs a position"):
        list(query.search(catalog, Filter(sort="distance")))


# --- the used-by questions on the real corpus ------------------------------------------------


def found(scanned: Scanned, f: Filter) -> set[str]:
    with scanned.open() as catalog:
        return {r["path"].rsplit("/", 1)[1] for r in query.search(catalog, f)}


def expected(pred) -> set[str]:  # type: ignore[no-untyped-def]
    """Files the predicate holds for, by truth.json, among the formats photocat reads."""
    return {name for name, t in truth().items() if readable(t) and pred(t)}


def test_no_filter_returns_every_photo(corpus_db: Scanned) -> None:
    assert found(corpus_db, Filter()) == set(truth())


def test_every_model_finds_exactly_its_photos(corpus_db: Scanned) -> None:
    models = {t["model"] for t in truth().values() if t["model"]}
    assert len(models) > 50
    for model in sorted(models):
        want = expected(lambda t, m=model: (t["model"] or "").lower() == m.lower())
        assert found(corpus_db, Filter(model=model)) == want, model
        assert found(corpus_db, Filter(model=model.lower())) == want, model


def test_every_make_finds_exactly_its_photos(corpus_db: Scanned) -> None:
    for make in sorted({t["make"] for t in truth().values() if t["make"]}):
        want = expected(lambda t, m=make: (t["make"] or "").lower() == m.lower())
        assert found(corpus_db, Filter(make=make.upper())) == want, make


def test_substring_match_with_wildcards(corpus_db: Scanned) -> None:
    want = expected(lambda t: "coolpix" in (t["model"] or "").lower())
    assert want
    assert found(corpus_db, Filter(model="*coolpix*")) == want


def test_every_serial_finds_exactly_its_photos(corpus_db: Scanned) -> None:
    """The question of camera attribution: which photos did this very body take? truth.json
    has one serial fewer than photocat reads: DNG's CameraSerialNumber (test_extract's
    EXCEPTIONS), which a search finds too."""
    serials = {t["serial"] for t in truth().values() if t["serial"]}
    assert len(serials) >= 5
    for serial in sorted(serials):
        want = expected(lambda t, s=serial: (t["serial"] or "").lower() == s.lower())
        assert found(corpus_db, Filter(serial=serial.swapcase())) == want, serial
    assert found(corpus_db, Filter(serial="012345678")) == {"exiftool__t__images__DNG.dng"}
    assert found(corpus_db, Filter(serial="*")) == expected(lambda t: bool(t["serial"])) | {
        "exiftool__t__images__DNG.dng"
    }


def test_every_software_finds_exactly_its_photos(corpus_db: Scanned) -> None:
    """Which files an editor wrote last: every Software value, exactly and by a wildcard."""
    programs = {t["software"] for t in truth().values() if t["software"]}
    assert len(programs) > 20
    for program in sorted(programs):
        want = expected(lambda t, p=program: (t["software"] or "").lower() == p.lower())
        assert found(corpus_db, Filter(software=program.upper())) == want, program
    edited = expected(lambda t: "photoshop" in (t["software"] or "").lower())
    assert len(edited) >= 10
    assert found(corpus_db, Filter(software="*photoshop*")) == edited
    gimp = expected(lambda t: (t["software"] or "").startswith("GIMP"))
    assert found(corpus_db, query.parse_terms(["software:gimp *"])) == gimp


def test_a_tag_and_its_value_find_exactly_the_photos_listing_them(corpus_db: Scanned) -> None:
    """Any tag of the listing by name and value, against ExifTool's reading of the same files
    (truth.json's raw tags): every Software value, the IFD0 modify dates, the GPS IFD's
    latitude references (by IFD and name, any case), and wildcards."""
    raw = {name: t["raw"] for name, t in truth().items()}
    programs = {t["software"] for t in truth().values() if t["software"]}
    for program in sorted(programs):
        want = expected(lambda t, p=program: (t["software"] or "").lower() == p.lower())
        assert found(corpus_db, Filter(tag=TagMatch("Software", program.upper()))) == want
    dates = {
        r["IFD0:ModifyDate"] for r in raw.values() if isinstance(r.get("IFD0:ModifyDate"), str)
    }
    assert len(dates) > 20
    for stamp in sorted(dates):
        want = expected(lambda t, d=stamp: t["raw"].get("IFD0:ModifyDate") == d)
        assert found(corpus_db, query.parse_terms([f"tag:IFD0:DateTime={stamp}"])) == want, stamp
    for ref in ("N", "S"):
        want = expected(lambda t, r=ref: t["raw"].get("GPS:GPSLatitudeRef") == r)
        assert want
        assert (
            found(corpus_db, query.parse_terms([f"tag:gps:gpslatituderef={ref.lower()}"])) == want
        )
        assert found(corpus_db, query.parse_terms([f"tag:IFD0:GPSLatitudeRef={ref}"])) == set()
    with_gps_ref = expected(lambda t: "GPS:GPSLatitudeRef" in t["raw"])
    assert found(corpus_db, query.parse_terms(["tag:GPSLatitudeRef=?"])) == with_gps_ref
    with corpus_db.open() as catalog:
        f = query.parse_terms(["tag:GPSLatitudeRef=*", "model:*coolpix*"])
        want = with_gps_ref & expected(lambda t: "coolpix" in (t["model"] or "").lower())
        assert query.count(catalog, f) == len(want) > 0


def test_tag_values_are_matched_as_written(tmp_path: Path, db: str) -> None:
    """Synthetic photos with known tags: % and _ are no wildcards, * and ? are; a value with
    an escape sequence is matched as the bytes it is; a tag no photo has finds nothing."""
    top = tmp_path / "photos"
    tags = {
        "a.jpg": {0x013B: "Ann Smith", 0x8298: "(c) 100% _mine_"},
        "b.jpg": {0x013B: "ANN SMITH"},
        "c.jpg": {0x013B: "Bob", 0x8298: "(c) 1000 xmine_"},
        "d.jpg": {0x013B: "\x1b[31mEve"},
        "e.jpg": {},
    }
    for name, extra in tags.items():
        make_photo(top / name, extra={k: v.replace("\\x1b", "\x1b") for k, v in extra.items()})
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
    cases = {
        "Artist=ann smith": {"a.jpg", "b.jpg"},
        "artist=Ann*": {"a.jpg", "b.jpg"},
        "Artist=*": {"a.jpg", "b.jpg", "c.jpg", "d.jpg"},
        "Copyright=(c) 100% _mine_": {"a.jpg"},
        "Copyright=*100%*": {"a.jpg"},  # % is the character itself
        "Copyright=*0_x*": set(),  # so is _
        "Copyright=*0?x*": {"c.jpg"},
        "Artist=\x1b[31mEve": {"d.jpg"},
        "IFD0:Artist=Bob": {"c.jpg"},
        "Exif:Artist=Bob": set(),
        "Artist=": set(),
        "OwnerName=*": set(),
    }
    with open_catalog(db) as catalog:
        for text, want in cases.items():
            text = text.replace("\\x1b", "\x1b")
            f = Filter(tag=TagMatch.parse(text))
            assert {r["path"].rsplit("/", 1)[1] for r in query.search(catalog, f)} == want, text


def test_xmp_text_finds_exactly_the_packets_holding_it(corpus_db: Scanned) -> None:
    """--xmp: the photos whose XMP packet or extended XMP (the listing's XMP:XMLPacket and
    XMP:ExtendedXMP, extract's) holds the text, in any case, against Python's reading of the
    stored entries."""
    entries: dict[str, list[str]] = {}
    with corpus_db.open() as catalog:
        for d in query.details(catalog, Filter()):
            for t in d["tags"]:
                if t["ifd"] == "XMP":
                    entries.setdefault(d["path"].rsplit("/", 1)[1], []).append(t["value"].lower())
    packets = {n: v[0] for n, v in entries.items()}
    assert len(packets) >= 50
    extended = {n for n, v in entries.items() if len(v) == 2}
    assert "pillow__Tests__images__ultrahdr.jpg" in extended  # its HDR+ maker note
    for text in (
        "Blue Square", "PHOTOSHOP", "dc:subject", "xmpMM:History", "rdf:li>XMP<", "%_",
        "HdrPlusMakernote", "GCamera",
    ):  # fmt: skip
        want = {n for n, v in entries.items() if any(text.lower() in e for e in v)}
        assert found(corpus_db, Filter(xmp=text)) == want, text
    only_extended = {n for n in extended if "hdrplusmakernote" not in packets[n]}
    assert only_extended and only_extended <= found(corpus_db, Filter(xmp="HdrPlusMakernote"))
    assert found(corpus_db, Filter(xmp="Blue Square Test File")) == {
        "exifsamples__jpg__xmp__BlueSquare.jpg"
    }
    assert found(corpus_db, Filter(xmp="*")) == set(packets)
    assert found(corpus_db, Filter(tag=TagMatch("XMLPacket", "*", "XMP"))) == set(packets)
    assert found(corpus_db, Filter(xmp="adobe*test file")) == {
        n for n, p in packets.items() if re.search(r"adobe.*test file", p, re.S)
    }


def test_a_file_type_finds_exactly_the_files_of_that_format(corpus_db: Scanned) -> None:
    """Every format truth.json names (the ones photocat cannot read too: it tells them by
    their content), by its name in any case and by a wildcard."""
    formats = Counter(t["format"] for t in truth().values())
    assert {"JPEG", "HEIC", "PNG", "TIFF", "WEBP", "MPO", "DNG"} <= set(formats)
    for fmt in formats:
        want = {n for n, t in truth().items() if t["format"] == fmt}
        assert found(corpus_db, Filter(file_type=fmt.lower())) == want, fmt
    assert found(corpus_db, Filter(file_type="?PEG")) == {
        n for n, t in truth().items() if t["format"] == "JPEG"
    }


def test_file_size_and_pixel_ranges_find_exactly_their_files(corpus_db: Scanned) -> None:
    """Sizes against truth.json's byte counts (ends included, units of 1000 and 1024), pixel
    sizes against its JPEG frame sizes."""
    sizes = {n: t["size_bytes"] for n, t in truth().items()}
    cut = sorted(sizes.values())[len(sizes) // 2]  # a real file's size: an end that is hit
    assert found(corpus_db, Filter(size=Between(cut, None))) == {
        n for n, b in sizes.items() if b >= cut
    }
    assert found(corpus_db, Filter(size=Between(None, cut))) == {
        n for n, b in sizes.items() if b <= cut
    }
    for text in ("100KB..1MB", "..50KiB", "2MiB.."):
        f = query.parse_terms([f"size:{text}"])
        low, high = f.size.low or 0, f.size.high or math.inf  # type: ignore[union-attr]
        want = {n for n, b in sizes.items() if low <= b <= high}
        assert 0 < len(want) < len(sizes), text
        assert found(corpus_db, f) == want, text
    jpeg = {n: t for n, t in truth().items() if t["format"] == "JPEG"}
    for text in ("1000..", "..200", "640..2000"):
        f = query.parse_terms([f"width:{text}", "type:jpeg"])
        low, high = f.width.low or 0, f.width.high or math.inf  # type: ignore[union-attr]
        want = {n for n, t in jpeg.items() if low <= t["width"] <= high}
        assert 0 < len(want) < len(jpeg), text
        assert found(corpus_db, f) == want, text
    tall = {n for n, t in jpeg.items() if t["height"] > t["width"]}
    assert tall and all(
        n in found(corpus_db, Filter(file_type="jpeg", height=Between(jpeg[n]["height"], None)))
        for n in tall
    )


def test_devices_and_camera_bodies_are_counted_as_truth_has_them(corpus_db: Scanned) -> None:
    """Each (make, model), and with serials each (make, model, serial), with as many photos
    as truth.json gives it (but the DNG's CameraSerialNumber, which truth misses: test_extract's
    EXCEPTIONS); a model's bodies add up to the model."""
    with corpus_db.open() as catalog:
        models = query.devices(catalog)
        bodies = query.devices(catalog, serials=True)
    read = {n: t for n, t in truth().items() if readable(t) and (t["make"] or t["model"])}
    serial = {n: t["serial"] for n, t in read.items()} | {
        "exiftool__t__images__DNG.dng": "012345678"
    }
    assert {(r["make"], r["model"]): r["photos"] for r in models} == Counter(
        (t["make"], t["model"]) for t in read.values()
    )
    assert {(r["make"], r["model"], r["serial"]): r["photos"] for r in bodies} == Counter(
        (t["make"], t["model"], serial[n]) for n, t in read.items()
    )
    assert sum(1 for r in bodies if r["serial"]) >= 4  # Parrot, DJI, NIKON, Canon
    by_model = Counter()
    for r in bodies:
        by_model[r["make"], r["model"]] += r["photos"]
    assert by_model == {(r["make"], r["model"]): r["photos"] for r in models}
    assert [r["photos"] for r in bodies] == sorted((r["photos"] for r in bodies), reverse=True)


# What the broken corpus's README says each file is read with (broken/expected.json's "expect").
BROKEN_WARNINGS = {
    "is not 1-8": {"orientation_9.jpg"},
    "*gigapixels*decompression bomb*": {"bomb_65000x65000.jpg"},
    "LOOPS BACK": {"exif_ifd_loop.jpg"},
    "GPSLatitude '40/0 26/0 0/0' is undefined": {"gps_zero_denominators.jpg"},
    "not a valid date": {"dto_all_zero.jpg", "dto_invalid_values.jpg"},
    "is_not": set(),  # _ and % are no wildcards: 'is not' does not match
    "100%": set(),
}


def test_warnings_find_the_files_read_with_them(broken_db: Scanned) -> None:
    for text, want in BROKEN_WARNINGS.items():
        assert found(broken_db, Filter(warning=text)) == want, text
    with broken_db.open() as catalog:
        warned = {d["path"].rsplit("/", 1)[1] for d in query.details(catalog, Filter())
                  if d["warnings"]}  # fmt: skip
    assert set().union(*BROKEN_WARNINGS.values()) < warned
    assert found(broken_db, Filter(warned=True)) == warned
    assert found(broken_db, Filter(warned=False)) == set(broken_expected()) - warned
    assert found(broken_db, Filter(warned=False, warning="*")) == set()


def test_warned_photos_are_those_whose_records_say_so(corpus_db: Scanned) -> None:
    """The real corpus: a photo is found by each of its warnings' text, and by warned:yes."""
    with corpus_db.open() as catalog:
        details = {
            d["path"].rsplit("/", 1)[1]: d["warnings"] for d in query.details(catalog, Filter())
        }
        warned = {name for name, warnings in details.items() if warnings}
        assert 10 < len(warned) < len(details)
        assert found(corpus_db, Filter(warned=True)) == warned
        assert query.count(catalog, Filter(warned=False)) == len(details) - len(warned)
        for name in sorted(warned):
            for warning in details[name]:
                hits = found(corpus_db, Filter(warning=warning.upper()))
                assert name in hits and hits <= warned, (name, warning)
    clocks = found(corpus_db, Filter(warning="*from the*differs from*"))  # offset vs the place
    assert clocks and all(any("differs from" in w for w in details[name]) for name in clocks)


@pytest.mark.parametrize("which", ["corpus_db", "broken_db"])
def test_the_tag_search_agrees_with_the_listings_it_reads(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The database's reading of the stored listings (SQLite's JSON functions, PostgreSQL's
    jsonb) against Python's reading of the same listings, on the real and the hostile corpus
    (escape sequences, markup, formulas, Latin-1 and UTF-8 text in tags)."""
    scanned: Scanned = request.getfixturevalue(which)
    with scanned.open() as catalog:
        listings = {d["path"]: d["tags"] for d in query.details(catalog, Filter())}
        names = Counter(t["name"] for tags in listings.values() for t in tags)
        for name in [n for n, _ in names.most_common(12)] + ["Make", "Model", "Software"]:
            values = {t["value"] for tags in listings.values() for t in tags if t["name"] == name}
            for pattern in ["*", "*a*", "?*", *sorted(values)[:3]]:
                match = TagMatch(name.upper(), pattern.upper())  # any case, name and value
                want = {
                    path
                    for path, tags in listings.items()
                    if any(t["name"] == name and _like(t["value"], pattern) for t in tags)
                }
                got = {r["path"] for r in query.search(catalog, Filter(tag=match))}
                assert got == want, (name, pattern)


def _like(value: str, pattern: str) -> bool:
    """The text filters' rule in Python: case-insensitive, * and ? wildcards, else exact."""
    if "*" not in pattern and "?" not in pattern:
        return value.lower() == pattern.lower()
    regex = "".join({"*": ".*", "?": "."}.get(c, re.escape(c)) for c in pattern.lower())
    return re.fullmatch(regex, value.lower(), re.DOTALL) is not None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Artist", "not a tag and value"),
        ("=Ann", "not a tag and value"),
        (":Artist=Ann", "not a tag and value"),
        ("IFD0:=x", "not a tag and value"),
        ("Artist=Caf\udce9", "is not valid UTF-8 text"),
    ],
)
def test_a_tag_term_without_a_name_and_value_is_an_error(text: str, said: str) -> None:
    with pytest.raises(QueryError, match=said):
        query.parse_terms([f"tag:{text}"])


def capture(t: dict) -> str | None:  # type: ignore[type-arg]
    """The local capture time photocat uses: DateTimeOriginal, else CreateDate, else ModifyDate."""
    return t["datetime_original"] or t["create_date"] or t["modify_date"]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [
        ("2008-10-01", "2008-10-31"),
        ("2004-01-01", "2005-12-31"),
        ("2016-01-01", "2030-12-31"),
        ("2008-10-22T16:46", "2008-10-22T16:55"),
        ("1990-01-01", "2003-06-30"),
    ],
)
def test_date_ranges_are_inclusive_on_local_time(corpus_db: Scanned, lo: str, hi: str) -> None:
    a, b = TimeBound.parse(lo), TimeBound.parse(hi)

    def inside(t: dict) -> bool:  # type: ignore[type-arg]
        c = capture(t)
        return c is not None and a.start <= datetime.fromisoformat(c) < b.end

    want = expected(inside)
    assert found(corpus_db, Filter(date_from=a, date_to=b)) == want


def test_has_gps_and_no_gps_split_the_corpus(corpus_db: Scanned) -> None:
    want = expected(lambda t: t["gps_latitude"] is not None and t["gps_longitude"] is not None)
    assert want
    assert found(corpus_db, Filter(has_gps=True)) == want
    assert found(corpus_db, Filter(has_gps=False)) == set(truth()) - want  # unread ones too


def test_has_date_and_no_date_split_the_corpus(corpus_db: Scanned) -> None:
    want = expected(lambda t: capture(t) is not None)
    assert want
    assert found(corpus_db, Filter(dated=True)) == want
    assert found(corpus_db, Filter(dated=False)) == set(truth()) - want  # unread ones too


def test_time_source_finds_how_each_photos_utc_time_was_found(tmp_path: Path) -> None:
    """One photo a way: the file's offset tag, the GPS clock, the time zone at the position
    (inferred), none (no offset, no GPS), and an unread file (none)."""
    top = tmp_path / "photos"
    make_photo(top / "tag.jpg", offset="+02:00", gps=(48.8584, 2.2945))
    make_photo(top / "clock.jpg", gps=(48.8584, 2.2945), gps_time=("2016:11:10", (17, 22, 47)))
    make_photo(top / "zone.jpg", gps=(48.8584, 2.2945))
    make_photo(top / "nothing.jpg")
    (top / "unread.jpg").write_bytes(b"not a photo")
    db = str(tmp_path / "c.db")
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
    scanned = Scanned(db, top, None)  # type: ignore[arg-type]
    want = {
        "offset_tag": {"tag.jpg"},
        "gps_time": {"clock.jpg"},
        "gps_zone": {"zone.jpg"},
        "none": {"nothing.jpg", "unread.jpg"},
    }
    assert set(want) == set(query.TIME_SOURCES)
    for source, names in want.items():
        assert found(scanned, Filter(time_source=source)) == names, source
        assert found(scanned, Filter(time_source=f" {source.upper()}")) == names, source
    assert found(scanned, Filter(time_source="none", dated=True)) == {"nothing.jpg"}
    with pytest.raises(QueryError, match="time source 'exif': one of offset_tag"):
        found(scanned, Filter(time_source="exif"))


def positions() -> dict[str, tuple[float, float]]:
    return {
        name: (t["gps_latitude"], t["gps_longitude"])
        for name, t in truth().items()
        if t["gps_latitude"] is not None and t["gps_longitude"] is not None
    }


# Reaches from a street to half the Earth; truth.json's positions are ExifTool's, the catalog's
# its own reading of the same rationals, so a photo within a metre of the circle may go either way.
RADII = (10, 1_000, 30_000, 500_000, 3_000_000, 10_000_000, 20_100_000)


def test_near_finds_exactly_the_photos_within_the_distance(corpus_db: Scanned) -> None:
    """Around every GPS photo of the corpus (and points of no photo: the antimeridian, a pole),
    at each reach: the photos ExifTool's positions put within it, by the independent distance."""
    where = positions()
    assert len(where) > 20
    centres = [*where.values(), (0.0, 180.0), (-17.0, -179.9), (89.0, 0.0), (-90.0, 0.0)]
    with corpus_db.open() as catalog:
        for centre in centres:
            for radius in RADII:
                near = Near(*centre, radius)
                got = {
                    r["path"].rsplit("/", 1)[1] for r in query.search(catalog, Filter(near=near))
                }
                d = {name: distance_m(*centre, *p) for name, p in where.items()}
                assert {n for n, m in d.items() if m <= radius - 1} <= got, near
                assert got <= {n for n, m in d.items() if m <= radius + 1}, near
                assert query.count(catalog, Filter(near=near)) == len(got), near


def test_nearest_first_and_limited(corpus_db: Scanned) -> None:
    lat, lon = positions()["exifsamples__jpg__gps__DSCN0029.jpg"]
    near = Near(lat, lon, 2_000_000)
    with corpus_db.open() as catalog:
        rows = list(query.search(catalog, Filter(near=near, sort="distance")))
        assert len(rows) > 5
        d = [distance_m(lat, lon, r["latitude"], r["longitude"]) for r in rows]
        assert d == sorted(d) and d[0] < 0.01  # the photo itself first (truth.json: ExifTool)
        far = list(query.search(catalog, Filter(near=near, sort="distance", desc=True)))
        assert far == rows[::-1]  # ties (two photos at 0,0) by id, also reversed
        first = list(query.search(catalog, Filter(near=near, sort="distance", limit=3)))
        assert first == rows[:3]
        assert query.count(catalog, Filter(near=near, sort="distance", limit=3)) == len(rows)
        # with other filters: the same photos, fewer
        within_gps = list(query.search(catalog, Filter(near=near, has_gps=True)))
        assert {r["path"] for r in within_gps} == {r["path"] for r in rows}
        assert not list(query.search(catalog, Filter(near=near, has_gps=False)))


_HEX = "0123456789abcdef" * 4  # 64 hex digits


@pytest.mark.parametrize(
    ("lines", "want"),
    [
        ([_HEX], {_HEX}),
        ([_HEX.upper() + "\n"], {_HEX}),  # any case, line ends as read from a file
        ([f"{_HEX}  2016/paris.jpg"], {_HEX}),  # as sha256sum prints it
        ([f"{_HEX} *IMG 0001.JPG"], {_HEX}),  # sha256sum -b
        ([f"\\{_HEX}  a\\nb.jpg"], {_HEX}),  # sha256sum's line for a name it escaped
        ([f"{_HEX}\tname with  blanks"], {_HEX}),
        ([f"SHA256 (a (1).jpg) = {_HEX}"], {_HEX}),  # sha256sum --tag, BSD
        (["# a hash set", "", "   ", _HEX, f"  {'f' * 64}  "], {_HEX, "f" * 64}),
        ([_HEX, _HEX], {_HEX}),
        ([f"{_HEX}  Caf\udce9.jpg"], {_HEX}),  # a name that is not UTF-8: only the digest counts
    ],
)
def test_hash_sets_are_read_from_what_digest_tools_print(lines: list[str], want: set[str]) -> None:
    assert query.digest_set(lines, "sha256", "set.txt") == want


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        ([_HEX, "not a digest"], "set.txt, line 2: not a SHA-256 digest: 'not a digest'"),
        ([_HEX[:63]], "line 1: not a SHA-256 digest"),  # one digit short
        ([_HEX + "0"], "line 1: not a SHA-256 digest"),
        ([_HEX[:8]], "line 1"),  # a prefix finds files by --sha256, not in a set
        ([f"MD5 (a.jpg) = {_HEX[:32]}"], "line 1"),
        ([f"BLAKE2b-256 (a.jpg) = {_HEX}"], "line 1"),  # another algorithm's, by its name
        ([f"{_HEX[:-1]}g"], "line 1"),
        ([f"{_HEX}\udce9"], "line 1"),  # bytes that are not UTF-8, glued to the digest
        ([], "set.txt lists no SHA-256 digest"),
        (["# nothing but comments", ""], "lists no SHA-256 digest"),
    ],
)
def test_a_hash_set_line_that_is_no_digest_is_an_error(lines: list[str], said: str) -> None:
    """Never skipped: a digest silently left out of the set would hide a match."""
    with pytest.raises(QueryError, match=re.escape(said)):
        query.digest_set(lines, "sha256", "set.txt")


def test_blake2b_sets_take_b2sum_lines() -> None:
    assert query.digest_set([f"BLAKE2b-256 (a.jpg) = {_HEX}"], "blake2b", "s") == {_HEX}
    with pytest.raises(QueryError, match="not a BLAKE2b-256 digest"):
        query.digest_set([f"SHA256 (a.jpg) = {_HEX}"], "blake2b", "s")


def test_a_hash_set_finds_exactly_the_files_with_those_bytes(corpus_db: Scanned) -> None:
    """A hash set (digests computed here from the files, not by photocat) of a third of the
    corpus, hidden among 50,000 digests of nothing catalogued: exactly those files, alone and
    beside another filter, counted as found, on SQLite and PostgreSQL alike (one parameter,
    however long the set)."""
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in corpus_db.folder.iterdir()
        if p.name in truth()
    }
    listed = {n: d for i, (n, d) in enumerate(sorted(digests.items())) if i % 3 == 0}
    rng = random.Random(5)
    noise = {f"{rng.getrandbits(256):064x}" for _ in range(50_000)} - set(digests.values())
    hash_set = frozenset(listed.values()) | noise
    want = {n for n, d in digests.items() if d in listed.values()}
    assert len(want) > 40
    assert found(corpus_db, Filter(sha256_in=hash_set)) == want
    with_gps = expected(lambda t: t["gps_latitude"] is not None and t["gps_longitude"] is not None)
    assert found(corpus_db, Filter(sha256_in=hash_set, has_gps=True)) == want & with_gps
    assert 0 < len(want & with_gps) < len(want)
    with corpus_db.open() as catalog:
        assert query.count(catalog, Filter(sha256_in=hash_set)) == len(want)
        limited = list(query.search(catalog, Filter(sha256_in=hash_set, sort="path", limit=5)))
        assert [r["path"] for r in limited] == sorted(
            r["path"] for r in query.search(catalog, Filter(sha256_in=hash_set))
        )[:5]
    assert found(corpus_db, Filter(sha256_in=frozenset(noise))) == set()
    assert found(corpus_db, Filter(blake2b_in=hash_set)) == set()  # scanned with SHA-256


def test_a_hash_set_of_known_files_leaves_exactly_them_out(corpus_db: Scanned) -> None:
    """Known files (NSRL-style elimination): every file but those whose bytes a third of the
    corpus's digests (hashed here), among 50,000 others, name; a file without that digest stays,
    since nothing says it is known."""
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in corpus_db.folder.iterdir()
        if p.name in truth()
    }
    known = {d for i, (_, d) in enumerate(sorted(digests.items())) if i % 3 == 0}
    rng = random.Random(6)
    hash_set = frozenset(known | {f"{rng.getrandbits(256):064x}" for _ in range(50_000)})
    want = {n for n, d in digests.items() if d not in known}
    assert 40 < len(want) < len(digests)
    assert found(corpus_db, Filter(sha256_not_in=hash_set)) == want
    with_gps = expected(lambda t: t["gps_latitude"] is not None and t["gps_longitude"] is not None)
    assert found(corpus_db, Filter(sha256_not_in=hash_set, has_gps=True)) == want & with_gps
    with corpus_db.open() as catalog:
        assert query.count(catalog, Filter(sha256_not_in=hash_set)) == len(want)
    assert found(corpus_db, Filter(sha256_in=hash_set, sha256_not_in=hash_set)) == set()
    everything = set(truth())
    assert found(corpus_db, Filter(blake2b_not_in=hash_set)) == everything  # none has BLAKE2b


def test_a_digest_finds_exactly_the_files_with_those_bytes(corpus_db: Scanned) -> None:
    """Every corpus file by its SHA-256 (hashed here, not by photocat), whole or its first
    digits, in either case; the BLAKE2b column the scan did not fill finds nothing."""
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in corpus_db.folder.iterdir()
        if p.name in truth()
    }
    assert len(digests) == len(truth())
    with corpus_db.open() as catalog:
        for name, digest in sorted(digests.items()):
            same = {n for n, d in digests.items() if d == digest}
            assert found(corpus_db, Filter(sha256=digest)) == same, name
            assert found(corpus_db, Filter(sha256=digest.upper())) == same, name
            for digits in (8, 12, 63):
                prefix = digest[:digits]
                want = {n for n, d in digests.items() if d.startswith(prefix)}
                assert found(corpus_db, Filter(sha256=prefix)) == want, (name, prefix)
                assert query.count(catalog, Filter(sha256=prefix)) == len(want)
            assert not found(corpus_db, Filter(blake2b=digest))


@pytest.mark.parametrize(
    "value", ["", "9f86d08", "9f86d081" + "0" * 57, "9f86d08g", "9f86 d081", "'; drop table x"]
)
def test_a_value_that_is_no_digest_is_a_query_error(corpus_db: Scanned, value: str) -> None:
    with corpus_db.open() as catalog, pytest.raises(QueryError, match="not a SHA-256 digest"):
        query.count(catalog, Filter(sha256=value))


def test_the_corpus_is_hashed_whole_and_holds_no_two_files_alike(corpus_db: Scanned) -> None:
    with corpus_db.open() as catalog:
        assert query.duplicates(catalog) == ([], 0)


def digest_of(algorithm: str, path: Path) -> str:
    h = hashlib.blake2b(digest_size=32) if algorithm == "blake2b" else hashlib.new(algorithm)
    h.update(path.read_bytes())
    return h.hexdigest()


# Copies of real corpus files in two folders: three of one, two of another, one alone.
COPIES = {
    "x/one.jpg": "exiftool__t__images__Apple.jpg",
    "x/sub/two.jpg": "exiftool__t__images__Apple.jpg",
    "y/three.jpg": "exiftool__t__images__Apple.jpg",
    "x/=four.heic": "mei__heic__Issue_263_dotnet.heic",
    "y/five.heic": "mei__heic__Issue_263_dotnet.heic",
    "x/six.jpg": "mei__jpg__Apple_iPhone_6.jpg",
}


def expected_duplicates(tree: Path, algorithm: str, under: Path) -> list[dict[str, object]]:
    """What duplicates() must say, from digests hashed here: each file under `under` whose
    digest another file there shares, the largest first, then by digest and path."""
    digests = {
        tree / rel: digest_of(algorithm, tree / rel)
        for rel in COPIES
        if (tree / rel).is_relative_to(under)
    }
    shared = Counter(digests.values())
    rows = [
        {algorithm: d, "copies": shared[d], "size": path.stat().st_size, "path": str(path)}
        for path, d in digests.items()
        if shared[d] > 1
    ]
    return sorted(rows, key=lambda r: (-r["size"], r[algorithm], r["path"]))  # type: ignore[operator]


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b", None])
def test_duplicates_are_the_files_with_the_same_bytes(
    tmp_path: Path, db: str, algorithm: str | None
) -> None:
    require_corpus()
    tree = tmp_path / "tree"
    for rel, name in COPIES.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(IMAGES / name, tree / rel)
    with open_catalog(db) as catalog:
        scan(catalog, [tree], workers=2, hash_with=algorithm)
        for asked in ("sha256", "blake2b"):
            if asked != algorithm:  # nothing to compare: every file said to have no digest
                assert query.duplicates(catalog, asked) == ([], len(COPIES))
                continue
            rows, unhashed = query.duplicates(catalog, asked)
            assert (rows, unhashed) == (expected_duplicates(tree, asked, tree), 0)
            assert sorted(r["copies"] for r in rows) == [2, 2, 3, 3, 3]
            rows, unhashed = query.duplicates(catalog, asked, str(tree / "x"))  # among x's only
            assert (rows, unhashed) == (expected_duplicates(tree, asked, tree / "x"), 0)
            assert {Path(r["path"]).name for r in rows} == {"one.jpg", "two.jpg"}
        with pytest.raises(QueryError, match="no digest 'md5'"):
            query.duplicates(catalog, "md5")


def number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("term", "key", "low", "high"),
    [
        ("iso:100..400", "iso", 100, 400),
        ("iso:..100", "iso", None, 100),
        ("iso:1600..", "iso", 1600, None),
        ("f_number:2.8", "f_number", 2.8, 2.8),  # a float read from 28/10 equals 2.8 typed
        ("f_number:..4", "f_number", None, 4),
        ("focal_length:24..70", "focal_length", 24, 70),
        ("exposure_time:1/250", "exposure_time", 1 / 250, 1 / 250),
        ("exposure_time:1/60..1", "exposure_time", 1 / 60, 1),
    ],
)
def test_numeric_ranges_are_inclusive(
    corpus_db: Scanned, term: str, key: str, low: float | None, high: float | None
) -> None:
    """Each range against truth.json's own values (ExifTool's, -n), ends included."""

    def inside(t: dict) -> bool:  # type: ignore[type-arg]
        v = number(t[key])
        return v is not None and (low is None or v >= low) and (high is None or v <= high)

    want = expected(inside)
    assert want, term  # the corpus has photos in every range asked here
    assert found(corpus_db, query.parse_terms([term])) == want, term


def test_unread_formats_are_catalogued_with_an_error(corpus_db: Scanned) -> None:
    unread = {name for name, t in truth().items() if not readable(t)}
    assert unread <= found(corpus_db, Filter(errors=True))


def test_limit_and_sort(corpus_db: Scanned) -> None:
    with corpus_db.open() as catalog:
        rows = list(query.search(catalog, Filter(sort="captured_at", limit=5)))
        assert len(rows) == 5
        times = [r["captured_at"] for r in rows]
        assert times == sorted(times)
        newest = list(query.search(catalog, Filter(sort="captured_at", desc=True, limit=1)))
        assert newest[0]["captured_at"] == max(
            r["captured_at"] for r in query.search(catalog, Filter()) if r["captured_at"]
        )
        assert query.count(catalog, Filter(limit=3)) == len(truth())


KEY_SETS = [
    TABLE_COLUMNS,  # the table's
    ("path",),
    query.RECORD_KEYS,
    tuple(reversed(query.RECORD_KEYS)),  # any order, as asked
    *((key,) for key in query.RECORD_KEYS),
    ("city", "path", "city"),  # a key twice: one column, the key once
]


@pytest.mark.parametrize("which", ["corpus_db", "broken_db"])
@pytest.mark.parametrize(
    "f", [Filter(), Filter(sort="path", desc=True, limit=7), Filter(has_gps=True)], ids=repr
)
def test_a_search_for_some_keys_gives_exactly_those_of_the_whole_record(
    which: str, f: Filter, request: pytest.FixtureRequest
) -> None:
    """search(..., keys) reads only the keys' columns (FIELDS), at their own positions; the
    whole record reads all of them (to_record). Both must say the same, key by key, for every
    photo of the corpus and of the broken corpus (hostile strings, unreadable files)."""
    scanned: Scanned = request.getfixturevalue(which)
    with scanned.open() as catalog:
        whole = list(query.search(catalog, f))
        assert whole
        for keys in KEY_SETS:
            some = list(query.search(catalog, f, keys))
            assert some == [{k: r[k] for k in keys} for r in whole], keys
            assert all(list(r) == list(dict.fromkeys(keys)) for r in some)


@pytest.mark.parametrize("which", ["corpus_db", "broken_db"])
def test_full_records_are_what_show_gives(which: str, request: pytest.FixtureRequest) -> None:
    """search --full: every photo as `show` gives it (itself checked against extraction below),
    the same photos in the same order as the search without it."""
    scanned: Scanned = request.getfixturevalue(which)
    with scanned.open() as catalog:
        for f in (Filter(), Filter(sort="path", desc=True, limit=7), Filter(errors=True)):
            full = list(query.details(catalog, f))
            assert [d["path"] for d in full] == [r["path"] for r in query.search(catalog, f)]
            for d in full:
                assert d == query.photo_detail(catalog, d["path"]), d["path"]
        assert len(list(query.details(catalog, Filter()))) == query.count(catalog, Filter())


def test_a_search_for_a_key_no_record_has_is_refused(corpus_db: Scanned) -> None:
    with corpus_db.open() as catalog, pytest.raises(ValueError, match="no record key 'size'"):
        next(query.search(catalog, Filter(), ("path", "size")))


# The record's keys that are a field of the extracted record of the same name.
SAME_AS_EXTRACTED = (
    "format", "width", "height", "make", "model", "offset", "time_source", "time_zone",
    "latitude", "longitude", "altitude", "lens_model", "serial", "iso", "exposure_time", "f_number",
    "focal_length", "orientation", "software", "error",
)  # fmt: skip


def test_the_record_and_show_say_what_the_file_holds(corpus_db: Scanned) -> None:
    """Every corpus photo's record, as a search gives it and as `show` does, against what
    extraction reads from the file itself (no database) and what the file system says: the
    record's columns are named once (FIELDS) and read by position, `show` adds its own."""
    with corpus_db.open() as catalog:
        records = list(query.search(catalog, Filter()))
        assert len(records) == len(truth())
        for record in records:
            path = record["path"]
            extracted = extract(path)
            want = {key: getattr(extracted, key) for key in SAME_AS_EXTRACTED}
            assert {key: record[key] for key in SAME_AS_EXTRACTED} == want, path
            local, utc = extracted.captured_at, extracted.captured_at_utc
            assert record["captured_at"] == (local and local.isoformat(timespec="seconds"))
            assert record["captured_at_utc"] == (utc and utc.isoformat(timespec="seconds") + "Z")
            detail = query.photo_detail(catalog, path)
            assert detail is not None
            assert {key: detail[key] for key in query.RECORD_KEYS} == record
            st = os.stat(path)
            assert (detail["host"], detail["size"], detail["modified_ns"]) == (
                this_host(),
                st.st_size,
                st.st_mtime_ns,
            )
            assert detail["read_by"] == f"photocat {catalog_version}"  # the one that read it
            assert (detail["subsec"], detail["captured_from"]) == (
                extracted.subsec,
                extracted.captured_from,
            )
            assert detail["sha256"] == truth()[os.path.basename(path)]["sha256"]
