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
from photos import extended_xmp, make_photo, with_xmp

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


@pytest.mark.parametrize(
    ("numerator", "denominator"),
    [
        (1, 3), (2, 4), (-2, 4), (3, -9), (-4, -6), (72, 1), (1, 250), (0, 1), (0, -5),
        (0, 0), (5, 0), (-5, 0), (2**32 - 1, 7), (2**32 - 1, 2**32 - 1), (-(2**31), 2**31 - 1),
        (2**31 - 1, -(2**31)),
    ],
)  # fmt: skip
def test_a_rational_made_fast_is_pillows(numerator: int, denominator: int) -> None:
    """The plain path's rationals (RATIONAL and SRATIONAL values, their Fraction made without
    Fraction's own checks) behave as Pillow's own in every way a caller can see."""
    from fractions import Fraction

    from PIL.TiffImagePlugin import IFDRational

    assert plain_jpeg._RATIONAL is plain_jpeg._new_rational  # the fast one is in use
    fast, pillow = (
        plain_jpeg._new_rational(numerator, denominator),
        IFDRational(numerator, denominator),
    )
    assert type(fast) is IFDRational
    assert (fast.numerator, fast.denominator) == (pillow.numerator, pillow.denominator)
    assert type(fast._val) is type(pillow._val) and repr(fast) == repr(pillow)
    if denominator:
        expected = Fraction(numerator, denominator)
        assert fast._val == expected and (fast._val.numerator, fast._val.denominator) == (
            expected.numerator, expected.denominator,
        )  # fmt: skip
        assert fast == pillow and hash(fast) == hash(pillow) == hash(expected)
        assert float(fast) == float(pillow) and fast < pillow + 1 and -fast == -pillow
        assert fast.limit_rational(100) == pillow.limit_rational(100)
    else:
        assert fast != fast and pillow != pillow  # NaN, as Pillow's


def test_the_enum_tags_are_those_pillow_looks_up() -> None:
    """An ASCII value of a tag with an enum (Compression as text...) goes to Pillow, which turns
    the name into its number: the plain path's set of those tags is what Pillow's tables say,
    group by group, for every tag they hold."""
    from PIL import TiffTags

    groups = [(None, TiffTags.TAGS_V2), *TiffTags.TAGS_V2_GROUPS.items()]
    assert {group for group, _ in groups} == set(plain_jpeg._ENUMS)
    for group, table in groups:
        for tag in set(table) | set(TiffTags.TAGS) | {0x8769, 0xFFFF}:
            assert (tag in plain_jpeg._ENUMS[group]) == plain_jpeg._spec(group, tag)[1], tag
    assert plain_jpeg._ENUMS[None]  # Compression, PhotometricInterpretation...


def test_an_enum_tag_written_as_text_is_pillows_to_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_photo(tmp_path / "c.jpg", extra={0x0103: 6})  # Compression, a SHORT
    short = b"\x01\x03\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"  # big-endian IFD0 entry
    data = path.read_bytes()
    assert data.count(short) == 1
    path.write_bytes(data.replace(short, b"\x01\x03\x00\x02\x00\x00\x00\x04JPG\x00"))  # as text
    assert not takes_fast_path(path)
    fast, slow = both_paths(path, monkeypatch)
    assert fast == slow


_WHOLE = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description'
    b' photoshop:DocumentAncestors="' + b"xmp.did:0123456789abcdef " * 40 + b'"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def _packet(guid: str, element: bool = False) -> bytes:
    note = (
        f"<xmpNote:HasExtendedXMP>{guid}</xmpNote:HasExtendedXMP>"
        if element
        else f'<rdf:Description xmpNote:HasExtendedXMP="{guid}"/>'
    )
    return f"<x:xmpmeta>{note}</x:xmpmeta>".encode()


