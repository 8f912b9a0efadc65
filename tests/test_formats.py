"""Which containers photocat reads, shown on files: the corpus covers JPEG, MPO, PNG, WebP, HEIC,
TIFF and DNG (tests/test_extract.py, field by field); TIFF-based camera raws the corpus lacks
(CR2, NEF, ARW, PEF) are built here as their cameras lay them out: a small RGB preview in IFD0
(what Pillow opens), the EXIF IFD, and the raw data in a SubIFD or a CR2 raw IFD.

What is read from a TIFF-based raw is IFD0 and its EXIF/GPS IFDs: make, model, times, exposure,
GPS, and the size of its full-resolution image as ExifTool gives it (a SubIFD's when IFD0 is a
preview; ExifImageWidth/Height for CR2). CR2 and DNG are named by content; NEF, ARW, PEF and
other plain-TIFF raws by their extension, as ExifTool does, when the content is a TIFF. Raws in
other containers (RAF, MRW, RW2, ORF, CR3, X3F) are error rows named by their signature.
"""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

import pytest
from corpus import IMAGES, NOT_READ, readable, require_corpus, truth
from photos import make_photo
from typer.testing import CliRunner

from catalog.cli import app
from catalog.extract import extract

ASCII, SHORT, LONG, RATIONAL = 2, 3, 4, 5


def _ascii(text: str) -> tuple[int, int, bytes]:
    raw = text.encode() + b"\0"
    return ASCII, len(raw), raw


def _shorts(*values: int) -> tuple[int, int, bytes]:
    return SHORT, len(values), struct.pack(f"<{len(values)}H", *values)


def _long(value: int) -> tuple[int, int, bytes]:
    return LONG, 1, struct.pack("<I", value)


def _rational(numerator: int, denominator: int) -> tuple[int, int, bytes]:
    return RATIONAL, 1, struct.pack("<II", numerator, denominator)


def _ifd(entries: dict[int, tuple[int, int, bytes]], at: int) -> bytes:
    """One little-endian IFD placed at offset `at`, its out-of-line values right after it."""
    head = struct.pack("<H", len(entries))
    tail = b""
    data_at = at + 2 + 12 * len(entries) + 4
    for tag in sorted(entries):
        typ, count, payload = entries[tag]
        if len(payload) <= 4:
            head += struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, typ, count, data_at + len(tail))
            tail += payload + b"\0" * (len(payload) % 2)
    return head + struct.pack("<I", 0) + tail


SENSOR = (6016, 4016)  # the raw image's size in its SubIFD (CR2: in ExifImageWidth/Height)


