"""The catalogued folders: `photocat folders` lists them, `photocat forget` takes them out, on
real trees scanned into a real catalog, reopened afterwards to check every table: a whole root,
a folder inside a root (next to a sibling whose name it prefixes), a folder above several roots,
a folder deleted from the disk (the case scan and watch leave alone), another machine's folder,
and a folder with nothing catalogued."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import without_dac
from conftest import BACKEND
from photos import make_photo
from sqlalchemy import select
from typer.testing import CliRunner

from catalog import tables as t
from catalog.cli import app
from catalog.ingest import RootError, forget, scan
from catalog.paths import from_db
from catalog.record import FileEntry, PhotoRecord
from catalog.store import CatalogError, open_catalog

runner = CliRunner()


def make_tree(top: Path, names: list[str]) -> Path:
    for i, name in enumerate(names):
        make_photo(top / name, gps=(45.0 + i / 100, 4.0), model=f"Model {name.split('/')[0]}")
    return top


def state(db: str) -> dict[str, object]:
    """Every table's content that a forget may touch, read back from the database."""
    with open_catalog(db) as catalog, catalog.engine.connect() as conn:
        roots = {r.id: from_db(r.path) for r in conn.execute(select(t.roots.c.id, t.roots.c.path))}
        photos = {
            r.id: roots[r.root_id].rstrip("/") + "/" + from_db(r.rel_path)
            for r in conn.execute(select(t.photos.c.id, t.photos.c.root_id, t.photos.c.rel_path))
        }
        gps = set(conn.execute(select(t.gps_positions.c.photo_id)).scalars())
        tags = set(conn.execute(select(t.raw_tags.c.photo_id)).scalars())
    return {"roots": sorted(roots.values()), "photos": photos, "gps": gps, "tags": tags}


def paths(s: dict[str, object]) -> set[str]:
    return set(s["photos"].values())  # type: ignore[attr-defined]


def consistent(s: dict[str, object]) -> bool:
    """No GPS position or tag listing left of a photo that is gone."""
    return s["gps"] <= s["tags"] == set(s["photos"])  # type: ignore[operator]


def test_forgetting_a_root_takes_its_photos_and_nothing_else(tmp_path: Path, db: str) -> None:
    a = make_tree(tmp_path / "a", ["x/1.jpg", "x/2.jpg", "3.jpg"])
    b = make_tree(tmp_path / "b", ["4.jpg", "y/5.jpg"])
    with open_catalog(db) as catalog:
        scan(catalog, [a, b], workers=1)
    before = state(db)
    assert len(before["photos"]) == 5 and consistent(before)  # type: ignore[arg-type]

    with open_catalog(db) as catalog:
        assert forget(catalog, a) == (3, 1)
    after = state(db)
    assert after["roots"] == [str(b)]
    assert paths(after) == {str(b / "4.jpg"), str(b / "y" / "5.jpg")}
    assert {k: v for k, v in before["photos"].items() if k in after["photos"]} == after["photos"]  # type: ignore[attr-defined]
    assert consistent(after)


def test_forgetting_a_folder_inside_a_root_keeps_the_root_and_its_other_files(
    tmp_path: Path, db: str
) -> None:
    # "sub" prefixes "sub2" and "sub_x" as text: only the folder itself goes
    top = make_tree(tmp_path / "top", ["sub/1.jpg", "sub/deep/2.jpg", "sub2/3.jpg", "sub_x/4.jpg"])
    make_photo(top / "5.jpg")
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
        assert forget(catalog, top / "sub") == (2, 0)
    after = state(db)
    assert after["roots"] == [str(top)]
    assert paths(after) == {str(top / p) for p in ("sub2/3.jpg", "sub_x/4.jpg", "5.jpg")}
    assert consistent(after)


def test_forgetting_a_folder_above_roots_takes_every_root_inside(tmp_path: Path, db: str) -> None:
    x = make_tree(tmp_path / "drive" / "x", ["1.jpg"])
    y = make_tree(tmp_path / "drive" / "y", ["2.jpg", "3.jpg"])
    other = make_tree(tmp_path / "drive2", ["4.jpg"])  # "drive" prefixes "drive2" as text
    with open_catalog(db) as catalog:
        scan(catalog, [x], workers=1)
        scan(catalog, [y], workers=1)
        scan(catalog, [other], workers=1)
        assert forget(catalog, tmp_path / "drive") == (3, 2)
    after = state(db)
    assert after["roots"] == [str(other)]
    assert paths(after) == {str(other / "4.jpg")}


