"""catalog.extract: accuracy against the shared corpus truth, hostile files, header-only reading.

Corpus tests skip without the shared corpus (fail under PHOTOCAT_REQUIRE_CORPUS=1, see corpus.py).
The synthetic tests build their files with Pillow in tmp_path and always run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import resource
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from corpus import (
    BROKEN,
    CORPUS,
    IMAGES,
    NOT_READ,
    broken_expected,
    readable,
    require_corpus,
    truth,
)
from photos import make_photo, with_xmp
from PIL import Image, ImageFile, features
from PIL.PngImagePlugin import PngInfo

from catalog.exif_values import (
    capture_time,
    clean_text,
    finite_float,
    gps_altitude,
    gps_coordinate,
    gps_timestamp,
    parse_exif_datetime,
    render_value,
)
from catalog.extract import XMP_EXTENSION, extract
from catalog.record import PhotoRecord

# --- accuracy against truth.json -------------------------------------------------------------

# Every known disagreement with truth.json on a file photocat reads, with the reason.
# The accuracy test fails on a new mismatch AND on an entry here that no longer mismatches.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("exiftool__t__images__DNG.dng", "serial"): (
        "truth.json took the IFD0 fallback by ExifTool tag name 'IFD0:SerialNumber', but ExifTool "
        "names DNG's 0xC62F 'CameraSerialNumber', so truth has null; the corpus README (and the "
        "spec) define 0xC62F as the fallback, and we report its value '012345678'"
    ),
}

FIELDS = (
    "format",
    "make",
    "model",
    "lens_model",
    "serial",
    "software",
    "captured_at",
    "offset",
    "subsec",
    "latitude",
    "longitude",
    "altitude",
    "gps_time_utc",
    "width",
    "height",
    "orientation",
    "iso",
    "exposure_time",
    "f_number",
    "focal_length",
)


def _truth_files() -> list[str]:
    """Parametrisation at collection time, without skipping the whole module when absent."""
    path = CORPUS / "truth.json"
    if not path.is_file():
        return ["(no corpus)"]
    return [entry["file"] for entry in json.loads(path.read_text())]


@cache
def _extracted(name: str) -> PhotoRecord:
    return extract(IMAGES / name)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _same_float(mine: float | None, expected: float | None, *, abs_tol: float = 0.0) -> bool:
    if mine is None or expected is None:
        return mine is None and expected is None
    return math.isclose(mine, expected, rel_tol=1e-6, abs_tol=abs_tol)


def _capture_mismatch(record: PhotoRecord, t: dict[str, Any]) -> tuple[Any, Any] | None:
    """Capture time vs truth: DateTimeOriginal, or a fallback only where truth has no valid one."""
    mine = (record.captured_from, _iso(record.captured_at))
    if record.captured_from == "DateTimeOriginal" or t["datetime_original"] is not None:
        expected = ("DateTimeOriginal", t["datetime_original"])
    elif t["create_date"] is not None:
        expected = ("DateTimeDigitized", t["create_date"])
    elif t["modify_date"] is not None:
        expected = ("DateTime", t["modify_date"])
    else:
        expected = (None, None)
    return None if mine == expected else (mine, expected)


def compare(record: PhotoRecord, t: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """field -> (ours, truth) for every field that disagrees with truth.json."""
    out: dict[str, tuple[Any, Any]] = {}
    for field in ("format", "make", "model", "lens_model", "serial", "software"):
        if getattr(record, field) != t[field]:
            out[field] = (getattr(record, field), t[field])
    for field in ("width", "height", "orientation", "iso"):
        if getattr(record, field) != t[field]:
            out[field] = (getattr(record, field), t[field])
    if (mismatch := _capture_mismatch(record, t)) is not None:
        out["captured_at"] = mismatch
    if record.captured_from == "DateTimeOriginal":  # truth has the *Original companions only
        # truth's offset is OffsetTimeOriginal as stored; an offset found from the GPS clock or
        # zone (time_source gps_*) is checked against ExifTool's GPS values in test_when.py
        tag_offset = record.offset if record.time_source == "offset_tag" else None
        if tag_offset != t["offset_time_original"]:
            out["offset"] = (tag_offset, t["offset_time_original"])
        if record.subsec != t["subsec"]:
            out["subsec"] = (record.subsec, t["subsec"])
    for field, key in (("latitude", "gps_latitude"), ("longitude", "gps_longitude")):
        if not _same_float(getattr(record, field), t[key], abs_tol=1e-6):
            out[field] = (getattr(record, field), t[key])
    if not _same_float(record.altitude, t["gps_altitude"], abs_tol=1e-9):
        out["altitude"] = (record.altitude, t["gps_altitude"])
    gps_time = record.gps_time_utc.strftime("%Y-%m-%dT%H:%M:%SZ") if record.gps_time_utc else None
    if gps_time != t["gps_datetime_utc"]:
        out["gps_time_utc"] = (gps_time, t["gps_datetime_utc"])
    for field in ("exposure_time", "f_number", "focal_length"):
        if not _same_float(getattr(record, field), t[field]):
            out[field] = (getattr(record, field), t[field])
    return out


@pytest.mark.parametrize("name", _truth_files())
def test_accuracy_against_truth(name: str) -> None:
    require_corpus()
    t = truth()[name]
    record = _extracted(name)
    if not readable(truth()[name]):
        reason = NOT_READ[truth()[name]["format"]]
        assert record.error, f"{name}: expected an error row ({reason}), got a record"
        assert record.format == t["format"], "unreadable raw still named by its signature"
        return
    assert record.error is None, record.error
    mismatches = compare(record, t)
    allowed = {field for (file, field) in EXCEPTIONS if file == name}
    new = {field: pair for field, pair in mismatches.items() if field not in allowed}
    stale = sorted(allowed - mismatches.keys())
    lines = [f"  {field}: ours={pair[0]!r} truth={pair[1]!r}" for field, pair in new.items()]
    lines += [f"  stale exception (now agrees, remove it): {field}" for field in stale]
    assert not lines, f"{name} ({t['format']}):\n" + "\n".join(lines)


def test_accuracy_summary() -> None:
    """Per-field agreement over the whole corpus; printed (pytest -s) and asserted."""
    require_corpus()
    read = [name for name, t in truth().items() if readable(t)]
    disagree: Counter[str] = Counter()
    for name in read:
        for field in compare(_extracted(name), truth()[name]):
            disagree[field] += 1
    excepted = Counter(field for _, field in EXCEPTIONS)
    width = max(map(len, FIELDS))
    print(f"\naccuracy on {len(read)} readable files ({len(truth()) - len(read)} not readable):")
    for field in FIELDS:
        agree = len(read) - disagree[field]
        print(f"  {field:<{width}} {agree:>4}/{len(read)}  known exceptions: {excepted[field]}")
    fully = sum(1 for name in read if not compare(_extracted(name), truth()[name]))
    print(f"  files agreeing on every field: {fully}/{len(read)}")
    off = {f: (disagree[f], excepted[f]) for f in FIELDS if disagree[f] != excepted[f]}
    assert not off, f"field: (disagreeing files, listed exceptions) -> {off}"


def test_exceptions_name_real_files_and_fields() -> None:
    require_corpus()
    names = set(truth())
    for file, field in EXCEPTIONS:
        assert file in names and readable(truth()[file]), f"exception for unknown file {file}"
        assert field in FIELDS, f"exception for unknown field {field}"
    assert {t["format"] for t in truth().values() if not readable(t)} == set(NOT_READ)


# --- broken / hostile files ------------------------------------------------------------------


def _broken_files() -> list[str]:
    path = BROKEN / "expected.json"
    if not path.is_file():
        return ["(no corpus)"]
    return [entry["file"] for entry in json.loads(path.read_text())]


ERROR_ROWS = {"zero_bytes.jpg", "text_renamed.jpg"}
NEEDS_WARNING = {
    "exif_subifd_offset_outside.jpg",
    "exif_ifd0_offset_outside.jpg",
    "gps_zero_denominators.jpg",
    "dto_all_zero.jpg",
    "dto_invalid_values.jpg",
    "exif_ifd_loop.jpg",
    "bomb_65000x65000.jpg",
    "orientation_9.jpg",
}


def _check_expected_field(record: PhotoRecord, key: str, expected: Any) -> None:
    if key == "datetime_original":
        got = _iso(record.captured_at) if record.captured_from == "DateTimeOriginal" else None
        assert got == expected, (key, got, expected)
    elif key == "create_date":
        got = _iso(record.captured_at) if record.captured_from == "DateTimeDigitized" else None
        assert got == expected, (key, got, expected)
    elif key in ("gps_latitude", "gps_longitude", "gps_altitude"):
        got = getattr(record, key.removeprefix("gps_"))
        assert _same_float(got, expected, abs_tol=1e-6), (key, got, expected)
    elif key == "model_bytes_hex":
        assert record.model is not None
        assert record.model.encode("latin-1") == bytes.fromhex(expected), record.model
    else:
        assert getattr(record, key) == expected, (key, getattr(record, key), expected)


@pytest.mark.parametrize("name", _broken_files())
def test_broken_file(name: str) -> None:
    require_corpus()
    entry = broken_expected()[name]
    record = extract(BROKEN / name)
    assert isinstance(record, PhotoRecord)
    if name in ERROR_ROWS:
        assert record.error, "expected an error row"
    else:
        assert record.error is None, record.error
    if name in NEEDS_WARNING:
        assert record.warnings, "expected a warning"
    for key, expected in entry["expected_fields"].items():
        _check_expected_field(record, key, expected)
    for tag in record.tags:
        assert isinstance(tag.value, str) and "\0" not in tag.value


def test_broken_error_messages_are_clear() -> None:
    require_corpus()
    assert extract(BROKEN / "zero_bytes.jpg").error == "empty file"
    error = extract(BROKEN / "text_renamed.jpg").error
    assert error is not None and error.startswith("not a recognised image")


def test_broken_hostile_strings_stored_verbatim() -> None:
    require_corpus()
    expected = broken_expected()["make_ansi_markup_formula.jpg"]["expected_fields"]
    record = extract(BROKEN / "make_ansi_markup_formula.jpg")
    assert (record.make, record.model, record.software) == (
        expected["make"],
        expected["model"],
        expected["software"],
    )
    listed = {tag.name: tag.value for tag in record.tags if tag.ifd == "IFD0"}
    assert listed["Make"] == expected["make"] and listed["Software"] == expected["software"]


def test_broken_ifd_loop_terminates_fast() -> None:
    require_corpus()
    result: list[PhotoRecord] = []
    worker = threading.Thread(target=lambda: result.append(extract(BROKEN / "exif_ifd_loop.jpg")))
    worker.daemon = True  # if it ever hangs, do not hang the test run too
    started = time.perf_counter()
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "extract() did not terminate on a cyclic IFD chain"
    assert time.perf_counter() - started < 2
    record = result[0]
    assert (record.make, record.model, record.captured_at) == ("BrokenCorp", "Test Model 1", None)
    assert not [tag for tag in record.tags if tag.ifd in ("Exif", "IFD1")], "loop read twice"


def test_broken_bomb_is_not_decoded(no_decode: None) -> None:
    require_corpus()
    limit = Image.MAX_IMAGE_PIXELS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    record = extract(BROKEN / "bomb_65000x65000.jpg")
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100, f"peak memory grew by {grown_mib:.0f} MiB"
    assert limit == Image.MAX_IMAGE_PIXELS, "the decompression-bomb limit must be restored"
    assert (record.width, record.height) == (65000, 65000)
    assert any("gigapixel" in warning for warning in record.warnings)
    with pytest.raises(Image.DecompressionBombError):  # others' decoding stays protected
        Image.open(BROKEN / "bomb_65000x65000.jpg")


# --- header only: never decode pixels --------------------------------------------------------


class PixelDecode(BaseException):
    """Raised by the patched loaders; a BaseException so extract()'s safety net cannot hide it."""


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every file-backed Pillow / pillow-heif pixel loader raise PixelDecode."""
    Image.init()  # import every plugin so their load() overrides are patched too

    def refuse(*args: object, **kwargs: object) -> None:
        raise PixelDecode("pixel data was decoded")

    def subclasses(cls: type) -> Iterator[type]:
        yield cls
        for sub in cls.__subclasses__():
            yield from subclasses(sub)

    for cls in subclasses(ImageFile.ImageFile):  # file-backed images; Image.new() stays usable
        if "load" in vars(cls):
            monkeypatch.setattr(cls, "load", refuse)
    monkeypatch.setattr(pillow_heif.heif.BaseImage, "data", property(refuse))


def _exif(**fields: Any) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = fields.get("make", "BigCam")
    exif[0x0110] = fields.get("model", "Model 6000")
    if "orientation" in fields:
        exif[0x0112] = fields["orientation"]
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = fields.get("dto", "2022:03:04 05:06:07")
    exif_ifd[0x9011] = fields.get("offset", "+01:00")
    return exif


def _chunk(chunk_type: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + chunk_type
        + data
        + struct.pack(">I", zlib.crc32(chunk_type + data))
    )


def _png_with_chunk_before_iend(png: bytes, chunk: bytes) -> bytes:
    """Insert a chunk after all IDAT chunks (where Pillow's open never looks)."""
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + chunk + png[iend:]


def _raw_profile(exif_bytes: bytes) -> bytes:
    """ImageMagick's "Raw profile type exif" text: name, length, hex in 72-column lines."""
    hex_text = exif_bytes.hex()
    lines = [hex_text[i : i + 72] for i in range(0, len(hex_text), 72)]
    return f"\nexif\n{len(exif_bytes):8d}\n".encode() + "\n".join(lines).encode() + b"\n"


def _big_png(tmp_path: Path, name: str) -> tuple[Path, bytes]:
    buffer = io.BytesIO()
    Image.new("L", (6000, 4000), 128).save(buffer, "PNG", compress_level=1)
    return tmp_path / name, buffer.getvalue()


def _assert_big_photo(record: PhotoRecord, fmt: str) -> None:
    assert record.error is None, record.error
    assert (record.format, record.width, record.height) == (fmt, 6000, 4000)
    assert (record.make, record.model) == ("BigCam", "Model 6000")
    assert record.captured_at == datetime(2022, 3, 4, 5, 6, 7)
    assert record.captured_at_utc == datetime(2022, 3, 4, 4, 6, 7)
    assert (record.offset, record.offset_from, record.time_source) == (
        "+01:00",
        "OffsetTimeOriginal",
        "offset_tag",
    )


def test_large_jpeg_header_only(tmp_path: Path, no_decode: None) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (6000, 4000), (90, 120, 150)).save(path, exif=_exif(), quality=50)
    started = time.perf_counter()
    record = extract(path)
    assert time.perf_counter() - started < 0.5
    _assert_big_photo(record, "JPEG")


