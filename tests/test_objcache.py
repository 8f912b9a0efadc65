"""catalog.objcache (a disk cache of plain data) and the places geocoder loaded through it."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import pytest

from catalog import objcache, places


class Node:
    def __init__(self, name: str, child: Node | None = None) -> None:
        self.name = name
        self.values = np.arange(5, dtype=np.uint16)
        self.child = child


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("PHOTOCAT_CACHE_DIR", str(folder))
    return folder


def test_plain_data_comes_back_equal_and_build_runs_once(cache: Path) -> None:
    built: list[int] = []

    def build() -> dict[str, object]:
        built.append(1)
        return {
            "floats": np.linspace(0, 1, 7),
            "blob": b"\x00\xffabc",
            "items": [1, 2.5, "x", None, True, (3, "y")],
            "tree": Node("top", Node("leaf")),
        }

    first = objcache.cached("t", ("k", 1), build, [Node])
    again = objcache.cached("t", ("k", 1), build, [Node])
    assert built == [1]
    assert np.array_equal(again["floats"], first["floats"])
    assert again["blob"] == b"\x00\xffabc"
    assert again["items"] == [1, 2.5, "x", None, True, (3, "y")]
    tree = again["tree"]
    assert isinstance(tree, Node) and tree.name == "top" and tree.child.name == "leaf"
    assert tree.child.values.dtype == np.uint16 and tree.child.child is None
    objcache.cached("t", ("k", 2), build, [Node])  # another key: built again, beside it
    assert built == [1, 1] and len(list(cache.glob("t-*"))) == 2


def test_what_cannot_be_stored_as_plain_data_is_just_built(cache: Path) -> None:
    value = objcache.cached("u", ("k",), lambda: {"f": len}, [])
    assert value == {"f": len} and not list(cache.glob("u-*"))


def test_a_damaged_cache_file_is_rebuilt(cache: Path) -> None:
    objcache.cached("d", ("k",), lambda: [1, 2], [])
    (path,) = cache.glob("d-*")
    path.write_bytes(b"not a cache file")
    assert objcache.cached("d", ("k",), lambda: [3], []) == [3]
    assert objcache.cached("d", ("k",), lambda: [4], []) == [3]  # and stored again
    path.unlink()
    objcache.cached("d", ("k", 2), lambda: [np.arange(1000.0)], [])
    (path,) = cache.glob("d-*")
    path.write_bytes(path.read_bytes()[:-8])  # its array cut short
    assert objcache.cached("d", ("k", 2), lambda: [5], []) == [5]


@pytest.mark.parametrize(
    "spec",
    [
        {"dtype": "|O", "shape": [1], "at": 0},  # objects: would mean unpickling
        {"dtype": "<f8", "shape": [10**12], "at": 0},  # far beyond the file
        {"dtype": "<f8", "shape": [1], "at": -64},  # before the arrays
        {"dtype": "no such type", "shape": [1], "at": 0},
    ],
)
def test_a_forged_cache_file_yields_no_data_and_is_rebuilt(
    cache: Path, spec: dict[str, object]
) -> None:
    import json

    objcache.cached("f", ("k",), lambda: [0], [])
    (path,) = cache.glob("f-*")
    head = json.dumps({"tree": {"list": [{"array": "a0"}]}, "arrays": {"a0": spec}}).encode()
    path.write_bytes(objcache.MAGIC + len(head).to_bytes(8, "little") + head + bytes(256))
    assert objcache.cached("f", ("k",), lambda: [1], []) == [1]


def test_arrays_come_back_as_they_were_and_old_files_go(cache: Path) -> None:
    cache.mkdir()
    stale = [cache / "a-0123456789abcdef.npz", cache / "a-0123456789abcdef.arrays.x1y2.tmp"]
    for path in stale:  # photocat 0.1's; a writer killed before it renamed its file
        path.write_bytes(b"old")
    two_hours_ago = time.time() - 7200
    os.utime(stale[1], (two_hours_ago, two_hours_ago))
    arrays = [
        np.arange(24, dtype=">i4").reshape(2, 3, 4), np.array(2.5), np.array(["ab", "c"]),
        np.arange(10, dtype=np.float32)[::2], np.array([True, False]), np.zeros((0, 3)),
    ]  # fmt: skip
    objcache.cached("a", ("k",), lambda: arrays, [])
    assert not any(path.exists() for path in stale) and len(list(cache.iterdir())) == 1
    again = objcache.cached("a", ("k",), lambda: [], [])
    assert len(again) == len(arrays)
    for back, array in zip(again, arrays, strict=True):
        assert back.dtype == array.dtype and back.shape == array.shape
        assert np.array_equal(back, array)
    kept = objcache.cached("s", ("k",), lambda: np.zeros(2, dtype=[("x", "i4")]), [])
    assert kept.dtype.names == ("x",) and not list(cache.glob("s-*"))  # structured: not stored


def test_other_keys_files_stay_while_in_use_and_go_once_unused(cache: Path) -> None:
    """Two installs sharing the cache directory (two keys) each keep their file: neither
    rebuilds because the other ran. A file unused for KEEP_UNUSED_S goes (a file in use is
    touched when read, at most daily), a killed writer's temporary file after an hour, 0.1's
    .npz at once; files not named as the cache names them are never touched (the directory
    may be shared)."""
    built: list[str] = []

    def build(key: str) -> list[str]:
        built.append(key)
        return [key]

    for key in ("a", "b", "a", "b"):
        assert objcache.cached("t", (key,), lambda key=key: build(key), []) == [key]
    assert built == ["a", "b"]  # each built once
    a, b = (next(cache.glob(f"t-{objcache_digest(k)}.arrays")) for k in ("a", "b"))
    now = time.time()
    unused, stale_tmp, young_tmp = now - objcache.KEEP_UNUSED_S - 60, now - 7200, now - 60
    os.utime(a, (unused, unused))
    os.utime(b, (now - objcache.TOUCH_AFTER_S - 60,) * 2)  # in use, last touched a day ago
    leftover = cache / f"{b.name}.x1y2.tmp"
    writing = cache / f"{b.name}.z9w8.tmp"
    foreign = [cache / "t-notes.txt", cache / "tmpab12cd.tmp", cache / "t-0123.arrays"]
    for path, when in [(leftover, stale_tmp), (writing, young_tmp)] + [
        (f, unused) for f in foreign
    ]:
        path.write_bytes(b"x")
        os.utime(path, (when, when))
    npz = cache / "t-0123456789abcdef.npz"
    npz.write_bytes(b"x")
    assert objcache.cached("t", ("b",), lambda: build("b again"), []) == ["b"]  # read, touched
    assert built == ["a", "b"]
    assert now - 5 < b.stat().st_mtime and not a.exists() and not leftover.exists()
    assert not npz.exists() and writing.exists() and all(f.exists() for f in foreign)


def test_only_the_other_keys_files_used_last_are_kept(cache: Path) -> None:
    """Every reinstall is a new key: however many there were, the files of the KEEP_OTHERS
    other keys used last stay, the rest go (the places' file is 8.7 MB)."""
    now = time.time()
    for age, key in enumerate(["k1", "k2", "k3", "k4", "k5"]):  # k1 used last
        objcache.cached("t", (key,), lambda: [0], [])
        path = cache / f"t-{objcache_digest(key)}.arrays"
        os.utime(path, (now - 60 * (age + 1),) * 2)
    objcache.cached("t", ("new",), lambda: [1], [])
    left = {p.name for p in cache.glob("t-*")}
    kept = ["new", "k1", "k2", "k3"][: objcache.KEEP_OTHERS + 1]
    assert left == {f"t-{objcache_digest(k)}.arrays" for k in kept}


def objcache_digest(key: str) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps([key]).encode()).hexdigest()[:16]


def test_cached_geocoder_finds_the_same_places(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20261125)
    positions = [(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(2000)]
    positions += [(48.8584, 2.2945), (40.4168, -3.7038), (0.0, 0.0)]
    fresh = places.Geocoder(places.data_path()).nearest(positions)
    monkeypatch.setattr(places, "_INSTANCE", None)
    built = places.geocoder()  # builds and stores
    monkeypatch.setattr(places, "_INSTANCE", None)
    loaded = places.geocoder()  # reads the stored arrays
    assert loaded is not built
    assert built.nearest(positions) == loaded.nearest(positions) == fresh
