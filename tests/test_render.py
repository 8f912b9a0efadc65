"""Renderers make attacker-controlled strings inert: terminal, rich markup, spreadsheets, JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from rich.console import Console

from catalog.render import (
    CONTROL,
    Batched,
    OutputFormat,
    csv_cell,
    inert,
    render,
    write_checksums,
    write_csv,
    write_json,
    write_jsonl,
    write_paths,
)

HOSTILE = {
    "path": "/p/a.jpg",
    "make": '=HYPERLINK("https://example.invalid/x","click") \x1b[31m\x1b[1mRED\x1b[0m'
    " [bold red]x[/] \x1b]0;pwned\x07",
    "model": "@SUM(1+1)*cmd|' /C calc'!A0 [link=https://example.invalid]m[/link]",
    "software": "+1+1 \x1b[2J\x1b[H[/] [red",
    "lens_model": "-2+3 \u202eevil\u202c \r\n",
    "serial": "=cmd|' /C calc'!A0 \x1b]8;;https://example.invalid\x07link\x1b]8;;\x07",
    "latitude": -33.5,
}
KEYS = list(HOSTILE)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mRED", "\\x1b[31mRED"),
        ("bell\x07", "bell\\x07"),
        ("a\r\nb", "a\\x0d\\x0ab"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("\u202eevil", "\\u202eevil"),
        ("Caméra ÿþ X-100", "Caméra ÿþ X-100"),
        ("[bold]x[/]", "[bold]x[/]"),
    ],
)
def test_inert_shows_control_characters_as_escapes(raw: str, shown: str) -> None:
    assert inert(raw) == shown


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("Canon", "Canon"),
        (-3.5, -3.5),
        (None, None),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, cell: object) -> None:
    assert csv_cell(value) == cell


def test_table_shows_markup_and_escapes_literally() -> None:
    out = io.StringIO()
    console = Console(file=out, width=400, force_terminal=True, color_system="truecolor")
    render([HOSTILE], OutputFormat.table, out, keys=KEYS, console=console)
    text = out.getvalue()
    # the only escape sequences are rich's own styling (bold header), never the image's
    for dangerous in ("\x1b[31m", "\x1b]0;", "\x1b]8;", "\x07", "\x1b[2J", "\u202e", "\r"):
        assert dangerous not in text
    assert "[bold red]x[/]" in text
    assert "[link=https://example.invalid]m[/link]" in text
    assert "\\x1b[31m" in text


def test_csv_round_trips_and_neutralises_formulas() -> None:
    out = io.StringIO()
    render([HOSTILE], OutputFormat.csv, out, keys=KEYS)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == KEYS
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["make"] == "'" + HOSTILE["make"]
    assert cells["model"].startswith("'@")
    assert cells["software"].startswith("'+")
    assert cells["lens_model"].startswith("'-")
    assert cells["serial"] == "'" + HOSTILE["serial"]
    assert cells["latitude"] == "-33.5"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_csv_on_a_terminal_shows_control_characters_as_escapes() -> None:
    """Exact values are for files and pipes; on a terminal a tag's escape sequence, bell, bidi
    override or carriage return is shown, not obeyed (as in the table)."""
    out = Terminal()
    render([HOSTILE], OutputFormat.csv, out, keys=KEYS)
    text = out.getvalue()
    assert not CONTROL.search(text.replace("\r\n", "")), repr(text)
    rows = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["make"] == "'" + inert(HOSTILE["make"])  # still no formula
    assert cells["lens_model"] == "'" + inert(HOSTILE["lens_model"])
    assert cells["latitude"] == "-33.5"


@pytest.mark.parametrize("fmt", [OutputFormat.json, OutputFormat.jsonl])
def test_json_is_valid_and_exact(fmt: OutputFormat) -> None:
    out = io.StringIO()
    render([HOSTILE, HOSTILE], fmt, out, keys=KEYS)
    if fmt is OutputFormat.json:
        rows = json.loads(out.getvalue())
    else:
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows == [HOSTILE, HOSTILE]
    assert list(rows[0]) == KEYS


class CountingStream(io.StringIO):
    """A text stream that counts the writes reaching it (each one a system call where output
    is unbuffered, as with PYTHONUNBUFFERED=1)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.mark.parametrize(
    "fmt", [OutputFormat.json, OutputFormat.jsonl, OutputFormat.csv, OutputFormat.paths]
)
def test_many_rows_reach_the_stream_in_a_few_large_writes(fmt: OutputFormat) -> None:
    rows = [{**HOSTILE, "path": f"/photos/{i:05}.jpg"} for i in range(3000)]
    one_by_one = io.StringIO()
    {
        OutputFormat.json: lambda: write_json(rows, one_by_one),
        OutputFormat.jsonl: lambda: write_jsonl(rows, one_by_one),
        OutputFormat.csv: lambda: write_csv(rows, KEYS, one_by_one),
        OutputFormat.paths: lambda: write_paths(rows, one_by_one),
    }[fmt]()
    out = CountingStream()
    render(rows, fmt, out, keys=KEYS)
    assert out.getvalue() == one_by_one.getvalue()  # the same text, all of it
    assert out.writes <= len(out.getvalue()) // Batched.BATCH + 1 < len(rows) // 10