def test_large_png_exif_after_idat_header_only(tmp_path: Path, no_decode: None) -> None:
    path, png = _big_png(tmp_path, "late_exif.png")
    tiff = _exif().tobytes()[6:]  # eXIf holds the TIFF structure without "Exif\0\0"
    path.write_bytes(_png_with_chunk_before_iend(png, _chunk(b"eXIf", tiff)))
    _assert_big_photo(extract(path), "PNG")


@pytest.mark.parametrize("chunk_type", [b"tEXt", b"zTXt", b"iTXt"])
def test_large_png_imagemagick_raw_profile_after_idat(
    tmp_path: Path, no_decode: None, chunk_type: bytes
) -> None:
    path, png = _big_png(tmp_path, "raw_profile.png")
    text = _raw_profile(_exif().tobytes())
    body = {
        b"tEXt": text,
        b"zTXt": b"\0" + zlib.compress(text),
        b"iTXt": b"\1\0" + b"\0\0" + zlib.compress(text),
    }[chunk_type]
    chunk = _chunk(chunk_type, b"Raw profile type exif\0" + body)
    path.write_bytes(_png_with_chunk_before_iend(png, chunk))
    _assert_big_photo(extract(path), "PNG")


def test_png_exif_before_idat_and_raw_profile_text(tmp_path: Path, no_decode: None) -> None:
    early = tmp_path / "early.png"
    Image.new("RGB", (64, 48)).save(early, exif=_exif(make="Early"))
    assert extract(early).make == "Early"
    text = tmp_path / "text.png"
    info = PngInfo()
    info.add_text("Raw profile type exif", _raw_profile(_exif(make="Magick").tobytes()).decode())
    Image.new("RGB", (64, 48)).save(text, pnginfo=info)
    assert extract(text).make == "Magick"