def tiff_raw(
    kind: str,
    make: str,
    model: str,
    taken: str,
    offset: str,
    sub_ifd_at: int | None = None,
    ifd0_type: int | None = 1,
) -> bytes:
    """A metadata-complete TIFF-based raw: IFD0 (8x8 RGB preview, NewSubfileType `ifd0_type`,
    None: no such tag) -> EXIF IFD, raw SubIFD (NewSubfileType 0, SENSOR). `sub_ifd_at` points
    IFD0's SubIFDs elsewhere."""
    header_size = 16 if kind == "CR2" else 8
    preview = bytes(range(192))  # 8x8 RGB, uncompressed
    raw = bytes(512)  # 16x16 16-bit CFA, never read

    def ifd0(exif_at: int, sub_at: int, preview_at: int) -> dict[int, tuple[int, int, bytes]]:
        entries = {
            0x0100: _shorts(8),
            0x0101: _shorts(8),
            0x0102: _shorts(8, 8, 8),
            0x0103: _shorts(1),
            0x0106: _shorts(2),
            0x010F: _ascii(make),
            0x0110: _ascii(model),
            0x0111: _long(preview_at),
            0x0115: _shorts(3),
            0x0116: _shorts(8),
            0x0117: _long(len(preview)),
            0x0132: _ascii(taken),
            0x8769: _long(exif_at),
        }
        if kind != "CR2":
            if ifd0_type is not None:
                entries[0x00FE] = _long(ifd0_type)  # 1: a reduced-resolution image
            entries[0x014A] = _long(sub_at if sub_ifd_at is None else sub_ifd_at)  # the raw
        return entries

    exif = {
        0x829A: _rational(1, 250),
        0x829D: _rational(28, 10),
        0x8827: _shorts(400),
        0x9003: _ascii(taken),
        0x9004: _ascii(taken),
        0x9011: _ascii(offset),
    }
    if kind == "CR2":
        exif[0xA002], exif[0xA003] = _long(SENSOR[0]), _long(SENSOR[1])
    size0 = len(_ifd(ifd0(0, 0, 0), header_size))
    exif_at = header_size + size0
    exif_bytes = _ifd(exif, exif_at)
    sub_at = exif_at + len(exif_bytes)
    sub = {
        0x00FE: _long(0),  # the full-resolution image
        0x0100: _long(SENSOR[0]),
        0x0101: _long(SENSOR[1]),
        0x0102: _shorts(16),
        0x0103: _shorts(1),
        0x0106: _shorts(32803),  # CFA
        0x0111: _long(0),
        0x0115: _shorts(1),
        0x0117: _long(len(raw)),
    }
    sub_size = len(_ifd(sub, sub_at))
    preview_at = sub_at + sub_size
    raw_at = preview_at + len(preview)
    sub[0x0111] = _long(raw_at)
    if kind == "CR2":  # "II*\0", IFD0 offset, "CR" v2.0, offset of the raw IFD
        header = b"II*\x00" + struct.pack("<I", 16) + b"CR\x02\x00" + struct.pack("<I", sub_at)
    else:
        header = b"II*\x00" + struct.pack("<I", 8)
    return (
        header
        + _ifd(ifd0(exif_at, sub_at, preview_at), header_size)
        + exif_bytes
        + _ifd(sub, sub_at)
        + preview
        + raw
    )


RAWS = [
    ("CR2", ".CR2", "Canon", "Canon EOS 5D Mark III", "CR2"),
    ("NEF", ".nef", "NIKON CORPORATION", "NIKON D750", "NEF"),
    ("ARW", ".ARW", "SONY", "ILCE-7M3", "ARW"),
    ("PEF", ".pef", "PENTAX", "PENTAX K-1", "PEF"),
]


@pytest.mark.parametrize(("kind", "suffix", "make", "model", "expected"), RAWS)
def test_tiff_based_raws_are_read(
    tmp_path: Path, kind: str, suffix: str, make: str, model: str, expected: str
) -> None:
    path = tmp_path / f"IMG_0001{suffix}"
    path.write_bytes(tiff_raw(kind, make, model, "2019:06:01 10:20:30", "+02:00"))
    record = extract(path)
    assert record.error is None, record.error
    assert record.format == expected
    assert (record.make, record.model) == (make, model)
    assert record.captured_at == datetime(2019, 6, 1, 10, 20, 30)
    assert record.captured_from == "DateTimeOriginal"
    assert (record.offset, record.captured_at_utc) == ("+02:00", datetime(2019, 6, 1, 8, 20, 30))
    assert (record.iso, record.exposure_time, record.f_number) == (400, 0.004, 2.8)
    assert (record.width, record.height) == SENSOR  # the raw image's, not IFD0's preview


@pytest.mark.parametrize("suffix", [".tif", ".TIFF", ".jpg", ""])
def test_a_raw_named_otherwise_is_named_by_its_content(tmp_path: Path, suffix: str) -> None:
    """The extension only names the flavour of a TIFF: the same NEF bytes under another name are
    a TIFF (its size still the full-resolution image's), and a JPEG named .nef is a JPEG."""
    path = tmp_path / f"IMG_0001{suffix}"
    path.write_bytes(tiff_raw("NEF", "NIKON CORPORATION", "NIKON D750", "2019:06:01 10:20:30", ""))
    record = extract(path)
    assert (record.format, record.width, record.height) == ("TIFF", *SENSOR)
    jpeg = make_photo(tmp_path / "photo.jpg")
    renamed = jpeg.rename(tmp_path / "photo.nef")
    assert extract(renamed).format == "JPEG"


