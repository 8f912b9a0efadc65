"""catalog.when: the true UTC instant of a capture and how it was found (time_source).

Each rule is shown on real corpus files where the corpus has them, and on files written by
tests/photos.py where it does not (GPS time only, daylight saving, :30 and :45 zones, DST folds).
Expected offsets come from the files' own tags (truth.json) and from the zones' published rules,
never from photocat.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from corpus import IMAGES, readable, require_corpus, truth
from photos import make_photo

from catalog import when
from catalog.extract import extract

# --- the corpus --------------------------------------------------------------------------------

# file -> (offset, time_source, time_zone); every other readable file: (None, None, None).
CORPUS_TIMES: dict[str, tuple[str | None, str | None, str | None]] = {
    # rule 1, OffsetTimeOriginal
    "exifsamples__jpg__mobile__HMD_Nokia_8.3_5G.jpg": ("+03:00", "offset_tag", "Europe/Helsinki"),
    "mei__heic__IMG_2927.HEIC": ("-04:00", "offset_tag", None),
    "mei__heic__Issue_437_(dotnet).heic": ("+02:00", "offset_tag", None),
    "mei__heic__exif-at-eof.heic": ("-04:00", "offset_tag", "Asia/Ulaanbaatar"),  # edited GPS?
    "pillow__Tests__images__frame_size.mpo": ("-04:00", "offset_tag", None),
    "pillow__Tests__images__ultrahdr.jpg": ("+08:00", "offset_tag", "Asia/Shanghai"),
    # rule 2, the GPS clock: local - GPS = the offset, within a few seconds
    "exiftool__t__images__Apple.jpg": ("+01:00", "gps_time", "Europe/London"),  # BST
    "exiftool__t__images__Ricoh2.jpg": ("+01:00", "gps_time", "Europe/Madrid"),  # clock on CET
    "mei__jpg__Apple_iPhone_6_plus.jpg": ("+00:00", "gps_time", "Europe/London"),  # GMT
    "mei__jpg__Oppo_R7_Plus.jpg": ("+02:00", "gps_time", "Europe/Oslo"),
    "mei__webp__Issue_473_(Java).webp": ("-07:00", "gps_time", "America/Los_Angeles"),
    "exifsamples__heic__mobile__HMD_Nokia_8.3_5G_hdr.heif": ("+00:00", "gps_time", "Europe/Madrid"),
    # rule 3, the zone at the position (GPS date a day off on these four: rule 2 rejected it)
    "exifsamples__jpg__gps__DSCN0029.jpg": ("+02:00", "gps_zone", "Europe/Rome"),  # CEST
    "exifsamples__jpg__gps__DSCN0038.jpg": ("+02:00", "gps_zone", "Europe/Rome"),
    "exifsamples__jpg__gps__DSCN0040.jpg": ("+02:00", "gps_zone", "Europe/Rome"),
    "exifsamples__jpg__gps__DSCN0042.jpg": ("+02:00", "gps_zone", "Europe/Rome"),
    "exifsamples__jpg__tests__87_OSError.jpg": ("+01:00", "gps_zone", "Europe/Rome"),  # December
    "exifsamples__jpg__Kodak_CX7530.jpg": ("+03:00", "gps_zone", "Africa/Nairobi"),
    "mei__heic__Issue_263_dotnet.heic": ("+01:00", "gps_zone", "Europe/Lisbon"),  # WEST
    "mei__jpg__Apple_iPhone_5.jpg": ("-07:00", "gps_zone", "America/Los_Angeles"),  # PDT
    "mei__jpg__Apple_iPhone_6.jpg": ("+01:00", "gps_zone", "Europe/London"),
    "mei__jpg__FujiFilm_FinePixS1Pro_(1).jpg": ("+01:00", "gps_zone", "Europe/London"),
    "mei__jpg__FujiFilm_FinePixS1Pro_(3).jpg": ("+01:00", "gps_zone", "Europe/London"),
    "mei__jpg__FujiFilm_FinePixS1Pro_(4).jpg": ("+01:00", "gps_zone", "Europe/London"),
    "mei__jpg__FujiFilm_FinePixS2Pro.jpg": ("+02:00", "gps_zone", "Europe/Paris"),
    "mei__jpg__Nokia_Lumia_800.jpg": ("+01:00", "gps_zone", "Europe/Dublin"),  # IST
    "mei__tif__Issue_151.tif": ("+01:00", "gps_zone", "Europe/Paris"),  # January
    "mei__tif__Issue_555_(1).tif": ("+04:00", "gps_zone", "Indian/Mauritius"),
    "exifsamples__jpg__tests__67-0_length_string.jpg": ("+02:00", "gps_zone", "Europe/Berlin"),
    # rule 4: 0,0 is the open sea (no zone) and the GPS clock there is 330 days off
    "mei__jpg__Issue_308.jpg": (None, None, None),
    "mei__jpg__Samsung_GT-I9000_(Galaxy_S).jpg": (None, None, None),
}


def _local(t: dict) -> str | None:  # type: ignore[type-arg]
    return t["datetime_original"] or t["create_date"] or t["modify_date"]


def _corpus_files() -> list[str]:
    try:
        return sorted(name for name, t in truth().items() if readable(t))
    except BaseException:  # no corpus at collection time: one test that skips (or fails in CI)
        return ["(no corpus)"]


@pytest.mark.parametrize("name", _corpus_files())
def test_corpus_time_rules(name: str) -> None:
    require_corpus()
    t = truth()[name]
    record = extract(IMAGES / name)
    expected = CORPUS_TIMES.get(name, (None, None, None))
    assert (record.offset, record.time_source, record.time_zone) == expected
    local = _local(t)
    if expected[0] is None:
        assert record.captured_at_utc is None
        return
    offset = when.parse_offset(expected[0])
    assert local is not None and offset is not None
    assert record.captured_at_utc == datetime.fromisoformat(local) - offset
    if expected[1] == "offset_tag":
        assert expected[0] == t["offset_time_original"]
    if expected[1] == "gps_time":  # independent check: ExifTool's GPS clock agrees within 3 min
        gps = datetime.fromisoformat(t["gps_datetime_utc"].rstrip("Z"))
        assert abs(record.captured_at_utc - gps) <= timedelta(minutes=3)


def test_corpus_table_names_real_files_and_covers_every_rule() -> None:
    require_corpus()
    assert set(CORPUS_TIMES) <= set(truth())
    sources = {source for _, source, _ in CORPUS_TIMES.values()}
    assert sources == {"offset_tag", "gps_time", "gps_zone", None}
    # every file with an OffsetTimeOriginal or a GPS clock or a position is in the table
    for name, t in truth().items():
        if t["offset_time_original"] or t["gps_datetime_utc"] or t["gps_latitude"] is not None:
            assert name in CORPUS_TIMES, name


def test_corpus_warnings_say_why() -> None:
    require_corpus()
    rejected = extract(IMAGES / "exifsamples__jpg__gps__DSCN0029.jpg").warnings
    assert any("-21:58:27" in w and "outside -12:00..+14:00" in w for w in rejected), rejected
    clash = extract(IMAGES / "exiftool__t__images__Ricoh2.jpg").warnings
    assert any("differs from Europe/Madrid (+02:00 then)" in w for w in clash), clash


# --- files written here ------------------------------------------------------------------------

PARIS = (48.8566, 2.3522)
DAY = "2016:11:10"


def _case(
    taken: str | None = f"{DAY} 18:22:47",
    offset: str | None = None,
    gps: tuple[float, float] | None = None,
    gps_time: tuple[int, int, int] | None = None,
    gps_date: str = DAY,
) -> dict[str, object]:
    return {
        "taken": taken,
        "offset": offset,
        "gps": gps,
        "gps_time": (gps_date, gps_time) if gps_time is not None else None,
    }


# id -> (make_photo arguments, offset, time_source, time_zone, a warning that must be there)
CASES: dict[str, tuple[dict[str, object], str | None, str | None, str | None, str | None]] = {
    "offset tag": (_case(offset="+05:30"), "+05:30", "offset_tag", None, None),
    "offset tag beats GPS clock and zone": (
        _case(offset="-04:00", gps=PARIS, gps_time=(17, 22, 47)),
        "-04:00",
        "offset_tag",
        "Europe/Paris",
        "differs from Europe/Paris (+01:00 then)",
    ),
    "GPS clock only": (_case(gps_time=(16, 22, 40)), "+02:00", "gps_time", None, None),
    "GPS clock 2.5 minutes behind": (
        _case(gps_time=(16, 20, 17)),
        "+02:00",
        "gps_time",
        None,
        None,
    ),
    "GPS clock, half-hour zone": (_case(gps_time=(12, 52, 47)), "+05:30", "gps_time", None, None),
    "GPS clock, west of UTC": (
        _case(taken=f"{DAY} 08:22:47", gps_time=(11, 52, 47)),
        "-03:30",
        "gps_time",
        None,
        None,
    ),
    "GPS clock 5 minutes off a quarter hour: rejected": (
        _case(gps_time=(16, 12, 47)),
        None,
        None,
        None,
        "more than 3 minutes off any quarter hour",
    ),
    "GPS clock a day off: rejected": (
        _case(gps_time=(16, 22, 47), gps_date="2016:11:09"),
        None,
        None,
        None,
        "outside -12:00..+14:00",
    ),
    "GPS clock rejected, zone used": (
        _case(gps=PARIS, gps_time=(3, 0, 0)),
        "+01:00",
        "gps_zone",
        "Europe/Paris",
        "GPS time 2016-11-10T03:00:00Z",
    ),
    "Paris in July (summer time)": (
        _case(taken="2016:07:10 12:00:00", gps=PARIS),
        "+02:00",
        "gps_zone",
        "Europe/Paris",
        None,
    ),
    "Paris in January": (
        _case(taken="2016:01:10 12:00:00", gps=PARIS),
        "+01:00",
        "gps_zone",
        "Europe/Paris",
        None,
    ),
    "India +05:30": (
        _case(taken="2016:07:10 12:00:00", gps=(28.6139, 77.2090)),
        "+05:30",
        "gps_zone",
        "Asia/Kolkata",
        None,
    ),
    "Nepal +05:45": (
        _case(taken="2016:07:10 12:00:00", gps=(27.7172, 85.3240)),
        "+05:45",
        "gps_zone",
        "Asia/Kathmandu",
        None,
    ),
    "Chatham in July (southern winter) +12:45": (
        _case(taken="2016:07:10 12:00:00", gps=(-43.9535, -176.5597)),
        "+12:45",
        "gps_zone",
        "Pacific/Chatham",
        None,
    ),
    "Chatham in January (summer time) +13:45": (
        _case(taken="2016:01:10 12:00:00", gps=(-43.9535, -176.5597)),
        "+13:45",
        "gps_zone",
        "Pacific/Chatham",
        None,
    ),
    "Newfoundland in January -03:30": (
        _case(taken="2016:01:10 12:00:00", gps=(47.5615, -52.7126)),
        "-03:30",
        "gps_zone",
        "America/St_Johns",
        None,
    ),
    "Arizona keeps standard time in July": (
        _case(taken="2016:07:10 12:00:00", gps=(33.4484, -112.0740)),
        "-07:00",
        "gps_zone",
        "America/Phoenix",
        None,
    ),
    "clocks went back: 02:30 happened twice": (
        _case(taken="2016:10:30 02:30:00", gps=PARIS),
        "+02:00",
        "gps_zone",
        "Europe/Paris",
        "happened twice in Europe/Paris",
    ),
    "clocks went forward: 02:30 never happened": (
        _case(taken="2016:03:27 02:30:00", gps=PARIS),
        "+01:00",
        "gps_zone",
        "Europe/Paris",
        "never happened in Europe/Paris",
    ),
    "open sea: no zone": (_case(gps=(30.0, -40.0)), None, None, None, None),
    "position, no capture time": (_case(taken=None, gps=PARIS), None, None, "Europe/Paris", None),
    "nothing": (_case(), None, None, None, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_time_rules_on_written_files(tmp_path: Path, case: str) -> None:
    args, offset, source, zone, warning = CASES[case]
    record = extract(make_photo(tmp_path / "p.jpg", **args))  # type: ignore[arg-type]
    assert (record.offset, record.time_source, record.time_zone) == (offset, source, zone)
    if offset is None:
        assert record.captured_at_utc is None
    else:
        assert record.captured_at is not None
        assert record.captured_at_utc == record.captured_at - when.parse_offset(offset)
        assert record.captured_at == datetime.strptime(str(args["taken"]), "%Y:%m:%d %H:%M:%S")
    if warning is None:
        assert not [w for w in record.warnings if "GPS" in w or "Europe" in w], record.warnings
    else:
        assert any(warning in w for w in record.warnings), record.warnings
    assert record.offset_from == ("OffsetTimeOriginal" if source == "offset_tag" else None)


# --- the rules as functions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("gap", "offset"),
    [
        (timedelta(hours=2, minutes=3), "+02:00"),  # 3 minutes: the tolerance, accepted
        (timedelta(hours=2, minutes=3, seconds=1), None),
        (timedelta(hours=1, minutes=57), "+02:00"),  # GPS stamp a little ahead
        (timedelta(hours=-12), "-12:00"),
        (timedelta(hours=-12, minutes=-15), None),
        (timedelta(hours=14), "+14:00"),
        (timedelta(hours=14, minutes=15), None),
        (timedelta(hours=5, minutes=45, seconds=20), "+05:45"),
        (timedelta(0), "+00:00"),
    ],
)
def test_gps_clock_offset_tolerance(gap: timedelta, offset: str | None) -> None:
    gps = datetime(2020, 6, 1, 12, 0, 0)
    found, problem = when.gps_time_offset(gps + gap, gps)
    assert (None if found is None else when.format_offset(found)) == offset
    assert (problem is None) == (offset is not None)


def test_offset_text_round_trips() -> None:
    for text in ("+00:00", "+05:45", "-03:30", "+14:00", "-12:00", "+12:45"):
        parsed = when.parse_offset(text)
        assert parsed is not None and when.format_offset(parsed) == text
    assert when.parse_offset("+5:45") is None and when.parse_offset("junk!!") is None


def test_never_the_machine_zone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    record = extract(make_photo(tmp_path / "p.jpg"))
    assert (record.offset, record.captured_at_utc, record.time_source) == (None, None, None)


def test_timezonefinder_loads_lazily_once_and_only_for_gps(tmp_path: Path) -> None:
    """Watch pays for the zone data only when a photo has a position (in a fresh process)."""
    plain = make_photo(tmp_path / "plain.jpg", offset="+01:00")
    placed = make_photo(tmp_path / "placed.jpg", gps=PARIS)
    code = (
        "import sys, time\n"
        "from catalog import when\n"
        "from catalog.extract import extract\n"
        "extract(sys.argv[1]); assert not when.finder_loaded(), 'loaded without GPS'\n"
        "assert 'timezonefinder' not in sys.modules\n"
        "t = time.perf_counter(); extract(sys.argv[2]); first = time.perf_counter() - t\n"
        "t = time.perf_counter(); extract(sys.argv[2]); again = time.perf_counter() - t\n"
        "assert when.finder_loaded()\n"
        "print(f'{first:.3f} {again:.3f}')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(plain), str(placed)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    first, again = map(float, done.stdout.split())
    assert again < first  # loaded once: the second photo does not pay again


def test_a_failure_in_the_rules_keeps_the_record_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """when.apply never raises (the writer applies it to every record of a scan): a zone lookup
    that fails, as with timezonefinder's data files unreadable, leaves the time unresolved and
    says why; the rest of the record is as extracted."""
    record = extract(make_photo(tmp_path / "p.jpg", gps=PARIS), with_time=False)

    def unreadable(latitude: float | None, longitude: float | None) -> str | None:
        raise OSError(5, "Input/output error\nwhile reading the zone data")

    monkeypatch.setattr(when, "zone_at", unreadable)
    when.apply(record)
    when.apply(record)  # said once
    assert (record.offset, record.captured_at_utc, record.time_source) == (None, None, None)
    assert record.warnings == [
        "UTC time not resolved (OSError: [Errno 5] Input/output error while reading the zone data)"
    ]
    assert record.latitude == pytest.approx(PARIS[0]) and record.make == "Canon"


def test_the_time_rules_warn_within_a_records_cap(tmp_path: Path) -> None:
    """Warnings from the time rules go through the same rule as extraction's (once each, at most
    MAX_WARNINGS a record), now that the process storing the record applies them."""
    from catalog.record import MAX_WARNINGS

    photo = make_photo(tmp_path / "p.jpg", gps=PARIS, taken="2016:11:11 08:00:00")
    record = extract(photo, with_time=False)
    record.gps_time_utc = record.captured_at - timedelta(hours=30)  # a GPS clock far off
    alone = extract(photo, with_time=False)
    alone.gps_time_utc = record.gps_time_utc
    when.apply(alone)
    assert any("GPS time" in w for w in alone.warnings)  # warned about, with room
    record.warnings = [f"earlier {i}" for i in range(MAX_WARNINGS)]
    when.apply(record)
    assert record.warnings == [f"earlier {i}" for i in range(MAX_WARNINGS)]
    assert record.time_source == "gps_zone"  # the time is still resolved