def test_large_webp_header_only(tmp_path: Path, no_decode: None) -> None:
    path = tmp_path / "big.webp"
    Image.new("RGB", (6000, 4000), (10, 20, 30)).save(path, exif=_exif(), lossless=True)
    _assert_big_photo(extract(path), "WEBP")


def test_large_tiff_header_only(tmp_path: Path, no_decode: None) -> None:
    path = tmp_path / "big.tif"
    # exif as bytes: the TIFF writer keeps only sub-IFDs it can re-read from a loaded Exif
    Image.new("1", (6000, 4000), 1).save(path, exif=_exif().tobytes())  # 3 MB, uncompressed
    _assert_big_photo(extract(path), "TIFF")


@pytest.mark.skipif(not pillow_heif.libheif_info()["HEIF"], reason="no HEIF encoder to make one")
def test_heic_size_before_irot_and_orientation_as_stored(tmp_path: Path) -> None:
    """pillow-heif's plugin reports the size after irot and rewrites EXIF Orientation to 1."""
    pillow_heif.register_heif_opener()  # Pillow's HEIF writer and reader, for this test only
    path = tmp_path / "rotated.heic"
    Image.new("RGB", (640, 480)).save(path, exif=_exif(orientation=6).tobytes())
    with Image.open(path) as im:
        assert im.size == (480, 640)  # the trap this module steps around
    record = extract(path)
    assert record.error is None, record.error
    assert (record.format, record.width, record.height) == ("HEIC", 640, 480)  # ispe, as ExifTool
    assert (record.make, record.orientation) == ("BigCam", 6)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_avif_through_the_heif_container_reader(tmp_path: Path, no_decode: None) -> None:
    path = tmp_path / "photo.avif"
    Image.new("RGB", (64, 48)).save(path, exif=_exif())
    record = extract(path)
    assert (record.format, record.width, record.height, record.make) == ("AVIF", 64, 48, "BigCam")