@pytest.mark.parametrize(("ifd0_type", "size"), [(1, SENSOR), (None, SENSOR), (0, (8, 8))])
def test_the_main_image_is_the_one_marked_full_resolution(
    tmp_path: Path, ifd0_type: int | None, size: tuple[int, int]
) -> None:
    """IFD0 is the main image when it says so (NewSubfileType 0); otherwise a SubIFD that says
    so is, as ExifTool gives the full-resolution IFD's tags priority."""
    path = tmp_path / "x.nef"
    path.write_bytes(tiff_raw("NEF", "NIKON", "D1", "2019:06:01 10:20:30", "", ifd0_type=ifd0_type))
    record = extract(path)
    assert (record.width, record.height) == size


@pytest.mark.parametrize("where", ["beyond the end", "into the preview", "onto IFD0"])
def test_a_raw_whose_sub_ifd_pointer_is_wrong_keeps_ifd0_size(tmp_path: Path, where: str) -> None:
    plain = tiff_raw("NEF", "NIKON", "D1", "2019:06:01 10:20:30", "")
    at = {"beyond the end": len(plain) + 1000, "into the preview": len(plain) - 600}.get(where, 8)
    path = tmp_path / "bad.nef"
    path.write_bytes(tiff_raw("NEF", "NIKON", "D1", "2019:06:01 10:20:30", "", sub_ifd_at=at))
    record = extract(path)
    assert record.error is None and (record.make, record.model) == ("NIKON", "D1")
    assert (record.width, record.height) == (8, 8)  # no full-resolution image found: IFD0's


def test_raws_are_catalogued_and_searchable(tmp_path: Path, db: str) -> None:
    folder = tmp_path / "raws"
    folder.mkdir()
    for kind, suffix, make, model, _ in RAWS:
        data = tiff_raw(kind, make, model, "2019:06:01 10:20:30", "+02:00")
        (folder / f"{kind.lower()}{suffix}").write_bytes(data)
    runner = CliRunner()
    result = runner.invoke(app, ["scan", str(folder), "--db", db])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("new 4,") and "failed 0" in result.stdout
    result = runner.invoke(app, ["search", "--model", "nikon d750", "-f", "paths", "--db", db])
    assert result.stdout.strip().endswith("nef.nef")


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"IIRO\x08\x00\x00\x00", "ORF"),
        (b"IIU\x00\x08\x00\x00\x00", "RW2"),
        (b"FUJIFILMCCD-RAW 0201", "RAF"),
        (b"\x00\x00\x00\x18ftypcrx \x00\x00\x00\x01", "CR3"),
    ],
)
def test_other_raw_containers_are_named_error_rows(tmp_path: Path, head: bytes, name: str) -> None:
    path = tmp_path / "raw.bin"
    path.write_bytes(head + bytes(200))
    record = extract(path)
    assert record.format == name
    assert record.error is not None and f"{name} camera raw" in record.error


def test_every_corpus_format_is_read_or_named() -> None:
    """Each container in the corpus: read (and compared field by field in test_extract.py), or
    one of the unread raws, each with its reason."""
    require_corpus()
    formats = {t["format"] for t in truth().values()}
    read = {t["format"] for t in truth().values() if readable(t)}
    assert read == {"JPEG", "MPO", "PNG", "WEBP", "HEIC", "TIFF", "DNG"}
    assert formats - read == set(NOT_READ)
    for name, t in truth().items():
        record = extract(IMAGES / name)
        assert record.format == t["format"], name
        assert (record.error is None) == readable(t), name
