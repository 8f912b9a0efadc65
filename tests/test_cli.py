"""The command line, run through typer's runner against real folders and real SQLite files,
reopening the catalog afterwards to check what it holds."""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BACKEND, Scanned, engine_for, sqlite_only
from corpus import BROKEN, IMAGES, truth
from photos import extended_xmp, make_photo, with_xmp
from sqlalchemy import text
from typer.testing import CliRunner

from catalog.cli import app
from catalog.query import RECORD_KEYS, TERM_FIELDS
from catalog.render import csv_cell

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def library(tmp_path: Path) -> Path:
    top = tmp_path / "library"
    make_photo(
        top / "a.jpg",
        make="samsung",
        model="SM-G920F",
        taken="2016:11:10 18:22:47",
        offset="+02:00",
        gps=(48.8584, 2.2945),
        altitude=35.5,
    )
    make_photo(top / "b.jpg", make="samsung", model="SM-G920F", taken="2016:12:01 00:00:00")
    make_photo(
        top / "sub" / "c.jpg", make="Canon", model="Canon EOS 5D", taken="2016:11:30 23:59:59"
    )
    (top / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return top


@pytest.fixture
def scanned(library: Path, db: str) -> str:
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    return db


def names(out: str) -> set[str]:
    return {r["path"].rsplit("/", 1)[1] for r in json.loads(out)}


def test_scan_prints_a_summary_and_fills_the_catalog(library: Path, db: str) -> None:
    code, out, _ = run("scan", library, "--db", db)
    assert code == 0
    assert out.strip() == "new 4, updated 0, unchanged 0, removed 0, failed 1, skipped 0"
    engine = engine_for(db)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM photos")).scalar() == 4
        assert (
            conn.execute(text("SELECT count(*) FROM photos WHERE error IS NOT NULL")).scalar() == 1
        )
    engine.dispose()
    code, out, _ = run("scan", library, "--db", db, "--format", "json")
    assert json.loads(out) == {
        "new": 0,
        "updated": 0,
        "unchanged": 4,
        "removed": 0,
        "failed": 0,
        "skipped": 0,
    }


def test_scan_reread_reads_every_file_again(library: Path, scanned: str) -> None:
    engine = engine_for(scanned)
    with engine.begin() as conn:  # as an older photocat might have read them
        conn.execute(text("UPDATE photos SET width = 1, sha256 = NULL"))
    code, out, _ = run("scan", library, "--db", scanned, "--reread", "-q")
    assert code == 0
    assert out.strip() == "new 0, updated 4, unchanged 0, removed 0, failed 1, skipped 0"
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT rel_path, width, sha256 FROM photos")).all()
    engine.dispose()
    digests = {rel: hashlib.sha256((library / rel).read_bytes()).hexdigest() for rel, _, _ in rows}
    assert {(rel, sha) for rel, _, sha in rows} == set(digests.items())
    assert {width for rel, width, _ in rows if rel != "bad.jpg"} == {64}
    code, out, _ = run("scan", "--db", scanned, "--reread", "-q")  # every folder, again
    assert code == 0
    assert out.strip() == "new 0, updated 4, unchanged 0, removed 0, failed 1, skipped 0"


def test_search_by_date_presence_and_time_source_options_and_terms(scanned: str) -> None:
    """library: a.jpg has an offset tag, b.jpg and c.jpg neither offset nor GPS, bad.jpg is
    unread. Options given beside terms win, as for the text fields."""

    def paths(*args: str) -> set[str]:
        code, out, err = run("search", *args, "--db", scanned, "-f", "json")
        assert code == 0, err
        return names(out)

    assert paths("--no-date") == {"bad.jpg"}
    assert paths("dated:yes") == {"a.jpg", "b.jpg", "c.jpg"}
    assert paths("--time-source", "offset_tag") == {"a.jpg"}
    assert paths("time_source:none") == {"b.jpg", "c.jpg", "bad.jpg"}
    assert paths("time_source:none", "--has-date") == {"b.jpg", "c.jpg"}
    assert paths("dated:no", "--has-date") == {"a.jpg", "b.jpg", "c.jpg"}  # the option wins
    assert paths("gps:no", "--has-gps") == {"a.jpg"}
    assert paths("error:no", "--errors") == {"bad.jpg"}
    code, out, _ = run("search", "time_source:none", "--no-date", "--count", "--db", scanned)
    assert (code, out.strip()) == (0, "1")
    code, _, err = run("search", "--time-source", "exif", "--db", scanned)
    assert code == 1
    assert "time source 'exif': one of offset_tag, gps_time, gps_zone, none" in err
    code, _, err = run("search", "time_source:\x1b]0;owned\x07[bold]x", "--db", scanned)
    assert code == 1 and "\x1b" not in err and "\x07" not in err  # escaped, not sent
    assert "\\x1b]0;owned\\x07[bold]x" in err  # and markup shown as it is


def test_search_by_serial_and_software_options_and_terms(corpus_db: Scanned) -> None:
    """An editor's files and one camera body's, by option or term; an option beside a term wins."""

    def paths(*args: str) -> set[str]:
        code, out, err = run("search", *args, "--db", corpus_db.db, "-f", "json")
        assert code == 0, err
        return names(out)

    photoshop = {n for n, t in truth().items() if "Photoshop" in (t["software"] or "")}
    gimp = {n for n, t in truth().items() if (t["software"] or "").startswith("GIMP ")}
    assert len(photoshop) >= 10 and len(gimp) >= 10
    assert paths("--software", "*PHOTOSHOP*") == photoshop
    assert paths("software:gimp*") == gimp
    assert paths("software:gimp*", "--software", "*photoshop*") == photoshop  # the option wins
    dng = "exiftool__t__images__DNG.dng"
    code, out, _ = run("search", "--serial", "012345678", "-f", "paths", "--db", corpus_db.db)
    assert (code, out) == (0, f"{IMAGES / dng}\n")
    assert paths("serial:012345678", "--serial", "no such body") == set()
    code, out, _ = run("search", "serial:*", "--count", "--db", corpus_db.db)
    assert (code, out.strip()) == (0, str(1 + sum(1 for t in truth().values() if t["serial"])))
    # any tag of the listing: the same Software tag, by its name
    assert paths("--tag", "Software=*photoshop*") == photoshop
    assert paths("tag:Software=gimp*", "--tag", "software=*PHOTOSHOP*") == photoshop  # option wins
    code, _, err = run("search", "--tag", "Software", "--db", corpus_db.db)
    assert code == 1 and "not a tag and value: 'Software'" in err


def test_scan_of_a_missing_folder_fails_with_a_message(tmp_path: Path, db: str) -> None:
    code, _, err = run("scan", tmp_path / "nowhere", "--db", db)
    assert code == 1
    assert "does not exist" in err


def test_search_by_model_is_case_insensitive_and_json_keys_are_in_order(scanned: str) -> None:
    code, out, _ = run("search", "--model", "sm-g920f", "--format", "json", "--db", scanned)
    assert code == 0
    rows = json.loads(out)
    assert {r["path"].rsplit("/", 1)[1] for r in rows} == {"a.jpg", "b.jpg"}
    assert all(list(r) == list(RECORD_KEYS) for r in rows)
    a = next(r for r in rows if r["path"].endswith("a.jpg"))
    assert a["path"].startswith("/")
    assert a["captured_at"] == "2016-11-10T18:22:47"
    assert a["offset"] == "+02:00"
    assert a["captured_at_utc"] == "2016-11-10T16:22:47Z"
    assert a["latitude"] == pytest.approx(48.8584, abs=1e-6)
    assert a["sha256"] and len(a["sha256"]) == 64


def test_search_substring_and_terms(scanned: str) -> None:
    assert names(run("search", "--model", "*g920*", "-f", "json", "--db", scanned)[1]) == {
        "a.jpg",
        "b.jpg",
    }
    assert names(run("search", "model:*EOS*", "-f", "json", "--db", scanned)[1]) == {"c.jpg"}
    assert names(run("search", "date:2016-11", "-f", "json", "--db", scanned)[1]) == {
        "a.jpg",
        "c.jpg",
    }


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from", "2016-11-01", "--to", "2016-11-30"], {"a.jpg", "c.jpg"}),
        (["--from", "2016-11-30"], {"b.jpg", "c.jpg"}),
        (["--to", "2016-11-30T23:59"], {"a.jpg", "c.jpg"}),
        (["--to", "2016-11-30T23:59:58"], {"a.jpg"}),
        (["--has-gps"], {"a.jpg"}),
        (["--no-gps"], {"b.jpg", "c.jpg", "bad.jpg"}),
        (["--errors"], {"bad.jpg"}),
        (["--make", "CANON"], {"c.jpg"}),
        ([], {"a.jpg", "b.jpg", "c.jpg", "bad.jpg"}),
    ],
)
def test_search_filters(scanned: str, args: list[str], expected: set[str]) -> None:
    code, out, err = run("search", *args, "--format", "json", "--db", scanned)
    assert code == 0, err
    assert names(out) == expected