def test_every_corpus_image_header_only(no_decode: None) -> None:
    require_corpus()
    for name in truth():
        record = extract(IMAGES / name)  # PixelDecode would escape extract()'s safety net
        assert record.format is not None, name


# --- junk never raises -----------------------------------------------------------------------


def _samples_by_format() -> list[Path]:
    picked: dict[str, Path] = {}
    for name, entry in sorted(truth().items()):
        if entry["has_exif"] and entry["size_bytes"] < 3_000_000:
            picked.setdefault(entry["format"], IMAGES / name)
    return sorted(picked.values())


def test_truncated_corpus_files_never_raise(tmp_path: Path) -> None:
    require_corpus()
    rng = random.Random(7)
    target = tmp_path / "cut"
    for source in _samples_by_format():
        data = source.read_bytes()
        lengths = {1, 2, 3, 4, 8, 12, 16, 30, 64, 200, 1000, 5000, len(data) // 3, len(data) - 1}
        lengths |= {rng.randrange(1, len(data)) for _ in range(6)}
        for length in sorted(n for n in lengths if 0 < n < len(data)):
            target.write_bytes(data[:length])
            record = extract(target)
            assert isinstance(record, PhotoRecord), (source.name, length)


def test_corrupted_headers_never_raise(tmp_path: Path) -> None:
    """Random byte flips in the first 4 KiB (where the EXIF lives) of real files."""
    require_corpus()
    rng = random.Random(11)
    target = tmp_path / "flipped"
    for source in _samples_by_format():
        data = source.read_bytes()
        for _ in range(25):
            buffer = bytearray(data)
            for _ in range(rng.randrange(1, 12)):
                buffer[rng.randrange(min(4096, len(buffer)))] = rng.randrange(256)
            target.write_bytes(bytes(buffer))
            assert isinstance(extract(target), PhotoRecord), source.name


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"RIFF\0\0\0\0WEBPVP8X"],
)
def test_random_junk_never_raises(tmp_path: Path, prefix: bytes) -> None:
    rng = random.Random(len(prefix))
    target = tmp_path / "junk.jpg"
    for size in (0, 1, 10, 100, 1000, 20000):
        target.write_bytes(prefix + rng.randbytes(size))
        record = extract(target)
        assert isinstance(record, PhotoRecord)


def test_damaged_jpeg_header_keeps_what_was_read(tmp_path: Path) -> None:
    """Cut inside a segment after the Exif APP1: Pillow refuses the file, the EXIF survives."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buffer, "JPEG", exif=_exif(), icc_profile=b"\0" * 30000)
    data = buffer.getvalue()
    path = tmp_path / "cut_in_icc.jpg"
    path.write_bytes(data[: data.index(b"ICC_PROFILE") + 1000])
    record = extract(path)
    assert record.error is not None and record.error.startswith("damaged image header")
    assert (record.format, record.make) == ("JPEG", "BigCam")
    assert record.captured_at == datetime(2022, 3, 4, 5, 6, 7)


def test_pillow_log_messages_become_warnings(tmp_path: Path) -> None:
    """Pillow logs (not warns) some TIFF header problems; they belong to the record."""
    path = tmp_path / "many_samples.tif"
    path.write_bytes(
        _tiff(
            [
                (0x0100, 4, 1, _long(10)),
                (0x0101, 4, 1, _long(10)),
                (0x0102, 3, 1, _short(8)),
                (0x0106, 3, 1, _short(2)),
                (0x010F, 2, 4, b"Cam\0"),
                (0x0115, 3, 1, _short(60000)),
            ]
        )
    )
    record = extract(path)
    assert record.make == "Cam"
    assert any("samples per pixel" in warning for warning in record.warnings), record.warnings


def test_unreadable_paths_give_error_rows(tmp_path: Path) -> None:
    assert (extract(tmp_path / "missing.jpg").error or "").startswith("cannot read file")
    assert (extract(tmp_path).error or "").startswith("cannot read file")


# --- container details -----------------------------------------------------------------------


def test_xmp_orientation_is_not_reported_as_exif(tmp_path: Path) -> None:
    """Pillow's getexif() copies XMP tiff:Orientation into IFD0; the catalog reports EXIF only."""
    path = tmp_path / "xmp.jpg"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    Image.new("RGB", (40, 30)).save(path, exif=_exif(), xmp=xmp)
    record = extract(path)
    assert record.orientation is None
    assert "Orientation" not in {tag.name for tag in record.tags}
    Image.new("RGB", (40, 30)).save(path, exif=_exif(orientation=3), xmp=xmp)
    assert extract(path).orientation == 3


