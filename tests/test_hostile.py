"""Hostile input through the command line: the broken corpus, untrusted strings in every output,
file names with newlines / escapes / bytes that are not UTF-8, symbolic links and loops, FIFOs,
unreadable files and folders (also when the tests run as root).

Every catalog comes from the `db` fixture, so this runs on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import without_dac
from corpus import BROKEN, broken_expected, require_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from photos import make_photo
from typer.testing import CliRunner, Result

from catalog.cli import app
from catalog.extract import extract, open_regular
from catalog.ingest import Job, _digest, ingest_changes, read_file, resolve_place
from catalog.paths import from_db, to_db
from catalog.render import dumps, inert, valid
from catalog.store import open_catalog

runner = CliRunner()

# What must never reach a terminal from data: C0 controls but tab/newline (which separate lines
# and cells of our own output), DEL and C1 (CSI \x9b), bidi overrides, lone surrogates.
DANGEROUS = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    r"\ud800-\udfff]"
)


def cli(*args: str | Path) -> Result:
    return runner.invoke(app, [os.fspath(a) for a in args])


def assert_inert(text: str) -> None:
    found = DANGEROUS.search(text)
    assert found is None, f"{found.group()!r} reached the output: {text[:300]!r}"


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM interrupts even a blocking open() of a FIFO."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def summary(result: Result) -> str:
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.stdout.strip().splitlines()[-1]


# --- the broken corpus, end to end ------------------------------------------------------------

ERROR_ROWS = {"zero_bytes.jpg": "empty file", "text_renamed.jpg": "not a recognised image"}


def test_broken_corpus_scan_show_search_every_format(db: str) -> None:
    """Every hostile file of broken/ gets exactly one row (README's rule), every output of it is
    inert and valid, and a rescan reads nothing again."""
    require_corpus()
    expected = broken_expected()
    n = len(expected)
    with deadline(120):
        result = cli("scan", BROKEN, "--db", db, "--workers", "1")
    assert summary(result) == f"new {n}, updated 0, unchanged 0, removed 0, failed 2, skipped 0"
    assert_inert(result.stderr)
    assert summary(cli("scan", BROKEN, "--db", db)) == (
        f"new 0, updated 0, unchanged {n}, removed 0, failed 0, skipped 0"
    )

    rows = json.loads(cli("search", "-f", "json", "--db", db).stdout)
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == set(expected), "one row per file, no more, no less"
    for name, start in ERROR_ROWS.items():
        assert (by_name[name]["error"] or "").startswith(start), by_name[name]
    hostile = expected["make_ansi_markup_formula.jpg"]["expected_fields"]
    assert by_name["make_ansi_markup_formula.jpg"]["make"] == hostile["make"]  # stored verbatim
    assert by_name["make_ansi_markup_formula.jpg"]["software"] == hostile["software"]
    model_hex = expected["non_utf8_model.jpg"]["expected_fields"]["model_bytes_hex"]
    assert by_name["non_utf8_model.jpg"]["model"].encode("latin-1") == bytes.fromhex(model_hex)

    raw = cli("search", "-f", "json", "--db", db).stdout_bytes
    raw.decode("utf-8")  # strict: valid UTF-8 whatever the tags held
    assert not re.search(rb"\x1b|\x07|\xc2\x9b", raw), "JSON carries escapes only as \\u escapes"
    lines = cli("search", "-f", "jsonl", "--db", db).stdout.splitlines()
    assert [json.loads(line) for line in lines] == rows

    table = cli("search", "--db", db).stdout
    assert_inert(table)
    flat = " ".join(table.split())
    assert "[bold red]x[/]" in flat and "\\x1b[31m" in flat, "markup and escapes shown literally"

    cells = list(csv.DictReader(io.StringIO(cli("search", "-f", "csv", "--db", db).stdout)))
    assert len(cells) == n
    for row in cells:
        for key, value in row.items():
            if key not in ("latitude", "longitude", "altitude"):  # numbers may be negative
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (key, value)

    paths = cli("search", "-f", "paths", "--db", db).stdout.splitlines()
    assert sorted(paths) == sorted(str(BROKEN / name) for name in expected)
    exact = cli("search", "-f", "paths0", "--db", db).stdout_bytes.split(b"\0")
    assert sorted(exact[:-1]) == sorted(os.fsencode(BROKEN / name) for name in expected)
    listed = cli("search", "-f", "sha256sum", "--db", db).stdout_bytes  # every file, even unread
    assert sorted(listed.splitlines()) == sorted(
        hashlib.sha256((BROKEN / name).read_bytes()).hexdigest().encode()
        + b"  "
        + os.fsencode(BROKEN / name)
        for name in expected
    )

    for name in expected:
        shown = cli("show", BROKEN / name, "--db", db)
        assert shown.exit_code == 0, (name, shown.stderr)
        assert_inert(shown.stdout)
        detail = json.loads(cli("show", BROKEN / name, "-f", "json", "--db", db).stdout)
        assert detail["path"] == str(BROKEN / name)
        listing = list(csv.DictReader(io.StringIO(cli("show", BROKEN / name, "-f", "csv",
                                                      "--db", db).stdout)))  # fmt: skip
        assert len(listing) == len(detail["tags"])
        for row, tag in zip(listing, detail["tags"], strict=True):
            assert row["value"] in (tag["value"], "'" + tag["value"]), (name, row)
            assert not row["value"].startswith(("=", "+", "@", "\t", "\r")), (name, row)

    devices = cli("devices", "--db", db).stdout
    assert_inert(devices)
    for row in csv.DictReader(io.StringIO(cli("devices", "-f", "csv", "--db", db).stdout)):
        assert not row["make"].startswith(("=", "+", "-", "@")), row["make"]


def test_untrusted_text_in_messages_is_shown_inert(tmp_path: Path, db: str) -> None:
    """File names reach error messages: escapes shown, markup literal, one line each."""
    make_photo(tmp_path / "lib" / "a.jpg")
    assert cli("scan", tmp_path / "lib", "--db", db).exit_code == 0
    evil = tmp_path / "\x1b]0;pwned\x07[bold red]x[/]\nforged: line.jpg"
    result = cli("show", evil, "--db", db)
    assert result.exit_code == 1
    assert_inert(result.stderr)
    assert "\\x1b]0;pwned\\x07[bold red]x[/]\\x0aforged" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = cli("scan", tmp_path / "missing \x1b[2J", "--db", db)
    assert result.exit_code == 1 and "\\x1b[2J" in result.stderr
    assert_inert(result.stderr)
    result = cli("devices", "-f", "paths", "--db", db)
    assert result.exit_code == 2 and "lists photo paths" in result.stderr


def test_json_and_csv_are_valid_for_any_string() -> None:
    record = {
        "path": os.fsdecode(b"/p/caf\xe9\xff.jpg"),
        "make": "\x1b[31m\x9b2J\u202eevil\u2028x\x00",
        "model": "=1+1",
    }
    text = dumps(record)
    text.encode("utf-8")  # strict
    assert not DANGEROUS.search(text.replace("\\u", ""))
    back = json.loads(text)
    assert back["make"] == record["make"]  # exact: only the encoding of JSON escapes changed
    assert back["path"] == "/p/caf\\xe9\\xff.jpg"  # the bytes shown as inert shows them
    out = io.StringIO()
    from catalog.render import write_csv

    record["software"] = "one\rforged,row\r\ntwo"  # a bare CR must not end a CSV row
    write_csv([record], list(record), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert len(rows) == 1
    assert rows[0]["model"] == "'=1+1" and rows[0]["path"] == "/p/caf\\xe9\\xff.jpg"
    assert rows[0]["software"] == record["software"]


# --- hostile file and folder names --------------------------------------------------------------

FILE_NAMES = [
    b"two\nlines.jpg",
    b"\x1b[31mred\x1b]0;title\x07.jpg",
    b"[bold red]x[reset] [link=https:example.invalid]y.jpg",  # (no '/': names cannot hold one)
    b"=HYPERLINK(1).jpg",
    b"caf\xe9.jpg",  # Latin-1: not UTF-8
    b"\xff\xfe\x80.jpg",
    "evil\u202egpj.exe.jpg".encode(),
    b"car\rriage.jpg",
    b"back\\slash \\n.jpg",  # a backslash, and what an escaped newline looks like
    "x\ufdd0dce9.jpg".encode(),  # looks like the catalog's own escape: must still round-trip
    b"plain.jpg",
]
FOLDER = b"d\xff\n[red]f"  # not UTF-8, a newline, markup
ROOT = b"lib\xe9 \x1b[1m"


@pytest.fixture
def hostile_library(tmp_path: Path) -> tuple[Path, list[Path]]:
    top = tmp_path / os.fsdecode(ROOT)
    files = [top / os.fsdecode(name) for name in FILE_NAMES]
    files += [top / os.fsdecode(FOLDER) / "in.jpg", top / os.fsdecode(FOLDER) / "caf\udce9.jpg"]
    for i, path in enumerate(files):
        make_photo(path, model=f"M{i}")
    return top, files


def test_hostile_names_round_trip_through_the_catalog(
    hostile_library: tuple[Path, list[Path]], db: str
) -> None:
    """Catalogued, searchable, show-able, rescanned as unchanged, printed safely."""
    top, files = hostile_library
    n = len(files)
    result = cli("scan", top, "--db", db, "--workers", "1")
    assert summary(result) == f"new {n}, updated 0, unchanged 0, removed 0, failed 0, skipped 0"
    assert_inert(result.stderr)

    real = {str(p) for p in files}
    raw = cli("search", "-f", "json", "--db", db).stdout_bytes
    rows = json.loads(raw.decode("utf-8"))  # strict UTF-8, valid JSON
    assert sorted(r["path"] for r in rows) == sorted(valid(p) for p in real)

    lines = cli("search", "-f", "paths", "--db", db).stdout.split("\n")
    assert lines[-1] == "" and len(lines) - 1 == n, "one line per photo: no name forges a line"
    assert sorted(lines[:-1]) == sorted(inert(p) for p in real)
    assert_inert("\n".join(lines))

    exact = cli("search", "-f", "paths0", "--db", db).stdout_bytes
    assert exact.endswith(b"\0")
    assert sorted(exact.split(b"\0")[:-1]) == sorted(os.fsencode(p) for p in real)

    table = cli("search", "--db", db).stdout
    assert_inert(table)
    cells = list(csv.DictReader(io.StringIO(cli("search", "-f", "csv", "--db", db).stdout)))
    assert sorted(r["path"] for r in cells) == sorted(valid(p) for p in real)

    for path in files:
        shown = cli("show", path, "--db", db)
        assert shown.exit_code == 0, (path, shown.stderr)
        assert_inert(shown.stdout)
        assert inert(path) in shown.stdout
        detail = json.loads(cli("show", path, "-f", "json", "--db", db).stdout)
        assert detail["path"] == valid(str(path))

    under = json.loads(
        cli("search", "--path", top / os.fsdecode(FOLDER), "-f", "json", "--db", db).stdout
    )
    assert {Path(r["path"]).name for r in under} == {"in.jpg", valid("caf\udce9.jpg")}

    assert summary(cli("scan", top, "--db", db)) == (
        f"new 0, updated 0, unchanged {n}, removed 0, failed 0, skipped 0"
    )
    # watch feeds the same rows through ingest_changes: it must agree they are unchanged
    with open_catalog(db) as catalog:
        place = resolve_place(catalog, top)
        rels = [os.path.relpath(p, top).replace(os.sep, "/") for p in files]
        report = ingest_changes(catalog, place, rels)
    assert sorted(report.unchanged) == sorted(rels)
    assert not (report.new or report.updated or report.removed or report.failed)


def test_a_checksum_list_of_hostile_names_is_checked_by_sha256sum_itself(
    hostile_library: tuple[Path, list[Path]], db: str, tmp_path: Path
) -> None:
    """`search -f sha256sum` names every file so that GNU `sha256sum -c` finds it, whatever its
    name holds (newlines, carriage returns, backslashes, escapes, bytes that are not UTF-8),
    and the list is a hash set `--sha256-from` reads back."""
    top, files = hostile_library
    assert summary(cli("scan", top, "--db", db, "--workers", "1")).startswith(f"new {len(files)},")
    listed = cli("search", "-f", "sha256sum", "--db", db)
    assert listed.exit_code == 0 and listed.stderr == ""
    manifest = tmp_path / "case.sha256"
    manifest.write_bytes(listed.stdout_bytes)
    assert listed.stdout_bytes.count(b"\n") == len(files), "one line a file: no name forged one"

    def check() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["sha256sum", "--check", "--strict", manifest], capture_output=True, cwd=tmp_path
        )

    done = check()
    assert done.returncode == 0 and done.stderr == b"", done
    assert done.stdout.count(b": OK\n") == len(files)
    found = cli("search", "--sha256-from", manifest, "-f", "paths0", "--db", db).stdout_bytes
    assert sorted(found.split(b"\0")[:-1]) == sorted(os.fsencode(p) for p in files)

    files[0].write_bytes(files[0].read_bytes() + b"tampered")  # the list still says the old bytes
    done = check()
    assert done.returncode == 1 and done.stdout.count(b": OK\n") == len(files) - 1


def test_hostile_folder_scanned_first_is_adopted_by_its_parent(
    hostile_library: tuple[Path, list[Path]], db: str
) -> None:
    """A root whose name is not UTF-8, folded into its parent root: rows move, none doubles."""
    top, files = hostile_library
    inner = top / os.fsdecode(FOLDER)
    assert summary(cli("scan", inner, "--db", db)).startswith("new 2,")
    assert summary(cli("scan", top, "--db", db)).startswith(f"new {len(files) - 2}, updated 0,")
    exact = cli("search", "-f", "paths0", "--db", db).stdout_bytes.split(b"\0")[:-1]
    assert sorted(exact) == sorted(os.fsencode(p) for p in files)
    assert cli("show", inner / "caf\udce9.jpg", "--db", db).exit_code == 0


_TEXT = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(["\ufdd0", "\udce9", "\udcff", "\ud800", "\udfff", "/", "d", "c", "9"]),
    )
)


# derandomized, no example database: the same cases on every run, nothing written to the repo
@settings(derandomize=True, database=None, max_examples=300)
@given(_TEXT, _TEXT)
def test_stored_path_form_is_reversible_valid_and_keeps_prefixes(a: str, b: str) -> None:
    stored = to_db(a)
    stored.encode("utf-8")  # storable in SQLite and PostgreSQL text
    assert "\0" not in stored or "\0" in a
    assert from_db(stored) == a
    assert to_db(a + b) == stored + to_db(b)  # folder prefixes and LIKE patterns still match
    if a != b:
        assert to_db(a) != to_db(b)


@settings(derandomize=True, database=None, max_examples=300)
@given(st.binary(max_size=40))
def test_any_file_name_bytes_survive_the_stored_form(name: bytes) -> None:
    path = os.fsdecode(name)
    assert os.fsencode(from_db(to_db(path))) == name


# --- symbolic links, loops, FIFOs -----------------------------------------------------------


def test_symlinks_and_loops_are_reported_never_followed(tmp_path: Path, db: str) -> None:
    top = tmp_path / "lib"
    make_photo(top / "real.jpg")
    make_photo(top / "sub" / "inner.jpg")
    (top / "loop").symlink_to(top)  # back up the tree: a walk that followed it never ends
    (top / "sub" / "up").symlink_to("..")
    (top / "self.jpg").symlink_to("self.jpg")  # ELOOP when resolved
    (top / "elsewhere").symlink_to("/")
    (top / "copy.jpg").symlink_to(top / "real.jpg")
    (top / "\x1b[31m[bold]l\n.jpg").symlink_to("/dev/zero")
    (top / "notes.txt").symlink_to("/etc/hostname")  # not a photo, not a folder: not reported
    (top / ".hidden").symlink_to(top)
    started = time.monotonic()
    with deadline(60):
        result = cli("scan", top, "--db", db, "--workers", "1")
    assert time.monotonic() - started < 30
    assert summary(result) == "new 2, updated 0, unchanged 0, removed 0, failed 0, skipped 6"
    assert_inert(result.stderr)
    reported = result.stderr.strip().splitlines()
    assert len(reported) == 6, reported  # one line each, even for a name holding a newline
    assert all("symbolic link not followed" in line for line in reported)
    assert any("Too many levels of symbolic links" in line for line in reported)
    assert any("\\x1b[31m[bold]l\\x0a.jpg" in line for line in reported)
    rows = json.loads(cli("search", "-f", "json", "--db", db).stdout)
    assert sorted(Path(r["path"]).name for r in rows) == ["inner.jpg", "real.jpg"]


def test_fifo_named_like_a_photo_never_blocks(tmp_path: Path, db: str) -> None:
    top = tmp_path / "lib"
    make_photo(top / "real.jpg")
    fifo = top / "pipe.jpg"
    os.mkfifo(fifo)
    with deadline(30):
        result = cli("scan", top, "--db", db, "--workers", "1")
        assert "pipe.jpg: not a regular file" in result.stderr
        assert summary(result).startswith("new 1,")
        # a file swapped for a FIFO after the walk saw it: read, not waited on forever
        entry = read_file(Job(str(fifo), 1, "pipe.jpg"))
        assert entry.record.error is not None and "not a regular file" in entry.record.error
        assert "not a regular file" in (extract(fifo).error or "")


def test_files_are_opened_without_blocking_then_read_blocking(tmp_path: Path) -> None:
    """A FIFO never stalls the open (O_NONBLOCK); on a regular file the flag is cleared, so no
    read, above all the hash stage's raw whole-file reads, can come back without data."""
    photo = make_photo(tmp_path / "a.jpg")
    for buffered in (True, False):
        with open_regular(photo, buffered=buffered) as fh:
            assert os.get_blocking(fh.fileno())
            assert isinstance(fh, io.BufferedReader if buffered else io.FileIO)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    st = photo.stat()
    with deadline(30):
        with pytest.raises(OSError, match="not a regular file"):
            open_regular(fifo, buffered=False)
        assert _digest(1, str(fifo), 0, 0, "sha256") == (1, 0, 0, None)
        digest = _digest(2, str(photo), st.st_size, st.st_mtime_ns, "sha256")[3]
        assert digest == hashlib.sha256(photo.read_bytes()).hexdigest()


def test_files_open_where_the_system_has_no_nonblocking_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows has no O_NONBLOCK, and Python 3.11 there no os.set_blocking: files still open."""
    photo = make_photo(tmp_path / "a.jpg")
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.delattr(os, "set_blocking")
    for buffered in (True, False):
        with open_regular(photo, buffered=buffered) as fh:
            assert fh.read() == photo.read_bytes()


def test_a_file_swapped_for_a_symlink_is_not_read_through_it(tmp_path: Path) -> None:
    target = make_photo(tmp_path / "elsewhere.jpg")
    link = tmp_path / "swapped.jpg"
    link.symlink_to(target)
    entry = read_file(Job(str(link), 1, "swapped.jpg"))
    assert entry.sha256 is None
    assert entry.record.error is not None and "symbolic link" in entry.record.error


# --- unreadable files and folders -----------------------------------------------------------


# Root ignores permission bits through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH. Dropping those two
# capabilities (capset, no exec afterwards) makes a root process obey them like anyone else.
def _scan_without_dac(top: Path, db: str) -> tuple[int, str, str]:
    done = without_dac.photocat("scan", str(top), "--db", db, "--workers", "1")
    return done.returncode, done.stdout, done.stderr


def _scan_in_process(top: Path, db: str) -> tuple[int, str, str]:
    result = cli("scan", top, "--db", db, "--workers", "1")
    return result.exit_code, result.stdout, result.stderr


def _unreadable_scenario(tmp_path: Path, db: str, scan: object) -> None:
    """Scan, then lock a folder and a file and add an unreadable one: rescans report them, keep
    every row, and record the unreadable new file as an error row; a locked root is an error."""
    run_scan = scan  # (top, db) -> (exit code, stdout, stderr)
    assert callable(run_scan)
    top = tmp_path / "lib"
    make_photo(top / "ok.jpg")
    make_photo(top / "secret.jpg")
    make_photo(top / "locked" / "inside.jpg")
    code, out, err = run_scan(top, db)
    assert code == 0, err
    assert out.strip() == "new 3, updated 0, unchanged 0, removed 0, failed 0, skipped 0"
    new_secret = make_photo(top / "new_secret.jpg")
    locked = [top / "locked", top / "secret.jpg", new_secret]
    try:
        for path in locked:
            path.chmod(0)
        code, out, err = run_scan(top, db)
        assert code == 0, err
        assert out.strip() == "new 1, updated 0, unchanged 2, removed 0, failed 1, skipped 1"
        assert f"skipped {top / 'locked'}: Permission denied" in err
        (top).chmod(0)
        code, out, err = run_scan(top, db)
        assert code == 1 and "cannot be read" in err, (code, out, err)
    finally:
        for path in [top, *locked]:
            path.chmod(0o755)
    rows = {
        Path(r["path"]).name: r for r in json.loads(cli("search", "-f", "json", "--db", db).stdout)
    }
    assert set(rows) == {"ok.jpg", "secret.jpg", "inside.jpg", "new_secret.jpg"}, "none lost"
    assert "Permission denied" in (rows["new_secret.jpg"]["error"] or "")
    assert rows["secret.jpg"]["error"] is None  # unchanged, so never re-read


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="running as root: chmod 000 does not deny root (CAP_DAC_OVERRIDE); "
    "test_unreadable_files_and_folders_without_dac_capabilities covers this as root",
)
def test_unreadable_files_and_folders(tmp_path: Path, db: str) -> None:
    _unreadable_scenario(tmp_path, db, _scan_in_process)


def test_unreadable_files_and_folders_without_dac_capabilities(tmp_path: Path, db: str) -> None:
    """The same scenario in a scan process without the capabilities that let root read
    anything: works for root and non-root alike (a non-root process has none to drop)."""
    if not without_dac.can_deny(tmp_path):
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here (capset refused); nothing denies reads")
    _unreadable_scenario(tmp_path, db, _scan_without_dac)