def test_search_output_formats(scanned: str, library: Path) -> None:
    _, out, _ = run("search", "--format", "csv", "--sort", "path", "--db", scanned)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == list(RECORD_KEYS)
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b.jpg", "bad.jpg", "c.jpg"]
    _, out, _ = run("search", "--format", "paths", "--sort", "path", "--db", scanned)
    assert out.splitlines() == [
        str(library / p) for p in ("a.jpg", "b.jpg", "bad.jpg", "sub/c.jpg")
    ]
    _, out, _ = run("search", "--format", "jsonl", "--limit", "2", "--db", scanned)
    assert len([json.loads(line) for line in out.splitlines()]) == 2
    _, out, _ = run("search", "--count", "--model", "SM-G920F", "--db", scanned)
    assert out.strip() == "2"
    code, out, _ = run("search", "--db", scanned)
    assert code == 0 and "a.jpg" in out and "SM-G920F" in out


def test_search_full_exports_everything_known_of_each_photo(scanned: str, library: Path) -> None:
    code, out, err = run("search", "--full", "--format", "jsonl", "--sort", "path", "--db", scanned)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b.jpg", "bad.jpg", "c.jpg"]
    _, shown, _ = run("show", library / "a.jpg", "--format", "json", "--db", scanned)
    assert rows[0] == json.loads(shown)
    assert {"Make", "Model", "DateTimeOriginal"} <= {t["name"] for t in rows[0]["tags"]}
    for fmt in ("table", "csv", "paths"):
        code, out, err = run("search", "--full", "--format", fmt, "--db", scanned)
        assert code == 2 and out == "" and "use --format json or jsonl" in err


def test_bad_query_and_missing_catalog_fail_cleanly(scanned: str, tmp_path: Path) -> None:
    code, _, err = run("search", "--from", "2016-13-01", "--db", scanned)
    assert code == 1 and "not a date" in err
    if BACKEND == "sqlite":
        code, _, err = run("search", "--db", tmp_path / "none.db")
        assert code == 1 and "no catalog" in err
        assert not (tmp_path / "none.db").exists()
    code, _, _ = run("search", "--format", "yaml", "--db", scanned)
    assert code == 2


# Photos at known positions, with their neighbours: across the antimeridian and around the pole
# as well as in one city, where a box of latitudes and longitudes alone would go wrong.
SPOTS = {
    "eiffel": (48.8584, 2.2945),
    "trocadero": (48.8616, 2.2893),  # ~0.5 km from the tower
    "louvre": (48.8606, 2.3376),  # ~3.2 km
    "fiji_west": (-17.0, 179.995),  # ~1 km apart, on both sides of longitude 180
    "fiji_east": (-17.0, -179.995),
    "pole_a": (89.995, 10.0),  # ~1.1 km apart, on both sides of the North Pole
    "pole_b": (89.995, -170.0),
    "sydney": (-33.8568, 151.2153),
}