def _extended_cases() -> dict[str, tuple[bytes, list[bytes], str | None, str | None]]:
    """name -> (packet, extension segments, the ExtendedXMP entry listed or None, a warning's
    words or None)."""
    text = _WHOLE.decode()
    guid, parts = extended_xmp(_WHOLE, cuts=(300, 700))
    _, lone = extended_xmp(_WHOLE)
    other, others = extended_xmp(b"<x:xmpmeta>another</x:xmpmeta>")
    bad = _WHOLE.replace(b"0123", b"\xff\xfe\x00\x00")
    bad_guid, bad_parts = extended_xmp(bad)
    return {
        "in three parts": (_packet(guid), parts, text, None),
        "its parts out of order": (_packet(guid), parts[::-1], text, None),
        "a part twice": (_packet(guid), [*parts, parts[1]], text, None),
        "the GUID named in an element": (_packet(guid, element=True), lone, text, None),
        "a part missing": (_packet(guid), [parts[0], parts[2]], None, "do not make its"),
        "parts overlapping": (
            _packet(guid), extended_xmp(_WHOLE, cuts=(300,))[1] + parts[1:], None,
            "do not make its",
        ),
        "another GUID's segments": (_packet(guid), others, None, "does not name: not read"),
        "segments the packet does not name": (
            b"<x:xmpmeta/>", parts, None, "of a GUID the XMP packet does not name",
        ),
        "a GUID named, no segment": (_packet(guid), [], None, "not in the file"),
        "an MD5 that is not the GUID": (
            _packet(other), extended_xmp(_WHOLE, guid=other)[1], text, "its MD5 is",
        ),
        "a length of 4 GB": (
            _packet(guid), extended_xmp(_WHOLE, guid=guid, full=2**32 - 1)[1], None,
            "do not make its 4294967295 bytes",
        ),
        "a segment too short": (_packet(guid), [parts[0][:60], *parts], text, "too short"),
        "bytes that are not UTF-8": (
            _packet(bad_guid), bad_parts, bad.decode("utf-8", "replace").replace("\0", ""),
            "is not utf-8",
        ),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_extended_cases()))
def test_extended_xmp_is_read_whole_or_said(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JPEG's extended XMP (segments of its own, named by the GUID the packet gives) is
    listed after the packet when its parts make it whole, by both paths alike; anything else
    is a warning, and the rest of the record is read as ever."""
    packet, segments, listed, warned = _extended_cases()[case]
    path = tmp_path / "x.jpg"
    path.write_bytes(with_xmp(make_photo(tmp_path / "src.jpg"), packet, extension=segments))
    assert takes_fast_path(path)
    fast, slow = both_paths(path, monkeypatch)
    assert fast == slow and fast.error is None and fast.model == "Canon EOS 5D"
    entries = [(t.name, t.value) for t in fast.tags if t.ifd == "XMP"]
    assert entries[0] == ("XMLPacket", packet.decode())
    assert entries[1:] == ([] if listed is None else [("ExtendedXMP", listed)])
    said = [w for w in fast.warnings if "extended XMP" in w]
    assert (said != []) == (warned is not None), said
    assert warned is None or any(warned in w for w in said), said


@settings(
    derandomize=True, database=None, max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(
    tails=st.lists(st.binary(max_size=80), max_size=4),
    named=st.booleans(),
)
def test_any_extended_xmp_segments_read_alike_and_safely(
    tails: list[bytes], named: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the extension segments hold after their name (a GUID or not, any lengths and
    offsets): no error, both paths alike, and any ExtendedXMP entry is text a database holds."""
    source = tmp_path / "src.jpg"
    if not source.exists():
        make_photo(source)
    guid = "0" * 32
    segments = [plain_jpeg.XMP_EXTENSION + guid.encode()[: len(t) % 33] + t for t in tails]
    path = tmp_path / "x.jpg"
    path.write_bytes(with_xmp(source, _packet(guid) if named else b"<x/>", extension=segments))
    fast, slow = both_paths(path, monkeypatch)
    assert fast == slow and fast.error is None
    for tag in fast.tags:
        if tag.name == "ExtendedXMP":
            assert "\0" not in tag.value
            tag.value.encode("utf-8")