def test_format_by_content_not_extension(tmp_path: Path) -> None:
    path = tmp_path / "photo.heic"
    Image.new("RGB", (40, 30)).save(path, "PNG", exif=_exif())
    assert extract(path).format == "PNG"


def _tiff(entries: list[tuple[int, int, int, bytes]], extra: bytes = b"") -> bytes:
    """A little-endian TIFF with one IFD; entries are (tag, type, count, value-or-offset bytes)."""
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in sorted(entries):
        ifd += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\0\0\0\0" + extra


def _short(value: int) -> bytes:
    return struct.pack("<H", value)


def _long(value: int) -> bytes:
    return struct.pack("<I", value)


def _raw_like_tiff(dng: bool) -> bytes:
    """IFD0 of a CFA raw (Photometric 32803, 16-bit), which Pillow refuses to open."""
    entries_count = 11 + dng
    data_at = 8 + 2 + 12 * entries_count + 4
    make = b"RawCam\0\0"
    exif_at = data_at + len(make)
    exif_ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x9003, 2, 20, exif_at + 18) + b"\0" * 4
    extra = make + exif_ifd + b"2021:02:03 04:05:06\0"
    entries = [
        (0x0100, 4, 1, _long(4000)),
        (0x0101, 4, 1, _long(3000)),
        (0x0102, 3, 1, _short(16)),
        (0x0103, 3, 1, _short(1)),
        (0x0106, 3, 1, _short(32803)),
        (0x010F, 2, len(make), _long(data_at)),
        (0x0111, 4, 1, _long(0)),
        (0x0115, 3, 1, _short(1)),
        (0x0116, 4, 1, _long(3000)),
        (0x0117, 4, 1, _long(0)),
        (0x8769, 4, 1, _long(exif_at)),
    ]
    if dng:
        entries.append((0xC612, 1, 4, bytes([1, 4, 0, 0])))
    return _tiff(entries, extra)


@pytest.mark.parametrize("dng", [False, True])
def test_tiff_pillow_cannot_open_still_gives_metadata(tmp_path: Path, dng: bool) -> None:
    path = tmp_path / "raw.bin"
    path.write_bytes(_raw_like_tiff(dng))
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(path)
    record = extract(path)
    assert record.error is None, record.error
    assert record.format == ("DNG" if dng else "TIFF")
    assert (record.width, record.height, record.make) == (4000, 3000, "RawCam")
    assert record.captured_at == datetime(2021, 2, 3, 4, 5, 6)
    assert record.warnings


def test_raw_tags_cover_every_ifd(tmp_path: Path) -> None:
    path = tmp_path / "tags.jpg"
    exif = _exif()
    exif.get_ifd(0x8769)[0x927C] = b"Nikon\0" + bytes(range(256)) * 4  # MakerNote blob
    exif.get_ifd(0x8769)[0x9000] = b"0232"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (1.0, 2.0, 3.5), 3: "W", 4: (4.0, 5.0, 6.0), 5: b"\x01", 6: 12.5})
    Image.new("RGB", (40, 30)).save(path, exif=exif)
    record = extract(path)
    tags = {(tag.ifd, tag.name): tag.value for tag in record.tags}
    assert tags[("IFD0", "Make")] == "BigCam"
    assert tags[("Exif", "MakerNote")] == "(binary, 1030 bytes)"
    assert tags[("Exif", "ExifVersion")] == "0232"
    assert tags[("GPS", "GPSLatitude")] == "1 2 3.5"
    assert tags[("GPS", "GPSAltitudeRef")] == "1"
    assert record.latitude == pytest.approx(1 + 2 / 60 + 3.5 / 3600)
    assert record.longitude == pytest.approx(-(4 + 5 / 60 + 6 / 3600))
    assert record.altitude == -12.5
    assert all(isinstance(tag.value, str) for tag in record.tags)


# --- pure value rules (catalog.exif_values) --------------------------------------------------