@pytest.fixture
def trip(tmp_path: Path, db: str) -> str:
    for name, gps in SPOTS.items():
        make_photo(tmp_path / "trip" / f"{name}.jpg", gps=gps)
    make_photo(tmp_path / "trip" / "no_gps.jpg")
    code, _, err = run("scan", tmp_path / "trip", "--db", db)
    assert code == 0, err
    return db


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--near", "48.8584,2.2945"], ["eiffel", "trocadero"]),  # 1 km unless told
        (["--near", "48.8584,2.2945", "--within", "5km"], ["eiffel", "louvre", "trocadero"]),
        (["--near", "48.8584,2.2945", "--within", "100m"], ["eiffel"]),
        (["--near", "48.8584,2.2945", "--within", "5km", "--sort", "distance"],
         ["eiffel", "trocadero", "louvre"]),  # nearest first
        (["--near", "48.8584,2.2945", "--within", "5km", "--sort", "distance", "--desc",
          "--limit", "1"], ["louvre"]),
        (["near:48.8584,2.2945", "within:5km", "--sort", "distance"],
         ["eiffel", "trocadero", "louvre"]),
        (["near:48.8584,2.2945", "--within", "600m"], ["eiffel", "trocadero"]),
        (["--near", "-17,180", "--within", "1km"], ["fiji_east", "fiji_west"]),
        (["--near", "-17,-179.995", "--within", "1.1km", "--sort", "distance"],
         ["fiji_east", "fiji_west"]),
        (["--near", "90,0", "--within", "1km"], ["pole_a", "pole_b"]),
        (["--near", "89.995,10", "--within", "1200m", "--sort", "distance"],
         ["pole_a", "pole_b"]),
        (["--near", "-33.8568,151.2153"], ["sydney"]),  # south and east, without "="
        (["--near", "0,0", "--within", "1000km"], []),
        (["--near", "0,0", "--within", "20100km", "--sort", "path"], sorted(SPOTS)),
    ],
)  # fmt: skip
def test_search_near_a_position(trip: str, args: list[str], expected: list[str]) -> None:
    code, out, err = run("search", *args, "--format", "paths", "--db", trip)
    assert code == 0, err
    got = [Path(line).stem for line in out.splitlines()]
    assert (got if "--sort" in args else sorted(got)) == expected
    if "--limit" not in args:  # a count is of every match
        code, out, _ = run("search", *args, "--count", "--db", trip)
        assert code == 0 and int(out) == len(expected)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--near", "91,0"], "latitude 91 is not within -90..90"),
        (["--near", "0,-181"], "longitude -181 is not within -180..180"),
        (["--near", "48.8584"], "not a position: '48.8584'"),
        (["--near", "nan,0"], "not a position"),
        (["--near", "\x1b[31m1,2"], "not a position: '\\x1b[31m1,2'"),  # shown inert
        (["--near", "1,2", "--within", "5"], "not a distance: '5'"),
        (["--within", "1km"], "needs a position"),
        (["within:1km"], "needs a position"),
        (["--sort", "distance"], "sorting by distance needs a position"),
        (["--near", "1,2", "--sort", "distance", "--count", "--within", "2 miles"],
         "not a distance"),
    ],
)  # fmt: skip
def test_search_near_a_position_refuses_what_it_cannot_measure(
    trip: str, args: list[str], said: str
) -> None:
    code, out, err = run("search", *args, "--db", trip)
    assert code == 1 and out == ""
    assert err.startswith("photocat: ") and said in err, err
    assert "\x1b" not in err


def test_search_by_digest_under_its_own_algorithm(library: Path, db: str) -> None:
    code, _, err = run("scan", library, "--hash", "blake2b", "--db", db)
    assert code == 0, err
    a = hashlib.blake2b((library / "a.jpg").read_bytes(), digest_size=32).hexdigest()
    for args in (
        ["--blake2b", a],
        ["--blake2b", a[:8].upper()],
        [f"blake2b:{a[:10]}"],
        ["blake2b:00000000", "--blake2b", a],  # the option beside a term wins
    ):
        code, out, err = run("search", *args, "--format", "paths", "--db", db)
        assert code == 0 and out == f"{library / 'a.jpg'}\n", (args, err)
    sha = hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    code, out, _ = run("search", "--sha256", sha, "--count", "--db", db)  # not hashed so
    assert code == 0 and out.strip() == "0"
    code, out, err = run("search", "--sha256", "abc", "--db", db)
    assert code == 1 and out == "" and "not a SHA-256 digest: 'abc'" in err


def test_search_by_a_hash_set_from_a_file_or_standard_input(
    library: Path, scanned: str, tmp_path: Path
) -> None:
    def digest(name: str) -> str:
        return hashlib.sha256((library / name).read_bytes()).hexdigest()

    hash_set = tmp_path / "known.sha256"
    hash_set.write_text(  # as `sha256sum a.jpg sub/c.jpg` prints it, plus a comment
        f"# known files\n{digest('a.jpg')}  a.jpg\n{digest('sub/c.jpg')}  sub/c.jpg\n" + "0" * 64
    )
    code, out, err = run("search", "--sha256-from", hash_set, "-f", "json", "--db", scanned)
    assert code == 0, err
    assert names(out) == {"a.jpg", "c.jpg"}
    code, out, err = run("search", "--sha256-from", hash_set, "model:SM-G920F", "--db", scanned,
                         "--count")  # fmt: skip
    assert (code, out.strip()) == (0, "1")
    result = runner.invoke(
        app, ["search", "--sha256-from", "-", "-f", "paths", "--db", scanned],
        input=digest("b.jpg") + "\n",
    )  # fmt: skip
    assert (result.exit_code, result.stdout) == (0, f"{library / 'b.jpg'}\n")
    code, out, _ = run("search", "--blake2b-from", hash_set, "--count", "--db", scanned)
    assert (code, out.strip()) == (0, "0")  # scanned with SHA-256: no BLAKE2b digest to match
    hostile = tmp_path / "set\x1b[2J.txt"
    hostile.write_text(f"{digest('a.jpg')}\n\x1b]0;owned\x07\n")
    code, out, err = run("search", "--sha256-from", hostile, "--db", scanned)
    assert code == 1 and out == ""
    assert "line 2: not a SHA-256 digest" in err and "\x1b" not in err and "\x07" not in err
    code, out, err = run("search", "--sha256-from", tmp_path / "missing", "--db", scanned)
    assert code == 1 and "cannot read" in err and "No such file" in err


def test_a_hash_set_written_on_windows_is_read(library: Path, scanned: str, tmp_path: Path) -> None:
    """A byte-order mark and CRLF line ends (Notepad's UTF-8, PowerShell's UTF-16) are no
    reason to refuse a hash set: before, the mark made its first line 'not a digest'."""
    digest = hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    line = f"{digest.upper()}  a.jpg\r\n"
    for encoding in ("utf-8-sig", "utf-16", "utf-16-be"):
        if encoding == "utf-16-be":
            data = b"\xfe\xff" + line.encode(encoding)
        else:
            data = line.encode(encoding)
        hash_set = tmp_path / f"{encoding}.txt"
        hash_set.write_bytes(data)
        code, out, err = run("search", "--sha256-from", hash_set, "-f", "json", "--db", scanned)
        assert (code, err) == (0, "") and names(out) == {"a.jpg"}, encoding
        done = subprocess.run(  # standard input, as the real command reads it
            [sys.executable, "-m", "catalog.cli", "search", "--sha256-from", "-", "--count",
             "--db", scanned],
            input=data, capture_output=True,
        )  # fmt: skip
        assert (done.returncode, done.stdout.strip(), done.stderr) == (0, b"1", b""), encoding


