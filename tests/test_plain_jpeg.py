"""catalog.plain_jpeg, extraction's fast path: it must give exactly the record the Pillow path
gives, for every file it accepts, and hand everything else to Pillow."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus import BROKEN, IMAGES, require_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from photos import make_photo, with_xmp

from catalog import extract as extract_module
from catalog import plain_jpeg
from catalog.extract import extract
from catalog.record import PhotoRecord

DEMO = Path(__file__).parent / "data" / "demo"


def both_paths(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[PhotoRecord, PhotoRecord]:
    """A file's record by the fast path (from the file, and from its bytes) and by Pillow."""
    monkeypatch.setattr(extract_module, "FAST_JPEG", True)
    fast = extract(path)
    # the same from the file's bytes, as a small file read once for its digest too is read
    assert extract(path, path.read_bytes()) == fast, f"{path.name}: from its bytes"
    # and from the file already open, wherever its position (as read_file passes a large one)
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        assert extract(path, fh) == fast, f"{path.name}: from the open file"
        assert not fh.closed  # the caller's to close
    monkeypatch.setattr(extract_module, "FAST_JPEG", False)
    slow = extract(path)
    return fast, slow


def takes_fast_path(path: Path) -> bool:
    with open(path, "rb") as fp:
        return plain_jpeg.read(fp) is not None


def _files(*tops: Path) -> Iterator[Path]:
    for top in tops:
        yield from sorted(p for p in top.rglob("*") if p.is_file())


def test_corpus_records_are_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    require_corpus()
    fast_count = 0
    for path in _files(IMAGES, BROKEN, DEMO):
        fast, slow = both_paths(path, monkeypatch)
        assert fast == slow, path.name
        fast_count += takes_fast_path(path)
    assert fast_count >= 100  # the corpus's ordinary JPEGs do take the fast path


def test_hostile_corpus_files_go_to_pillow() -> None:
    require_corpus()
    for name in (
        "exif_ifd_loop.jpg",
        "exif_ifd0_offset_outside.jpg",
        "exif_subifd_offset_outside.jpg",
    ):
        assert not takes_fast_path(BROKEN / name), name
    assert not takes_fast_path(IMAGES / "pillow__Tests__images__frozenpond.mpo")  # MPF: Pillow


def test_synthetic_photos_are_the_same_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variants = [
        {},
        {"make": None, "model": None, "taken": None},
        {"gps": (-33.86, 151.2), "altitude": -12.5, "gps_time": ("2016:11:10", (17, 22, 47))},
        {"offset": "+02:00", "extra": {0x0131: "Software 1.0", 0x013B: "Ann"}},
        {"extra": {0x0112: 9}},  # orientation out of range: a warning from _fill_fields
        {"size": (1, 1)},
    ]
    for i, kwargs in enumerate(variants):
        path = make_photo(tmp_path / f"{i}.jpg", **kwargs)  # type: ignore[arg-type]
        assert takes_fast_path(path), kwargs
        fast, slow = both_paths(path, monkeypatch)
        assert fast == slow, kwargs


def test_damaged_headers_give_the_same_record_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random damage in the markers and the EXIF block: whatever the fast path accepts must read
    as Pillow reads it; whatever it refuses, Pillow reads."""
    source = make_photo(
        tmp_path / "src.jpg", gps=(48.85, 2.29), altitude=35.0, offset="+01:00", size=(32, 24)
    ).read_bytes()
    rng = random.Random(20261125)
    path = tmp_path / "damaged.jpg"
    for case in range(300):
        data = bytearray(source)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(2, min(len(data), 600))
            if rng.random() < 0.7:
                data[pos] = rng.randrange(256)
            else:
                del data[pos : pos + rng.randint(1, 12)]
        if rng.random() < 0.15:
            data = data[: rng.randrange(2, len(data))]
        path.write_bytes(bytes(data))
        fast, slow = both_paths(path, monkeypatch)
        assert fast == slow, f"case {case}: {bytes(data[:600]).hex()}"


def test_xmp_segments_read_the_same_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One XMP segment is the fast path's to read, as Pillow reads it; a second one (Pillow
    keeps the last) is Pillow's."""
    source = make_photo(tmp_path / "src.jpg")
    cases = [[b"<x:a>1</x:a>"], [b"<x:a>1</x:a>", b"<x:a>2</x:a>"], [b"\xff\xfe<x/>"], [b""]]
    for i, packets in enumerate(cases):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(with_xmp(source, *packets))
        assert takes_fast_path(path) == (len(packets) == 1), packets
        fast, slow = both_paths(path, monkeypatch)
        assert fast == slow, packets


_TEXT = st.text(st.characters(codec=None), max_size=100)  # lone surrogates and NULs too
_PACKET_BYTES = (
    st.binary(max_size=300)
    | _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))
    | _TEXT.map(lambda t: ("<" + t).encode("utf-16-le", "surrogatepass"))  # read as UTF-16
)


# derandomized, no example database: the same cases on every run, nothing written to the repo
@settings(
    derandomize=True, database=None, max_examples=200,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(packet=_PACKET_BYTES)
def test_any_bytes_as_an_xmp_packet_read_alike_and_safely(
    packet: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever bytes an XMP segment holds: no error, both paths give the same record, and the
    listing's XMP entry is text any database and JSON hold (no NUL, no lone surrogate)."""
    source = tmp_path / "src.jpg"
    if not source.exists():
        make_photo(source)
    path = tmp_path / "x.jpg"
    path.write_bytes(with_xmp(source, packet))
    fast, slow = both_paths(path, monkeypatch)
    assert fast == slow and fast.error is None
    for tag in fast.tags:
        if tag.ifd == "XMP":
            assert "\0" not in tag.value and tag.value.strip()
            tag.value.encode("utf-8")  # strict: no lone surrogate