class Rational:
    """Stand-in for Pillow's IFDRational (which turns n/0 into NaN)."""

    def __init__(self, numerator: int, denominator: int) -> None:
        self.numerator, self.denominator = numerator, denominator

    def __float__(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan


def test_clean_text() -> None:
    assert clean_text("Canon\0junk") == "Canon"
    assert clean_text("NIKON   ") == "NIKON"
    assert clean_text("  lead") == "  lead"
    assert clean_text("Caf\xc3\xa9") == "Café"  # UTF-8 bytes that Pillow decoded as Latin-1
    assert clean_text(b"Cam\xe9ra \xff") == "Caméra ÿ"  # invalid UTF-8 -> Latin-1
    assert clean_text("\0\0\0") is None
    assert clean_text(12) is None


def test_gps_coordinates_are_the_double_nearest_the_exact_sum() -> None:
    """Degrees, minutes and seconds are rationals: their sum is exact, and the coordinate stored
    is the double nearest it, as ExifTool prints it (2.294481), not the float sum's last-place
    error (2.2944809999999998)."""
    from fractions import Fraction

    from PIL.TiffImagePlugin import IFDRational

    paris = (IFDRational(2, 1), IFDRational(17, 1), IFDRational(401316, 10000))
    assert gps_coordinate(paris, "E", "Longitude", []) == 2.294481
    assert gps_coordinate(paris, "W", "Longitude", []) == -2.294481
    rng = random.Random(5)
    float_sum_off = 0
    for _ in range(3000):
        d, q = (rng.choice([1, 10, 100, 1000, 10000, 1000000, 7, 2**32 - 1]) for _ in "dq")
        parts = ((rng.randrange(89), 1), (rng.randrange(60 * d), d), (rng.randrange(60 * q), q))
        exact = float(sum(Fraction(n, q) / 60**i for i, (n, q) in enumerate(parts)))
        dms = tuple(IFDRational(n, q) for n, q in parts)
        assert gps_coordinate(dms, "N", "Latitude", []) == exact, parts
        float_sum_off += sum(n / q / 60**i for i, (n, q) in enumerate(parts)) != exact
    assert float_sum_off > 100  # the float sum the catalog used to store is often off
    # Pillow's other value types: an int part, and a degrees-only coordinate
    assert gps_coordinate((48, IFDRational(51, 1), 0), "N", "Latitude", []) == 48.85
    assert gps_coordinate((IFDRational(4885837, 100000),), "N", "Latitude", []) == 48.85837
    # what the float path refused before, refused still: a negative part (signed types), a bool
    for bad in ((48, -5, 0), (IFDRational(48, 1), IFDRational(-5, 1)), (True, 0, 0)):
        warnings: list[str] = []
        assert gps_coordinate(bad, "N", "Latitude", warnings) is None, bad
        assert warnings and "is undefined" in warnings[0], bad


def test_corpus_gps_coordinates_are_the_exact_sums_of_their_rationals() -> None:
    """Every corpus position, whichever reader took it (plain JPEG, Pillow's TIFF, PNG, HEIF):
    the double nearest the exact sum of the rationals Pillow's own API gives."""
    from fractions import Fraction

    from PIL.TiffImagePlugin import IFDRational

    checked = 0
    for name, t in truth().items():
        if t["gps_latitude"] is None or not readable(t):
            continue
        try:
            with Image.open(IMAGES / name) as im:
                gps = im.getexif().get_ifd(0x8825)
        except OSError:  # a raw Pillow does not open by itself (extract finds its TIFF inside)
            continue
        record = extract(IMAGES / name)
        for tag, ref, got in ((2, 1, record.latitude), (4, 3, record.longitude)):
            parts = gps.get(tag)
            if not isinstance(parts, tuple) or not all(type(p) is IFDRational for p in parts):
                continue
            exact = sum(Fraction(p.numerator, p.denominator) / 60**i for i, p in enumerate(parts))
            sign = -1 if gps.get(ref, "").upper().startswith(("S", "W")) else 1
            assert got == sign * float(exact), (name, tag, got, float(exact))
            checked += 1
    assert checked >= 40, checked


def test_render_value() -> None:
    from PIL.TiffImagePlugin import IFDRational

    assert render_value(IFDRational(1, 250)) == "0.004"
    assert render_value(IFDRational(72, 1)) == "72"
    assert render_value(IFDRational(0, 0)) == "0/0"
    assert render_value(72.0) == "72"
    assert render_value((IFDRational(43, 1), IFDRational(28, 1), IFDRational(5641, 100))) == (
        "43 28 56.41"
    )
    assert render_value(b"0230") == "0230"
    assert render_value(b"\x01\x02\x03\x00") == "1 2 3 0"
    assert render_value(b"\x00") == "0"  # GPSAltitudeRef: above sea level, not blank
    assert render_value(b"\0" * 64) == ""  # a long empty field stays empty
    assert render_value(b"x" * 1000) == "(binary, 1000 bytes)"
    assert render_value(b"MM" + b"\0" * 30, 0x927C) == "(binary, 32 bytes)"
    assert render_value(b"ASCII\0\0\0Hello\0\0", 0x9286) == "Hello"
    assert render_value(b"UNICODE\0" + "Hé".encode("utf-16-le"), 0x9286) == "Hé"
    assert render_value(b"\0" * 8 + b"\xff\xfe\x00", 0x9286) == "(binary, 11 bytes)"
    assert render_value("T\xedtulo".encode("utf-16-le"), 0x9C9B) == "Título"
    assert render_value(tuple(range(100))) == "(100 values)"


@pytest.mark.parametrize(
    ("numerator", "denominator"),
    [(1, 250), (28, 10), (-7, 3), (7, -3), (0, 5), (5, 0), (0, 0), (2**32 - 1, 1),
     (10**400, 3), (1, 10**400), (10**400, 10**399), (3, 7)],
)  # fmt: skip
def test_finite_float_of_a_rational_is_its_float(numerator: int, denominator: int) -> None:
    """The fast path for Pillow's IFDRational (both as Pillow and as the plain-JPEG path make
    one) gives exactly what float() of it gives: None where that is not a finite number."""
    from PIL.TiffImagePlugin import IFDRational

    from catalog.plain_jpeg import _new_rational

    for value in (IFDRational(numerator, denominator), _new_rational(numerator, denominator)):
        try:
            expected: float | None = float(value)
        except (ZeroDivisionError, OverflowError):
            expected = None
        if expected is not None and not math.isfinite(expected):
            expected = None
        assert finite_float(value) == expected
        assert finite_float((value, IFDRational(1, 1))) == expected
    assert finite_float(IFDRational(0.5)) == 0.5  # a float numerator: float() as before


def test_parse_exif_datetime() -> None:
    assert parse_exif_datetime("2008:10:22 16:46:53") == datetime(2008, 10, 22, 16, 46, 53)
    assert parse_exif_datetime("2008-10-22T16:46:53Z") == datetime(2008, 10, 22, 16, 46, 53)
    for bad in ("0000:00:00 00:00:00", "    :  :     :  :  ", "2019:13:45 25:61:61", "", None):
        assert parse_exif_datetime(bad) is None


def test_capture_time_rules() -> None:
    warnings: list[str] = []
    result = capture_time(
        {
            "DateTimeOriginal": "2020:01:02 03:04:05",
            "SubSecTimeOriginal": "045",
            "OffsetTimeOriginal": "+05:30",
            "DateTimeDigitized": "2021:01:01 00:00:00",
        },
        warnings,
    )
    assert (result.captured_at, result.captured_from) == (
        datetime(2020, 1, 2, 3, 4, 5),
        "DateTimeOriginal",
    )
    assert (result.subsec, result.offset, result.offset_from) == (
        "045",
        "+05:30",
        "OffsetTimeOriginal",
    )
    assert (result.captured_at_utc, result.time_source) == (
        datetime(2020, 1, 1, 21, 34, 5),
        "offset_tag",
    )
    assert warnings == []

    # invalid original: fall back, but say so; companions come from the tag actually used
    result = capture_time(
        {
            "DateTimeOriginal": "0000:00:00 00:00:00",
            "OffsetTimeOriginal": "+02:00",
            "DateTimeDigitized": "2021:06:07 08:09:10",
            "SubSecTimeDigitized": "7",
        },
        warnings,
    )
    assert (result.captured_from, result.subsec, result.offset) == ("DateTimeDigitized", "7", None)
    assert result.captured_at_utc is None and result.time_source is None
    assert any("DateTimeOriginal" in w and "not a valid date" in w for w in warnings)
    assert any("because DateTimeOriginal is invalid" in w for w in warnings)

    warnings.clear()
    result = capture_time({"DateTime": "2001:02:03 04:05:06", "OffsetTime": "+25:00"}, warnings)
    assert (result.captured_from, result.offset, result.captured_at_utc) == ("DateTime", None, None)
    assert any("OffsetTime '+25:00'" in w for w in warnings)

    warnings.clear()
    assert capture_time({}, warnings) == type(result)() and warnings == []
    blank_offset = capture_time(
        {"DateTimeOriginal": "2001:02:03 04:05:06", "OffsetTimeOriginal": "   :  "}, warnings
    )
    assert blank_offset.offset is None and warnings == []  # blank means "unknown", not broken


def test_gps_rules() -> None:
    warnings: list[str] = []
    dms = (Rational(43, 1), Rational(28, 1), Rational(564, 10))
    assert gps_coordinate(dms, "S", "Latitude", warnings) == pytest.approx(
        -(43 + 28 / 60 + 56.4 / 3600)
    )
    assert gps_coordinate(dms, "E", "Longitude", warnings) == pytest.approx(
        43 + 28 / 60 + 56.4 / 3600
    )
    assert warnings == []
    assert gps_coordinate(dms, None, "Latitude", warnings) is None  # sign unknown
    assert (
        gps_coordinate((Rational(1, 0), Rational(0, 0), Rational(0, 0)), "N", "Latitude", warnings)
        is None
    )
    assert gps_coordinate((Rational(95, 1),), "N", "Latitude", warnings) is None  # out of range
    assert gps_coordinate((Rational(0, 1),) * 3, "N", "Latitude", []) == 0.0  # null island kept
    assert gps_coordinate((1.5, 0.0, 0.0), "N", "Latitude", []) == 1.5  # floats: summed as such
    assert gps_altitude(Rational(12, 1), b"\x01", []) == -12.0
    assert gps_altitude(Rational(12, 1), 0, []) == 12.0
    assert gps_altitude(Rational(3, 0), 0, warnings) is None
    stamp = (Rational(13, 1), Rational(5, 1), Rational(1205, 100))
    assert gps_timestamp("2014:09:25", stamp, []) == datetime(2014, 9, 25, 13, 5, 12)
    assert gps_timestamp("2014:09:259", stamp, warnings) is None
    assert gps_timestamp("2014:09:25", None, []) is None
    assert (
        gps_timestamp("2014:09:25", (Rational(25, 1), Rational(0, 1), Rational(0, 1)), warnings)
        is None
    )
    assert len(warnings) == 6


def test_libheif_loads_only_for_a_heif_file(tmp_path: Path) -> None:
    """Extracting JPEGs never loads libheif (~15-45 ms a process); a HEIF file loads it."""
    jpeg = tmp_path / "p.jpg"
    Image.new("RGB", (8, 8)).save(jpeg, exif=_exif().tobytes())
    heif = tmp_path / "p.heic"
    heif.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    code = (
        "import sys\n"
        "from catalog.extract import extract\n"
        "assert extract(sys.argv[1]).error is None\n"
        "assert 'pillow_heif' not in sys.modules, 'loaded for a JPEG'\n"
        "print(extract(sys.argv[2]).error)\n"
        "assert 'pillow_heif' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(jpeg), str(heif)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("not a recognised image (HEIC that libheif cannot read")


# --- XMP -------------------------------------------------------------------------------------

# Corpus files whose bytes hold an XMP packet that is not their primary image's, and why.
XMP_NOT_LISTED = {
    "pillow__Tests__images__frame_size.mpo": "the packet is the second frame's, after the first"
    " image's end",
    "mei__webp__Issue_473_(Java).webp": "in a chunk named 'XMP\\0', which is not WebP's 'XMP '"
    " (Pillow reads that one only)",
}
_XMP_START = (b"<x:xmpmeta", b"<x:xapmeta", "<x:xmpmeta".encode("utf-16-be"))


def xmp_entries(record: PhotoRecord) -> list[Any]:
    return [t for t in record.tags if t.ifd == "XMP"]


def test_the_xmp_packet_is_listed_as_the_file_holds_it() -> None:
    """Every corpus file whose bytes hold an XMP packet (JPEG's APP1, TIFF's and DNG's
    XMLPacket, HEIF's item, WebP's chunk; a UTF-16 one too) lists it once, last, decoded
    exactly: its text, encoded again, is found in the file's bytes as it is."""
    require_corpus()
    listed = 0
    for name in sorted(truth()):
        data = (IMAGES / name).read_bytes()
        record = extract(IMAGES / name)
        packets = [t for t in xmp_entries(record) if t.name != "ExtendedXMP"]
        holds = any(start in data for start in _XMP_START) and name not in XMP_NOT_LISTED
        assert len(packets) == holds, name
        for tag in packets:
            last = record.tags[-2] if record.tags[-1].name == "ExtendedXMP" else record.tags[-1]
            assert (tag.tag_id, tag.name) == (0x02BC, "XMLPacket") and last is tag
            assert any(tag.value.encode(c) in data for c in ("utf-8", "utf-16-be")), name
            assert not [w for w in record.warnings if "XMP" in w], name
            listed += 1
    assert listed >= 50
    assert {Path(n).suffix.lower() for n in truth() if xmp_entries(extract(IMAGES / n))} >= {
        ".jpg", ".tif", ".tiff", ".dng", ".heic", ".heif", ".webp",
    }  # fmt: skip


def _extension_segments(data: bytes) -> list[bytes]:
    """A JPEG's extended XMP segments (their APP1 payloads), by walking its markers here."""
    found, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] != 0xDA:
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if data[at + 1] == 0xE1 and data[at + 4 :].startswith(XMP_EXTENSION):
            found.append(data[at + 4 : end])
        at = end
    return found


def test_extended_xmp_is_listed_as_the_file_holds_it() -> None:
    """Every corpus JPEG with extended XMP (a Pixel's Ultra HDR photo: Google's HDR+ maker note,
    which ExifTool shows as XMP-GCamera:HdrPlusMakernote) lists it after its packet: its parts
    in order, whole, the MD5 of them the GUID its packet names, and no warning."""
    require_corpus()
    read = 0
    for name in sorted(truth()):
        data = (IMAGES / name).read_bytes()
        if XMP_EXTENSION not in data:
            continue
        record = extract(IMAGES / name)
        entries = xmp_entries(record)
        assert [t.name for t in entries] == ["XMLPacket", "ExtendedXMP"], name
        assert record.tags[-2:] == entries
        segments = sorted(_extension_segments(data), key=lambda s: s[71:75])
        whole = b"".join(s[75:] for s in segments)
        guid = segments[0][35:67].decode()
        assert entries[1].value.encode() == whole and hashlib.md5(whole).hexdigest().upper() == guid
        assert f'HasExtendedXMP="{guid}"' in entries[0].value
        assert not [w for w in record.warnings if "XMP" in w], name
        read += 1
    assert read >= 1
    ultra = extract(IMAGES / "pillow__Tests__images__ultrahdr.jpg")
    assert "GCamera:HdrPlusMakernote=" in ultra.tags[-1].value


@pytest.mark.parametrize(
    ("packet", "value", "warning"),
    [
        (b"<x:xmpmeta>caf\xc3\xa9</x:xmpmeta>", "<x:xmpmeta>café</x:xmpmeta>", None),
        ("<x:xmpmeta>ok</x:xmpmeta>".encode("utf-16-le"), "<x:xmpmeta>ok</x:xmpmeta>", None),
        (b"<x:xmpmeta>\xff\xfe</x:xmpmeta>", "<x:xmpmeta>\ufffd\ufffd</x:xmpmeta>", "not utf-8"),
        (b"<x:a>b\x00c</x:a>\x00\x00", "<x:a>bc</x:a>", "NUL characters"),
        (b"<x:a>\x00</x:a>\x00", "<x:a></x:a>", "NUL characters"),
        (b"<x:a>end</x:a>\x00", "<x:a>end</x:a>", None),  # a terminator, not content
        (b"\x1b]0;pwned\x07<x:a/>", "\x1b]0;pwned\x07<x:a/>", None),  # stored as it is
        (b"   \n  ", None, None),  # padding alone: nothing to list
    ],
)
def test_an_xmp_packet_of_any_bytes_is_listed_or_said(
    tmp_path: Path, packet: bytes, value: str | None, warning: str | None
) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes(with_xmp(make_photo(tmp_path / "src.jpg"), packet))
    record = extract(path)
    assert record.error is None
    assert [t.value for t in xmp_entries(record)] == ([] if value is None else [value])
    said = [w for w in record.warnings if "XMP" in w]
    assert len(said) == (warning is not None) and all(warning in w for w in said), said


def test_a_second_xmp_segment_is_read_as_pillow_reads_it(tmp_path: Path) -> None:
    """Two standard XMP segments (the spec allows one): Pillow keeps the last, and so does the
    record, whichever path reads the file."""
    path = tmp_path / "x.jpg"
    path.write_bytes(with_xmp(make_photo(tmp_path / "src.jpg"), b"<x:a>1</x:a>", b"<x:a>2</x:a>"))
    assert [t.value for t in xmp_entries(extract(path))] == ["<x:a>2</x:a>"]


def test_a_png_lists_its_xmp_text_chunk(tmp_path: Path) -> None:
    """PNG keeps XMP in an iTXt chunk named XML:com.adobe.xmp (no PNG of the corpus has one)."""
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>Plage à Nice</x:xmpmeta>")
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    record = extract(path)
    assert [(t.ifd, t.name, t.value) for t in xmp_entries(record)] == [
        ("XMP", "XMLPacket", "<x:xmpmeta>Plage à Nice</x:xmpmeta>")
    ]


@pytest.mark.parametrize(
    ("packet", "listed", "said"),
    [
        ("<x>\udce9</x>", "<x>?</x>", "not valid Unicode"),  # a str with a lone surrogate
        ((b"<x/>",), "<x/>", None),  # a TIFF XMLPacket read as a one-value tuple
        ("<x/>\x00", "<x/>", None),
        ((60, 120), None, None),  # of no type a packet has: nothing listed
        (700, None, None),
        (b"", None, None),
    ],
)
def test_any_value_given_as_an_xmp_packet_is_listed_safely_or_not_at_all(
    packet: object, listed: str | None, said: str | None
) -> None:
    from catalog.extract import _add_xmp

    record = PhotoRecord()
    _add_xmp(record, packet)
    assert [t.value for t in record.tags] == ([] if listed is None else [listed])
    assert record.warnings == ([] if said is None else [record.warnings[0]])
    assert said is None or said in record.warnings[0]