def test_search_leaving_out_known_files(library: Path, db: str, tmp_path: Path) -> None:
    """--not-sha256-from: every file but those of the hash set; one not hashed yet stays."""
    (library / "late.jpg").write_bytes((library / "b.jpg").read_bytes() + b"!")
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    with engine_for(db).begin() as conn:  # as a large file is, until the hash stage reaches it
        conn.execute(text("UPDATE photos SET sha256 = NULL WHERE rel_path = 'late.jpg'"))
    known = tmp_path / "known.sha256"
    known.write_bytes(
        subprocess.run(["sha256sum", "a.jpg", "sub/c.jpg", "late.jpg"], cwd=library,
                       capture_output=True, check=True).stdout
    )  # fmt: skip
    code, out, err = run("search", "--not-sha256-from", known, "-f", "json", "--db", db)
    assert code == 0, err
    assert names(out) == {"b.jpg", "bad.jpg", "late.jpg"}
    code, out, _ = run("search", "--not-sha256-from", known, "--count", "model:SM-G920F",
                       "--db", db)  # fmt: skip
    assert (code, out.strip()) == (0, "2")  # b.jpg, and late.jpg (b's tags) with no digest
    result = runner.invoke(
        app, ["search", "--not-blake2b-from", "-", "--count", "--db", db], input="ab" * 32 + "\n"
    )
    assert (result.exit_code, result.stdout.strip()) == (0, "5")  # no BLAKE2b: none is known
    code, out, err = run("search", "--sha256-from", "-", "--not-sha256-from", "-", "--db", db)
    assert code == 2 and out == "" and "one hash set only" in err


def test_a_hash_set_on_standard_input_may_name_files_in_any_bytes(
    library: Path, scanned: str
) -> None:
    """sha256sum's output for an old archive names files in Latin-1: the real command reads
    the digests beside those names even where the locale decodes standard input strictly."""
    digest = hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    done = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "search", "--sha256-from", "-", "--count",
         "--db", scanned],
        input=f"{digest}  caf".encode() + b"\xe9.jpg\n", capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, b"1", b"")


def test_duplicates_lists_each_copy_and_says_what_it_could_not_compare(
    library: Path, db: str
) -> None:
    shutil.copyfile(library / "a.jpg", library / "sub" / "=copy of a.jpg")
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    digest = hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    code, out, err = run("duplicates", "--format", "csv", "--db", db)
    assert code == 0 and err == "", err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [list(r.values()) for r in rows] == [
        [digest, "2", str((library / "a.jpg").stat().st_size), str(p)]
        for p in (library / "a.jpg", library / "sub" / "=copy of a.jpg")
    ]
    code, out, _ = run("duplicates", "--format", "paths0", "--path", library / "sub", "--db", db)
    assert code == 0 and out == ""  # one copy under sub/: nothing to pair it with
    code, out, err = run("duplicates", "--hash", "blake2b", "--format", "json", "--db", db)
    assert code == 0 and json.loads(out) == []
    assert "5 file(s) have no blake2b digest" in err  # a.jpg, its copy, b, c and bad.jpg
    code, _, err = run("duplicates", "--hash", "md5", "--db", db)
    assert code == 2


def test_checksum_lists_check_with_the_coreutils_tools(
    library: Path, db: str, tmp_path: Path
) -> None:
    """search -f sha256sum / b2sum write what `sha256sum -c` / `b2sum -c` check; a file
    without that digest is left out and counted on stderr, never silently."""
    photos = sorted(str(p) for p in library.rglob("*.jpg"))
    code, _, err = run("scan", library, "--hash", "blake2b", "--db", db)
    assert code == 0, err
    code, out, err = run("search", "-f", "b2sum", "--sort", "path", "--db", db)
    assert code == 0 and err == ""
    assert [line.split("  ", 1)[1] for line in out.splitlines()] == photos
    (tmp_path / "b2").write_text(out)
    done = subprocess.run(["b2sum", "--check", "--strict", tmp_path / "b2"], capture_output=True)
    assert (done.returncode, done.stdout.count(b": OK\n")) == (0, len(photos)), done

    code, out, err = run("search", "-f", "sha256sum", "--db", db)  # scanned with BLAKE2b only
    assert (code, out) == (0, "")
    assert f"{len(photos)} file(s) have no sha256 digest" in err and "not listed" in err
    code, _, err = run("scan", library, "--reread", "--db", db)  # SHA-256 now
    assert code == 0, err
    code, out, err = run("search", "model:SM-G920F", "-f", "sha256sum", "--db", db)
    assert code == 0 and err == ""
    assert out == "".join(
        f"{hashlib.sha256((library / n).read_bytes()).hexdigest()}  {library / n}\n"
        for n in ("a.jpg", "b.jpg")
    )


def test_checksum_lists_of_copies_and_where_they_are_refused(library: Path, db: str) -> None:
    shutil.copyfile(library / "a.jpg", library / "sub" / "copy.jpg")
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    digest = hashlib.sha256((library / "a.jpg").read_bytes()).hexdigest()
    code, out, err = run("duplicates", "-f", "sha256sum", "--db", db)
    assert (code, err) == (0, "")
    assert out == f"{digest}  {library / 'a.jpg'}\n{digest}  {library / 'sub' / 'copy.jpg'}\n"
    code, _, err = run("duplicates", "-f", "b2sum", "--db", db)
    assert code == 2 and "add --hash blake2b" in err
    for command in ("devices", "places", "folders", "verify"):
        code, out, err = run(command, "-f", "sha256sum", "--db", db)
        assert (code, out) == (2, ""), command
        assert "use it with search or duplicates" in err