def test_paths0_reaches_the_stream_in_a_few_large_writes() -> None:
    rows = [{"path": f"/photos/{i:05}.jpg"} for i in range(3000)]
    raw = CountingBytes()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    render(rows, OutputFormat.paths0, out, keys=["path"])
    assert raw.getvalue() == b"".join(f"/photos/{i:05}.jpg".encode() + b"\0" for i in range(3000))
    assert raw.writes <= 10


class CountingBytes(io.BytesIO):
    writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


def test_empty_json_is_an_empty_list() -> None:
    out = io.StringIO()
    render([], OutputFormat.json, out, keys=KEYS)
    assert json.loads(out.getvalue()) == []


def test_any_string_renders_as_valid_inert_json_csv_and_text() -> None:
    """Random strings over controls, C1, bidi, surrogates (non-UTF-8 name bytes) and plain
    text: every output is valid UTF-8 with nothing a terminal or spreadsheet would act on."""
    import random

    from catalog.render import CONTROL, JSON_UNSAFE, dumps, valid

    rng = random.Random(20261125)
    special = [0x61C, 0x200E, 0x2028, 0x202E, 0x2066, 0xD800, 0xDC80, 0xDCFF, 0x1F600, 0xFEFF]
    alphabet = [chr(c) for c in [*range(0x00, 0x180), *special]]
    for _ in range(3000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        value = {"path": s, "list": [s, None, 1.5]}
        text = dumps(value)
        text.encode("utf-8")  # no lone surrogate left
        assert not JSON_UNSAFE.search(text), repr(s)
        assert json.loads(text) == valid(value)
        shown = inert(s)
        assert not CONTROL.search(shown), repr(s)
        assert shown == s or not (s.isascii() and s.isprintable())
        cell = csv_cell(s)
        assert isinstance(cell, str) and not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        cell.encode("utf-8")


DIGEST = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "/p/a.jpg",
            b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  /p/a.jpg\n",
        ),
        ("/p/ lead.jpg", DIGEST.lower().encode() + b"  /p/ lead.jpg\n"),
        ("/p/two\nlines.jpg", b"\\" + DIGEST.lower().encode() + b"  /p/two\\nlines.jpg\n"),
        ("/p/car\rriage.jpg", b"\\" + DIGEST.lower().encode() + b"  /p/car\\rriage.jpg\n"),
        ("/p/back\\slash.jpg", b"\\" + DIGEST.lower().encode() + b"  /p/back\\\\slash.jpg\n"),
        ("/p/\x1b[31mred.jpg", DIGEST.lower().encode() + b"  /p/\x1b[31mred.jpg\n"),
        ("/p/caf\udce9.jpg", DIGEST.lower().encode() + b"  /p/caf\xe9.jpg\n"),
    ],
)
def test_a_checksum_list_is_what_sha256sum_writes(name: str, line: bytes) -> None:
    """GNU coreutils' lines: lower-case digest, two spaces, the name's exact bytes; a name with
    a backslash, newline or carriage return escaped and its line begun by a backslash."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    left_out = render(
        [{"path": name, "sha256": DIGEST}], OutputFormat.sha256sum, out, keys=["path"]
    )
    assert (raw.getvalue(), left_out) == (line, 0)


def test_a_checksum_list_leaves_out_and_counts_files_without_the_digest() -> None:
    rows = [
        {"path": "/p/a.jpg", "sha256": DIGEST, "blake2b": None},
        {"path": "/p/b.jpg", "sha256": None, "blake2b": "ab" * 32},
        {"path": "/p/c.jpg", "sha256": None, "blake2b": None},
    ]
    out = io.StringIO()
    assert write_checksums(rows, "sha256", out) == 2
    assert out.getvalue() == f"{DIGEST.lower()}  /p/a.jpg\n"
    out = io.StringIO()
    assert render(rows, OutputFormat.b2sum, out, keys=["path"]) == 2
    assert out.getvalue() == f"{'ab' * 32}  /p/b.jpg\n"


def test_a_checksum_list_on_a_terminal_shows_names_inert() -> None:
    out = Terminal()
    rows = [
        {"path": f"/p/{c}x.jpg", "sha256": DIGEST} for c in ("\x1b]0;t\x07", "\u202e", "\udce9")
    ]
    write_checksums(rows, "sha256", out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and not CONTROL.search(out.getvalue().replace("\n", ""))
    assert lines[0] == f"\\{DIGEST.lower()}  /p/\\\\x1b]0;t\\\\x07x.jpg"  # escaped, then as GNU
    assert lines[1] == f"\\{DIGEST.lower()}  /p/\\\\u202ex.jpg"


def test_a_checksum_list_reaches_the_stream_in_a_few_large_writes() -> None:
    rows = [{"path": f"/photos/{i:05}.jpg", "sha256": DIGEST} for i in range(3000)]
    raw = CountingBytes()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    render(rows, OutputFormat.sha256sum, out, keys=["path"])
    assert raw.getvalue().count(b"\n") == 3000 and raw.writes <= 5


def test_paths0_on_a_terminal_shows_names_inert() -> None:
    """Exact bytes are for a program reading a pipe; a terminal would obey a name's escapes."""
    out = Terminal()
    render([{"path": "/p/\x1b[2Jx.jpg"}, {"path": "/p/caf\udce9.jpg"}], OutputFormat.paths0, out,
           keys=["path"])  # fmt: skip
    assert out.getvalue() == "/p/\\x1b[2Jx.jpg\0/p/caf\\xe9.jpg\0"