def test_a_folder_gone_from_the_disk_is_forgotten(tmp_path: Path, db: str) -> None:
    """The drive that is gone for good: a rescan keeps its photos (an unmounted drive is not
    'every photo deleted'); forget takes them out, by a path that no longer exists."""
    gone = make_tree(tmp_path / "old-drive", ["1.jpg", "a/2.jpg"])
    kept = make_tree(tmp_path / "kept", ["3.jpg"])
    with open_catalog(db) as catalog:
        scan(catalog, [gone, kept], workers=1)
    shutil.rmtree(gone)
    with open_catalog(db) as catalog:
        with pytest.raises(RootError, match="does not exist"):
            scan(catalog, [gone], workers=1)
        assert len(state(db)["photos"]) == 3  # type: ignore[arg-type]
        assert forget(catalog, gone) == (2, 1)
        with pytest.raises(RootError, match="nothing catalogued"):
            forget(catalog, gone / "a")
    assert paths(state(db)) == {str(kept / "3.jpg")}


def test_nothing_catalogued_there_is_an_error_and_changes_nothing(tmp_path: Path, db: str) -> None:
    top = make_tree(tmp_path / "top", ["1.jpg", "sub/2.jpg"])
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
        before = state(db)
        for folder in (tmp_path / "elsewhere", top / "sub" / "nothing", tmp_path / "to"):
            with pytest.raises(RootError, match="nothing catalogued on this machine under"):
                forget(catalog, folder)
    assert state(db) == before