@pytest.mark.parametrize(
    ("db", "said"),
    [
        ("://x", "is no file path nor database URL"),
        ("postgresql://u:SECRET@h:notaport/db", "is no file path nor database URL"),
        ("mysql://u:SECRET@h/db", "a SQLite file or a PostgreSQL database, not 'mysql'"),
        ("foo://bar", "not 'foo'"),
        ("postgresql+nosuch://u:SECRET@h/db", 'pip install "photocat[postgres]"'),
        ("postgresql+psycopg2://u:SECRET@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("sqlite+nosuch:///{tmp}/sub/c.db", "Can't load plugin"),
        ("", "--db is empty"),
    ],
)
@pytest.mark.parametrize("command", ["scan", "search", "watch"])
def test_a_db_that_is_no_catalog_url_fails_with_a_message(
    command: str, db: str, said: str, library: Path, tmp_path: Path
) -> None:
    args = [library] if command in ("scan", "watch") else []
    if command == "search" and db.startswith("sqlite"):  # a search makes no catalog file
        said = "no catalog at"
    code, out, err = run(command, *args, "--db", db.format(tmp=tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("photocat: ") and said in " ".join(err.split()), err
    assert "SECRET" not in err  # a URL's password is never repeated
    assert not (tmp_path / "sub").exists()  # nothing made for a catalog that cannot open


@sqlite_only
@pytest.mark.parametrize("name", ["a?b.db", "x%41.db", "100%.db", "a#b.db", "é b+c.db"])
def test_a_catalog_file_is_made_at_exactly_the_path_given(
    name: str, library: Path, tmp_path: Path
) -> None:
    """--db is a path, not a URL: '?' starts no query string, '%41' is not 'A'."""
    path = tmp_path / "cat" / name
    code, _, err = run("scan", library, "--db", path)
    assert code == 0, err
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".db"] == [name]
    code, out, _ = run("search", "--count", "--db", path)
    assert code == 0 and int(out) == 4


def test_bytes_that_are_not_utf8_are_one_clear_error(scanned: str, tmp_path: Path) -> None:
    """A terminal's bytes that are not UTF-8 reach photocat surrogate-escaped: text filters and
    a catalog path cannot go into SQL or a URL as such; said in one line, not a traceback."""
    for args in (["--model", "Cam\udce9ra"], ["city:Caf\udce9"], ["--lens", "*\udcff*"]):
        code, out, err = run("search", *args, "--db", scanned)
        assert code == 1 and out == ""
        assert err.startswith("photocat: ") and "is not valid UTF-8 text" in err, err
        assert "\\xe9" in err or "\\xff" in err  # the byte shown, escaped
    code, out, err = run("search", "--db", tmp_path / "\udcff.db")
    assert code == 1 and "its path is not valid UTF-8" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "{library}", "--workers", "0"],
        ["scan", "{library}", "--workers", "-1"],
        ["scan", "{library}", "--workers", "257"],
        ["verify", "--workers", "0"],
        ["watch", "{library}", "--workers", "100000"],
        ["watch", "{library}", "--poll", "nan"],
        ["watch", "{library}", "--poll", "inf"],
        ["watch", "{library}", "--settle", "nan"],
        ["watch", "{library}", "--reconcile", "inf"],
    ],
)
def test_absurd_numbers_are_usage_errors(args: list[str], library: Path, db: str) -> None:
    """Before: --workers -1 ran on one process and 100000 would fork as many; --poll inf was a
    traceback from the clock, --settle nan a daemon whose files never settle."""
    # A process of its own, with a timeout: were the value taken, a watch would never end.
    done = photocat(*(a.format(library=library) for a in args), "--db", db, timeout=30)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "Invalid value" in done.stderr, done.stderr


@sqlite_only
def test_a_damaged_catalog_is_one_line_not_a_traceback(scanned: str, library: Path) -> None:
    """An investigator's copy of a catalog may come damaged: pages of garbage in the middle.
    And a wildcard pattern beyond what SQLite will match is the database's refusal too."""
    code, _, err = run("search", "--model", "*" * 60_000, "--db", scanned)
    assert code == 1 and "LIKE or GLOB pattern too complex" in err and err.count("\n") == 1
    with open(scanned, "r+b") as fh:
        fh.seek(4096 * 3)
        fh.write(bytes(range(256)) * 64)  # four pages
    for args in (["search"], ["devices"], ["show", library / "a.jpg"]):
        code, out, err = run(*args, "--db", scanned)
        assert code == 1 and out == "", (args, out)
        assert err.startswith("photocat: ") and err.count("\n") == 1, err
        assert "malformed" in err, err


def test_a_photocat_db_that_is_no_catalog_url_fails_with_a_message() -> None:
    code, out, err = run("search", env={"PHOTOCAT_DB": "mysql://u:SECRET@h/db"})
    assert code == 1 and out == ""
    assert err.startswith("photocat: ") and "not 'mysql'" in err and "SECRET" not in err
    code, _, err = run("devices", env={"PHOTOCAT_DB": "://x"})
    assert code == 1 and "--db (or PHOTOCAT_DB) is no file path nor database URL" in err


def test_db_from_environment(library: Path, db: str) -> None:
    env = {"PHOTOCAT_DB": db}
    assert run("scan", library, env=env)[0] == 0
    assert names(run("search", "--errors", "-f", "json", env=env)[1]) == {"bad.jpg"}


def test_show_lists_fields_then_every_tag(scanned: str, library: Path) -> None:
    code, out, _ = run("show", library / "a.jpg", "--db", scanned)
    assert code == 0
    assert "model" in out and "SM-G920F" in out
    assert "captured_from" in out and "DateTimeOriginal" in out
    lines = out.splitlines()
    assert any(line.startswith("[IFD0] Make") and line.endswith(": samsung") for line in lines)
    assert any("[GPS]" in line and "GPSLatitudeRef" in line for line in lines)
    listing = [line for line in lines if line.startswith("[")]
    assert len({line.index(" : ") for line in listing}) == 1  # one column, whatever the IFD
    code, out, _ = run("show", library / "a.jpg", "--format", "json", "--db", scanned)
    detail = json.loads(out)
    assert detail["model"] == "SM-G920F"
    assert {"ifd": "IFD0", "id": 0x010F, "name": "Make", "value": "samsung"} in detail["tags"]
    code, _, err = run("show", library / "nope.jpg", "--db", scanned)
    assert code == 1 and "not in the catalog" in err


def test_show_lists_the_xmp_packet_line_by_line_and_inert(library: Path, db: str) -> None:
    packet = (
        "<x:xmpmeta>\n <dc:subject>Beach</dc:subject>\n"
        + " " * 40
        + "\n \x1b]0;pwned\x07\n</x:xmpmeta>"
    )
    photo = library / "xmp.jpg"
    photo.write_bytes(with_xmp(library / "a.jpg", packet.encode()))
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    code, out, _ = run("show", photo, "--db", db)
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("[XMP] XMLPacket"))
    assert lines[at].endswith(" : <x:xmpmeta>")
    indent = lines[at].index(" : ") + 3
    assert [line[indent:] for line in lines[at + 1 :]] == [
        " <dc:subject>Beach</dc:subject>",
        " \\x1b]0;pwned\\x07",  # shown, not obeyed; the blank padding line left out
        "</x:xmpmeta>",
    ]
    forged = library / "forged.jpg"  # an EXIF value's newline must not make a line of its own
    make_photo(forged, extra={0x013B: "Ann\n[IFD0] Make               : Forged"})
    assert run("scan", library, "--db", db)[0] == 0
    shown = run("show", forged, "--db", db)[1].splitlines()
    (artist,) = [line for line in shown if "Forged" in line]
    assert artist.startswith("[IFD0] Artist") and artist.endswith(
        " : Ann\\x0a[IFD0] Make" + " " * 15 + ": Forged"
    )
    code, out, _ = run("show", photo, "-f", "json", "--db", db)
    assert json.loads(out)["tags"][-1] == {
        "ifd": "XMP", "id": 700, "name": "XMLPacket", "value": packet,
    }  # fmt: skip
    code, out, _ = run("search", "--xmp", "beach", "-f", "paths", "--db", db)
    assert (code, out) == (0, f"{photo}\n")
    code, out, _ = run("search", "xmp:*", "--count", "--db", db)
    assert out.strip() == "1"


def test_show_and_search_read_the_extended_xmp(library: Path, db: str) -> None:
    """The extended XMP is shown after the packet, line by line and inert as the packet is, and
    --xmp finds text that only it holds."""
    whole = (
        b'<x:xmpmeta>\n <rdf:Description photoshop:DocumentAncestors="did:1 did:2"/>\n'
        b" \x1b[2J\n</x:xmpmeta>"
    )
    guid, segments = extended_xmp(whole, cuts=(20,))
    photo = library / "ext.jpg"
    packet = f'<x:xmpmeta xmpNote:HasExtendedXMP="{guid}"/>'.encode()
    photo.write_bytes(with_xmp(library / "a.jpg", packet, extension=segments))
    assert run("scan", library, "--db", db)[0] == 0
    code, out, _ = run("show", photo, "--db", db)
    assert code == 0 and "\x1b" not in out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("[XMP] ExtendedXMP"))
    assert lines[at - 1].startswith("[XMP] XMLPacket") and lines[at].endswith(" : <x:xmpmeta>")
    indent = lines[at].index(" : ") + 3
    assert [line[indent:] for line in lines[at + 1 : at + 4]] == [
        ' <rdf:Description photoshop:DocumentAncestors="did:1 did:2"/>',
        " \\x1b[2J",
        "</x:xmpmeta>",
    ]
    code, out, _ = run("show", photo, "-f", "json", "--db", db)
    assert json.loads(out)["tags"][-1] == {
        "ifd": "XMP", "id": 700, "name": "ExtendedXMP", "value": whole.decode(),
    }  # fmt: skip
    code, out, _ = run("search", "--xmp", "did:2", "-f", "paths", "--db", db)
    assert (code, out) == (0, f"{photo}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--full", "-f", "csv", "--sha256-from", "{tmp}/no-such-set"],
        ["places", "-f", "paths0"],
        ["devices", "-f", "b2sum"],
        ["duplicates", "-f", "b2sum"],
        ["verify", "-f", "sha256sum"],
    ],
)
def test_an_output_a_command_cannot_give_is_refused_before_any_work(
    args: list[str], tmp_path: Path
) -> None:
    """Before reading a hash set, opening the catalog or reading files: here neither exists."""
    missing = tmp_path / "no-such-dir" / "c.db"
    code, out, err = run(*[a.format(tmp=tmp_path) for a in args], "--db", str(missing))
    assert (code, out) == (2, "") and "--format" in err, err
    assert not missing.parent.exists()


def test_show_gives_the_tag_listing_as_csv(scanned: str, library: Path) -> None:
    code, out, _ = run("show", library / "a.jpg", "--format", "json", "--db", scanned)
    tags = json.loads(out)["tags"]
    code, out, err = run("show", library / "a.jpg", "--format", "csv", "--db", scanned)
    assert (code, err) == (0, "")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["ifd", "id", "name", "value"]
    # exact values, but a cell that a spreadsheet would run (+02:00 too) begins with a quote
    assert rows[1:] == [[t["ifd"], str(t["id"]), t["name"], csv_cell(t["value"])] for t in tags]
    assert ["GPS", "1", "GPSLatitudeRef", "N"] in rows
    assert ["Exif", "36881", "OffsetTimeOriginal", "'+02:00"] in rows
    for fmt in ("paths", "paths0", "sha256sum", "b2sum"):
        code, out, err = run("show", library / "a.jpg", "--format", fmt, "--db", scanned)
        assert (code, out) == (2, "") and "show gives table, json, jsonl or csv" in err


def test_devices_counts_and_dates(scanned: str) -> None:
    code, out, _ = run("devices", "--format", "json", "--db", scanned)
    assert code == 0
    assert json.loads(out) == [
        {
            "make": "samsung",
            "model": "SM-G920F",
            "photos": 2,
            "first_captured_at": "2016-11-10T18:22:47",
            "last_captured_at": "2016-12-01T00:00:00",
        },
        {
            "make": "Canon",
            "model": "Canon EOS 5D",
            "photos": 1,
            "first_captured_at": "2016-11-30T23:59:59",
            "last_captured_at": "2016-11-30T23:59:59",
        },
    ]


def test_search_by_file_type_and_size(library: Path, db: str) -> None:
    png = make_photo(library / "scan.png", fmt="PNG", size=(640, 480))
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    code, out, err = run("search", "--type", "png", "-f", "paths", "--db", db)
    assert (code, out, err) == (0, f"{png}\n", "")
    code, out, _ = run("search", "type:jpeg", "--type", "PNG", "-f", "paths", "--db", db)
    assert out == f"{png}\n"  # the option beside the term wins
    size = png.stat().st_size
    code, out, _ = run("search", f"size:{size}", "width:640", "-f", "paths", "--db", db)
    assert out == f"{png}\n"
    code, out, _ = run("search", f"size:{size + 1}..", "--type", "png", "--count", "--db", db)
    assert out.strip() == "0"
    code, out, err = run("search", "size:12 parsecs", "--db", db)
    assert code == 1 and out == "" and "not a size or range of sizes" in err


def test_devices_with_serials_lists_each_camera_body(library: Path, db: str) -> None:
    for name, serial in (("x.jpg", "=BODY-1"), ("y.jpg", "=BODY-1"), ("z.jpg", "BODY-2")):
        make_photo(library / "bodies" / name, make="samsung", model="SM-G920F",
                   extra={0xC62F: serial})  # fmt: skip
    code, _, err = run("scan", library, "--db", db)
    assert code == 0, err
    code, out, err = run("devices", "--serials", "-f", "csv", "--db", db)
    assert (code, err) == (0, "")
    rows = [r[:4] for r in csv.reader(io.StringIO(out))]
    assert rows == [
        ["make", "model", "serial", "photos"],
        ["samsung", "SM-G920F", "", "2"],  # a.jpg and b.jpg: no serial written
        ["samsung", "SM-G920F", "'=BODY-1", "2"],  # a formula's cell begins with a quote
        ["Canon", "Canon EOS 5D", "", "1"],
        ["samsung", "SM-G920F", "BODY-2", "1"],
    ]
    code, out, _ = run("devices", "-f", "json", "--db", db)
    assert [(r["model"], r["photos"]) for r in json.loads(out)] == [
        ("SM-G920F", 5),
        ("Canon EOS 5D", 1),
    ]


COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