def test_only_this_machines_folders_are_forgotten(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = make_tree(tmp_path / "top", ["1.jpg"])
    monkeypatch.setenv("PHOTOCAT_HOST", "camera-room")
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
    before = state(db)
    monkeypatch.setenv("PHOTOCAT_HOST", "laptop")
    with open_catalog(db) as catalog, pytest.raises(RootError):
        forget(catalog, top)
    assert state(db) == before
    monkeypatch.setenv("PHOTOCAT_HOST", "camera-room")
    with open_catalog(db) as catalog:
        assert forget(catalog, top) == (1, 1)


def test_another_machines_folders_are_forgotten_by_name(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine gone for good: its folders, catalogued in a shared catalog, are forgotten from
    another one by its name (--host), each by its absolute path there."""
    old_nas, here = (
        make_tree(tmp_path / "nas", ["1.jpg", "a/2.jpg"]),
        make_tree(tmp_path / "here", ["3.jpg"]),
    )
    monkeypatch.setenv("PHOTOCAT_HOST", "old-nas")
    with open_catalog(db) as catalog:
        scan(catalog, [old_nas], workers=1)
    monkeypatch.setenv("PHOTOCAT_HOST", "laptop")
    with open_catalog(db) as catalog:
        scan(catalog, [here], workers=1)
        with pytest.raises(RootError, match="give another machine's folder by its absolute path"):
            forget(catalog, "nas", host="old-nas")
        with pytest.raises(RootError, match=f"nothing catalogued on 'laptop' under {old_nas}"):
            forget(catalog, old_nas, host="laptop")  # same path, wrong machine
    result = runner.invoke(app, ["forget", "--host", "old-nas", f"{old_nas}/", "--db", db])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"photocat: forgot 2 photo(s) under {old_nas} on old-nas (1 catalogued folder(s))\n"
    )
    assert [(f["host"], f["path"]) for f in folders_json(db)] == [("laptop", str(here))]


def test_a_forgotten_folder_scanned_again_is_catalogued_again(tmp_path: Path, db: str) -> None:
    top = make_tree(tmp_path / "top", ["1.jpg", "sub/2.jpg"])
    with open_catalog(db) as catalog:
        scan(catalog, [top], workers=1)
        forget(catalog, top / "sub")
        summary = scan(catalog, [top], workers=1)
    assert (summary.new, summary.unchanged) == (1, 1)
    assert paths(state(db)) == {str(top / "1.jpg"), str(top / "sub" / "2.jpg")}


def folders_json(db: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["folders", "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_folders_lists_each_root_with_its_count_and_times(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_tree(tmp_path / "a", ["1.jpg", "2.jpg"])
    b = make_tree(tmp_path / "b", ["3.jpg"])
    empty = tmp_path / "empty"
    empty.mkdir()
    started = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    monkeypatch.setenv("PHOTOCAT_HOST", "nas")
    assert runner.invoke(app, ["scan", str(b), "--db", db, "-q"]).exit_code == 0
    monkeypatch.setenv("PHOTOCAT_HOST", "laptop")
    assert runner.invoke(app, ["scan", str(a), str(empty), "--db", db, "-q"]).exit_code == 0
    listed = folders_json(db)
    assert [(f["host"], f["path"], f["state"], f["photos"]) for f in listed] == [
        ("laptop", str(a), "ok", 2),
        ("laptop", str(empty), "empty", 0),
        ("nas", str(b), "elsewhere", 1),  # another machine's: not looked at here
    ]
    assert list(listed[0]) == ["host", "path", "state", "photos", "added_at", "last_scan_at"]
    for f in listed:  # UTC, this run's
        for key in ("added_at", "last_scan_at"):
            when = datetime.fromisoformat(str(f[key]).removesuffix("Z"))
            assert str(f[key]).endswith("Z")
            assert started - timedelta(seconds=1) <= when <= started + timedelta(minutes=2)


def test_forget_command_reports_and_fails_on_a_folder_with_nothing(tmp_path: Path, db: str) -> None:
    a = make_tree(tmp_path / "a", ["1.jpg", "2.jpg"])
    b = make_tree(tmp_path / "b", ["3.jpg"])
    assert runner.invoke(app, ["scan", str(a), str(b), "--db", db, "-q"]).exit_code == 0
    result = runner.invoke(app, ["forget", str(tmp_path / "nowhere"), str(a), "--db", db])
    assert result.exit_code == 1
    assert f"nothing catalogued on this machine under {tmp_path / 'nowhere'}" in result.stderr
    assert f"forgot 2 photo(s) under {a} (1 catalogued folder(s))" in result.stderr
    assert result.stdout == ""
    assert [f["path"] for f in folders_json(db)] == [str(b)]
    result = runner.invoke(app, ["search", "--db", db, "--format", "paths"])
    assert result.stdout.splitlines() == [str(b / "3.jpg")]
    result = runner.invoke(app, ["forget", str(b), "--db", db])
    assert result.exit_code == 0
    assert result.stderr == f"photocat: forgot 1 photo(s) under {b} (1 catalogued folder(s))\n"


def test_a_hostile_folder_name_is_inert(tmp_path: Path, db: str) -> None:
    hostile = make_tree(tmp_path / "\x1b]0;owned\x07[red]x[/red]", ["1.jpg"])
    assert runner.invoke(app, ["scan", str(hostile), "--db", db, "-q"]).exit_code == 0
    table = runner.invoke(app, ["folders", "--db", db])
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "\x07" not in table.stdout
    assert "[red]x[/red]" in table.stdout  # shown as written, not taken as markup
    assert folders_json(db)[0]["path"] == str(hostile)  # exact in JSON
    result = runner.invoke(app, ["forget", str(hostile), "--db", db])
    assert result.exit_code == 0 and "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert folders_json(db) == []


def test_folders_says_which_folders_are_gone(tmp_path: Path, db: str) -> None:
    """The state that leads to forget: a folder deleted or on a drive not mounted is missing,
    an empty mount point empty; the photos stay catalogued either way."""
    gone, unmounted, kept = (make_tree(tmp_path / n, ["1.jpg"]) for n in ("gone", "mnt", "kept"))
    scanned = runner.invoke(app, ["scan", str(gone), str(unmounted), str(kept), "--db", db, "-q"])
    assert scanned.exit_code == 0, scanned.output
    shutil.rmtree(gone)
    shutil.rmtree(unmounted)
    unmounted.mkdir()  # the mount point left behind
    states = {f["path"]: (f["state"], f["photos"]) for f in folders_json(db)}
    assert states == {
        str(gone): ("missing", 1),
        str(unmounted): ("empty", 1),
        str(kept): ("ok", 1),
    }
    csv = runner.invoke(app, ["folders", "--db", db, "--format", "csv"]).stdout.splitlines()
    assert csv[0] == "host,path,state,photos,added_at,last_scan_at"


def test_folders_says_which_folders_cannot_be_read(tmp_path: Path, db: str) -> None:
    """A folder its user may not read, seen by a process without root's capabilities (the
    tests run as root, which reads anything)."""
    if not without_dac.can_deny(tmp_path):
        pytest.skip("cannot drop CAP_DAC_OVERRIDE here (capset refused); nothing denies reads")
    locked, kept = (make_tree(tmp_path / n, ["1.jpg"]) for n in ("locked", "kept"))
    with open_catalog(db) as catalog:
        scan(catalog, [locked, kept], workers=1)
    locked.chmod(0)
    try:
        done = without_dac.photocat("folders", "--db", db, "--format", "json")
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr
    states = {f["path"]: (f["state"], f["photos"]) for f in json.loads(done.stdout)}
    assert states == {str(locked): ("unreadable", 1), str(kept): ("ok", 1)}


def test_a_write_to_a_folder_forgotten_meanwhile_fails_with_the_reason(
    tmp_path: Path, db: str
) -> None:
    """A scan or watch that claimed a folder before another process forgot it: its next batch
    is refused with one clear error, and writes nothing (no photo under a root that is gone)."""
    top = make_tree(tmp_path / "top", ["1.jpg"])
    with open_catalog(db) as writer, open_catalog(db) as other:
        root_id, _, _ = writer.claim_root(str(top))
        assert forget(other, top) == (0, 1)
        entry = FileEntry(root_id, "1.jpg", 1, 1, PhotoRecord(format="JPEG"))
        with pytest.raises(CatalogError, match=f"root {top} is no longer in the catalog"):
            writer.upsert([entry])
    assert state(db)["photos"] == {} and state(db)["roots"] == []


def scan_all(db: str, *options: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["scan", "--db", db, "-q", *options])
    return result.exit_code, result.stdout, result.stderr


def test_scan_with_no_folder_rescans_every_folder_catalogued_here(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = make_tree(tmp_path / "a", ["1.jpg", "2.jpg"])
    b = make_tree(tmp_path / "b", ["3.jpg", "sub/4.jpg"])
    theirs = make_tree(tmp_path / "theirs", ["5.jpg"])
    monkeypatch.setenv("PHOTOCAT_HOST", "other")
    assert runner.invoke(app, ["scan", str(theirs), "--db", db, "-q"]).exit_code == 0
    monkeypatch.setenv("PHOTOCAT_HOST", "here")
    assert runner.invoke(app, ["scan", str(a), str(b), "--db", db, "-q"]).exit_code == 0
    before = {f["path"]: f for f in folders_json(db)}
    make_photo(a / "new.jpg")
    (b / "sub" / "4.jpg").unlink()
    make_photo(theirs / "not-here.jpg")  # another machine's folder: not this scan's
    assert scan_all(db) == (
        0,
        "new 1, updated 0, unchanged 3, removed 1, failed 0, skipped 0\n",
        "",
    )
    assert paths(state(db)) == {
        str(p) for p in (a / "1.jpg", a / "2.jpg", a / "new.jpg", b / "3.jpg", theirs / "5.jpg")
    }
    after = {f["path"]: f for f in folders_json(db)}
    assert after[str(theirs)] == before[str(theirs)]


def test_scan_with_no_folder_skips_the_folders_it_cannot_read_and_keeps_their_photos(
    tmp_path: Path, db: str
) -> None:
    ok, gone, mount = (make_tree(tmp_path / n, ["1.jpg", "2.jpg"]) for n in ("ok", "gone", "mnt"))
    assert (
        runner.invoke(app, ["scan", str(ok), str(gone), str(mount), "--db", db, "-q"]).exit_code
        == 0
    )
    shutil.rmtree(gone)
    shutil.rmtree(mount)
    mount.mkdir()  # an empty mount point: the drive is not mounted
    make_photo(ok / "3.jpg")
    code, out, err = scan_all(db)
    assert (code, out) == (0, "new 1, updated 0, unchanged 2, removed 0, failed 0, skipped 2\n")
    assert err.splitlines() == [
        f"photocat: skipped {gone}: missing; its photos stay catalogued",
        f"photocat: skipped {mount}: empty; its photos stay catalogued",
    ]
    assert len(paths(state(db))) == 7
    # --allow-empty: the empty folder is scanned, and its photos go (the user said so)
    code, out, err = scan_all(db, "--allow-empty")
    assert (code, out) == (0, "new 0, updated 0, unchanged 3, removed 2, failed 0, skipped 1\n")
    assert err == f"photocat: skipped {gone}: missing; its photos stay catalogued\n"
    assert len(paths(state(db))) == 5


def test_scan_with_no_folder_and_nothing_to_scan_says_so(
    tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if BACKEND == "sqlite":
        code, out, err = scan_all(str(tmp_path / "none.db"))
        assert code == 1 and "no catalog at" in err and out == ""
        assert not (tmp_path / "none.db").exists()
    theirs = make_tree(tmp_path / "theirs", ["1.jpg"])
    monkeypatch.setenv("PHOTOCAT_HOST", "other")
    assert runner.invoke(app, ["scan", str(theirs), "--db", db, "-q"]).exit_code == 0
    monkeypatch.setenv("PHOTOCAT_HOST", "here")
    code, out, err = scan_all(db)
    assert code == 1 and out == ""
    assert err == "photocat: nothing is catalogued on this machine: give the folders to scan\n"