def test_the_command_list_is_the_apps() -> None:
    assert {"scan", "search", "show", "folders", "forget", "verify", "watch"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_ends_with_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Example: photocat " + command in " ".join(out.split())


def test_photocat_help_ends_with_an_example_and_version_prints_the_installed_one() -> None:
    from importlib.metadata import version

    import catalog

    code, out, _ = run("--help")
    assert code == 0 and "Example: photocat scan " in " ".join(out.split())
    # the console command itself (its exit goes through main's os._exit), and the version
    # pyproject gives the installed distribution, read from catalog.__version__
    done = subprocess.run(
        [sys.executable, "-m", "catalog.cli", "--version"], capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"photocat {version('photocat')}\n",
        "",
    )
    assert version("photocat") == catalog.__version__


def test_search_names_the_term_fields_in_its_help_and_in_the_error_for_another(
    scanned: str,
) -> None:
    code, out, _ = run("search", "--help", env={"COLUMNS": "400"})
    assert code == 0
    assert "Fields: " + ", ".join(TERM_FIELDS) + " (ranges: " in out
    code, _, err = run("search", "colour:red", "--db", scanned)
    assert code == 1
    assert "unknown field 'colour' in 'colour:red' (the fields: " + ", ".join(TERM_FIELDS) in err


def test_help_paragraphs_are_reflowed_not_cut_where_the_source_wraps() -> None:
    code, out, _ = run("scan", "--help", env={"COLUMNS": "400"})
    assert code == 0
    assert any(
        "missing, unreadable or empty while the catalog" in line for line in out.splitlines()
    )


def test_hostile_strings_never_reach_the_terminal(broken_db: Scanned) -> None:
    code, out, _ = run("search", "--db", broken_db.db)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "[bold red]x[/]" in " ".join(out.split()) or "bold red" in out
    code, out, _ = run("search", "--format", "csv", "--db", broken_db.db)
    for row in csv.DictReader(io.StringIO(out)):
        for key, value in row.items():
            if key not in ("latitude", "longitude", "altitude"):  # numbers may be negative
                assert not value.startswith(("=", "+", "-", "@")), value
    hostile = BROKEN / "make_ansi_markup_formula.jpg"
    code, out, _ = run("show", hostile, "--db", broken_db.db)
    assert code == 0 and "\x1b" not in out and "\\x1b[31m" in out
    code, out, _ = run("show", hostile, "--format", "csv", "--db", broken_db.db)
    cells = {row["name"]: row["value"] for row in csv.DictReader(io.StringIO(out))}
    assert cells["Make"].startswith("'=") and "\x1b[31m" in cells["Make"]  # exact, but no formula


def test_search_by_warnings(broken_db: Scanned) -> None:
    db = broken_db.db
    code, out, err = run("search", "--warning", "is not 1-8", "-f", "paths", "--db", db)
    assert (code, out, err) == (0, f"{BROKEN / 'orientation_9.jpg'}\n", "")
    counts = {
        args: int(run("search", *args, "--count", "--db", db)[1])
        for args in [(), ("--has-warnings",), ("--no-warnings",), ("warned:yes", "--no-warnings")]
    }
    assert 6 <= counts[("--has-warnings",)] < counts[()]
    assert counts[("--has-warnings",)] + counts[("--no-warnings",)] == counts[()]
    assert counts[("warned:yes", "--no-warnings")] == counts[("--no-warnings",)]  # option wins
    code, out, err = run("search", "warning:LOOPS BACK", "-f", "json", "--full", "--db", db)
    (record,) = json.loads(out)  # --full gives the warnings themselves
    assert record["path"] == str(BROKEN / "exif_ifd_loop.jpg")
    assert any("loops back" in w for w in record["warnings"]), record["warnings"]


def test_readme_demo(db: str) -> None:
    """The README's quick start: the shipped demo scans and answers the used-by questions."""
    demo = Path(__file__).parent / "data" / "demo"
    code, out, _ = run("scan", demo, "--db", db)
    assert code == 0
    assert out.strip() == "new 6, updated 0, unchanged 0, removed 0, failed 1, skipped 0"
    assert names(run("search", "--model", "SM-G920F", "-f", "json", "--db", db)[1]) == {
        "paris.jpg",
        "lyon.jpg",
    }
    got = run("search", "--from", "2016-11-01", "--to", "2016-11-30", "-f", "json", "--db", db)[1]
    assert names(got) == {"paris.jpg", "lyon.jpg"}
    assert names(run("search", "--errors", "-f", "json", "--db", db)[1]) == {"broken.jpg"}
    near = run("search", "--near", "48.8584,2.2945", "--within", "2km", "-f", "json", "--db", db)
    assert names(near[1]) == {"paris.jpg"}
    code, _, err = run("verify", "--db", db)
    assert code == 0 and "verified 6 file(s): ok 6," in err


def test_watch_of_a_missing_folder_fails_like_scan(tmp_path: Path, db: str) -> None:
    code, _, err = run("watch", tmp_path / "nowhere\x1b[31m", "--db", db)
    assert code == 1
    assert "does not exist" in err and "\x1b" not in err
    # The daemon's log handler goes with it: a later log line must not reach the closed stderr.
    import logging

    for name in ("photocat", "watchdog"):
        assert not any(
            isinstance(h, logging.StreamHandler) for h in logging.getLogger(name).handlers
        ), name
        assert logging.getLogger(name).propagate


def photocat(
    *args: object, env: dict[str, str] | None = None, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """The console command in a process of its own (main(), as the installed script runs it)."""
    cmd = [sys.executable, "-m", "catalog.cli", *map(str, args)]
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("timeout", 60)
    return subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("unbuffered", ["1", ""])
@pytest.mark.parametrize(
    "command",
    [
        ["search", "--format", "table"],
        ["search", "--format", "jsonl"],
        ["search", "--format", "paths0"],
        ["search", "--count"],
        ["devices"],
        ["duplicates"],
        ["verify", "--all"],
        ["show", "{library}/a.jpg"],
        ["scan", "{library}"],  # its summary line
    ],
)
def test_output_that_cannot_be_written_is_one_clear_error(
    scanned: str, library: Path, command: list[str], unbuffered: str
) -> None:
    """A full disk under the output of any command: one line saying so and exit 1, not a
    traceback, and not an ignored exception at exit either, buffered or not."""
    args = [a.format(library=library) for a in command]
    env = {**os.environ, "PYTHONUNBUFFERED": unbuffered}
    with open("/dev/full", "w") as full:
        done = photocat(*args, "--db", scanned, stdout=full, env=env)
    assert done.returncode == 1
    assert done.stderr == "photocat: cannot write the output: No space left on device\n"


def test_query_commands_open_the_catalog_mapped_and_scan_does_not(
    library: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """See catalog.store.MMAP_BYTES: a writer must never map the file."""
    import catalog.store

    opened: list[tuple[str, bool]] = []
    real = catalog.store.open_catalog

    def recording(*args: object, **kwargs: bool) -> object:
        opened.append((command, kwargs.get("queries", False)))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(catalog.store, "open_catalog", recording)
    for command in ("scan", "search", "devices", "places", "duplicates", "verify"):
        args = ["scan", library] if command == "scan" else [command]
        code, _, err = run(*args, "--db", db)
        assert code == 0, err
    assert opened == [
        ("scan", False), ("search", True), ("devices", True), ("places", True),
        ("duplicates", True), ("verify", False),  # reads files for long: never mapped
    ]  # fmt: skip


def test_the_console_command_ends_with_its_status_and_all_of_its_output(
    scanned: str, tmp_path: Path
) -> None:
    """main() ends the process with os._exit once done: the exit status comes through, and all
    of the output (stdout to a pipe, PYTHONUNBUFFERED unset: buffered)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = photocat("search", "--db", scanned, "--format", "jsonl", env=env)
    assert done.returncode == 0, done.stderr
    _, expected, _ = run("search", "--db", scanned, "--format", "jsonl")
    assert done.stdout == expected and len(done.stdout.splitlines()) == 4
    missing = photocat("search", "--db", tmp_path / "none.db", env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("photocat: no catalog at ")
    assert photocat("search", "--no-such-option", env=env).returncode == 2


def _console(
    args: list[object], report: str, env: dict[str, str] | None = None, setup: str = ""
) -> list[str]:
    """`photocat ARGS` by main(), in a process of its own, after the Python source `setup`;
    the last line of stdout: the words printed by `report` (Python source of one expression)
    as the process ends."""
    code = (
        "import gc, os, sys\n"
        f"{setup}"
        "from catalog import cli\n"
        "real_exit = os._exit\n"
        "def report(status):\n"
        "    sys.stdout.flush()\n"
        f"    print('\\n', *({report}))\n"
        "    sys.stdout.flush()\n"
        "    real_exit(status)\n"
        "os._exit = report\n"
        "sys.argv = ['photocat', *sys.argv[1:]]\n"
        "cli.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()


def _console_scan(tmp_path: Path, report: str, env: dict[str, str] | None = None) -> list[str]:
    """`photocat scan -q tmp_path/photos --db tmp_path/c.db` by main() (see _console)."""
    return _console(["scan", "-q", tmp_path / "photos", "--db", tmp_path / "c.db"], report, env)


_GC_AT_OPEN = (  # setup for _console: the collector's state as the catalog is opened
    "import catalog.store\n"
    "real_open, at_open = catalog.store.open_catalog, []\n"
    "def probe(*args, **kwargs):\n"
    "    at_open.append(gc.isenabled())\n"
    "    return real_open(*args, **kwargs)\n"
    "catalog.store.open_catalog = probe\n"
)


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--format", "jsonl"],
        ["search", "--count"],
        ["devices"],
        ["places"],
        ["duplicates"],
        ["show", "{library}/a.jpg"],
    ],
)
def test_a_console_query_starts_up_without_collection_then_collects(
    scanned: str, library: Path, command: list[str]
) -> None:
    """See main(): no garbage collection while the command starts up (the catalog is opened
    with the collector off); once it is open, what exists is frozen and the collector runs."""
    args = [a.format(library=library) for a in command]
    report = "at_open, gc.get_freeze_count(), gc.isenabled()"
    at_open, frozen, enabled = _console([*args, "--db", scanned], report, setup=_GC_AT_OPEN)
    assert at_open == "[False]"
    assert int(frozen) > 10_000 and enabled == "True"


def test_the_watch_daemon_collects_garbage(library: Path, tmp_path: Path) -> None:
    """The daemon runs for months: its collector is on once it watches (start-up frozen)."""
    setup = (
        "import catalog.watch\n"
        "seen = []\n"
        "catalog.watch.Watcher.run = lambda self: seen.extend("
        "[gc.isenabled(), gc.get_freeze_count() > 10_000])\n"
    )
    args = ["watch", "-q", library, "--db", tmp_path / "w.db"]
    assert _console(args, "seen", setup=setup) == ["True", "True"]


def test_the_console_command_freezes_what_its_start_up_made(tmp_path: Path) -> None:
    """The console command's process ends after its scan, so what start-up made (SQLAlchemy,
    the schema) is frozen out of garbage collection once the catalog is open, and the collector
    runs again after; in a new catalog and in one that exists. The CliRunner's scan, in a
    process that goes on, freezes nothing."""
    import gc

    for i in range(80):  # enough for worker processes
        make_photo(tmp_path / "photos" / f"{i:02d}.jpg", model=f"M{i % 3}")
    for _new_then_existing in range(2):
        frozen, enabled = _console_scan(tmp_path, "gc.get_freeze_count(), gc.isenabled()")[-2:]
        assert int(frozen) > 10_000 and enabled == "True"
    _, out, _ = run("search", "--db", tmp_path / "c.db", "--count")
    assert out.strip() == "80"
    before = gc.get_freeze_count()
    assert run("scan", "-q", tmp_path / "photos", "--db", tmp_path / "r.db")[0] == 0
    assert gc.get_freeze_count() == before and gc.isenabled()


def test_the_commands_annotations_are_objects_not_strings() -> None:
    """typer evaluates string annotations at every start (see catalog.cli's docstring)."""
    import catalog.cli

    for command in app.registered_commands:
        for name, hint in inspect.get_annotations(command.callback).items():  # type: ignore[arg-type]
            assert not isinstance(hint, str), (command.callback, name, hint)
    assert not isinstance(inspect.get_annotations(catalog.cli.open_db)["db"], str)


@pytest.mark.parametrize("user_value", [None, "2"])
def test_the_console_command_keeps_numpy_to_one_thread(
    tmp_path: Path, user_value: str | None
) -> None:
    """A scan of photos with positions loads numpy; its OpenBLAS starts no thread pool (~50 ms
    of CPU a process) unless the user asked for one."""
    make_photo(tmp_path / "photos" / "placed.jpg", gps=(48.8584, 2.2945))
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if user_value is not None:
        env["OPENBLAS_NUM_THREADS"] = user_value
    report = (
        "'numpy' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'],"
        " len(os.listdir('/proc/self/task'))"
    )
    loaded, value, threads = _console_scan(tmp_path, report, env)[-3:]
    assert (loaded, value) == ("True", user_value or "1")
    if user_value is None and (os.cpu_count() or 1) > 1:
        assert threads == "1"  # OpenBLAS would start one thread per core
