"""Output: table, json, jsonl, csv, paths, paths0, sha256sum, b2sum. Strings from images and file
names are attacker-controlled, so every renderer makes them inert: no terminal escapes, no rich
markup, no spreadsheet formulas, always valid UTF-8.

File names that are not valid UTF-8 arrive with their bytes surrogateescape'd (os.fsdecode). Text
outputs show such a byte as \\xNN, like a control character; `paths0` and the checksum lists
(`sha256sum`, `b2sum`) write the exact bytes to a file or a pipe, since a program reads them; on a
terminal they too show every name as `inert` does.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from itertools import islice
from typing import IO, Any, AnyStr, Generic, Protocol

from catalog.paths import SURROGATE

CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# Valid in JSON strings as they are, but a terminal may act on them: written as \uXXXX escapes.
JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
JSON_UNSAFE_OR_SURROGATE = re.compile(JSON_UNSAFE.pattern[:-1] + r"\ud800-\udfff]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    paths = "paths"
    paths0 = "paths0"
    sha256sum = "sha256sum"
    b2sum = "b2sum"


# The checksum lists: each format's digest key, as `sha256sum` and `b2sum -l 256` write them.
CHECKSUM_KEYS = {OutputFormat.sha256sum: "sha256", OutputFormat.b2sum: "blake2b"}


def inert(value: object) -> str:
    """Text safe for a terminal: control characters (ESC, BEL, CR, bidi overrides...) shown as
    \\xNN / \\uNNNN escapes instead of being sent to the terminal."""
    text = "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # the common case, checked in C
        return text
    return CONTROL.sub(_escape, text)


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:  # surrogateescape: the file name's own byte
        return f"\\x{c - 0xDC00:02x}"
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def valid(value: Any) -> Any:
    """Value with every string made valid Unicode (nested in dicts and lists too): a lone
    surrogate, i.e. a file-name byte that is not UTF-8, becomes \\xNN as `inert` shows it."""
    if isinstance(value, str):
        if value.isascii():
            return value
        return SURROGATE.sub(_escape, value) if SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {k: valid(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [valid(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON that is valid whatever the strings hold, and inert on a terminal (C1 controls and
    bidi overrides escaped as \\uXXXX; JSON itself escapes the C0 controls)."""
    # json.dumps(value, ensure_ascii=False) would build a new encoder for every record.
    encoder = _ENCODER if indent is None else json.JSONEncoder(ensure_ascii=False, indent=indent)
    text = encoder.encode(value)
    if text.isascii() and "\x7f" not in text:  # JSON escapes the other ASCII controls
        return text
    # json.dumps passes lone surrogates through as they are: each becomes what `valid` makes
    # of it, its backslash escaped for JSON (the same text as dumping valid(value), faster).
    return JSON_UNSAFE_OR_SURROGATE.sub(_json_escape, text)


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # what json.dumps(v, ensure_ascii=False) uses


def _json_escape(m: re.Match[str]) -> str:
    c = m.group()
    if "\ud800" <= c <= "\udfff":
        return _escape(m).replace("\\", "\\\\")
    return f"\\u{ord(c):04x}"


def csv_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would run as a formula (OWASP: prefix a quote)."""
    if isinstance(value, str):
        value = valid(value)
        if value.startswith(FORMULA_START):
            return "'" + value
    return value


class Sink(Protocol):
    """Where the text writers write: a text stream, or a Batched one."""

    def write(self, text: str, /) -> int: ...


class Batched(Generic[AnyStr]):
    """Writes gathered and passed on to a stream (text or bytes) BATCH items at a time. Where
    output is unbuffered (PYTHONUNBUFFERED=1, common in containers) each row's write is a
    system call of its own: 5,498 of them took ~45 ms of a 0.5 s search."""

    BATCH = 64 * 1024

    def __init__(self, out: IO[AnyStr]) -> None:
        self.out = out
        self._parts: list[AnyStr] = []
        self._size = 0

    def write(self, data: AnyStr) -> int:
        self._parts.append(data)
        self._size += len(data)
        if self._size >= self.BATCH:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._parts:
            self.out.write(self._parts[0][:0].join(self._parts))  # "" or b"" joins them
            self._parts.clear()
            self._size = 0
        self.out.flush()


def write_json(rows: Iterable[dict[str, Any]], out: Sink) -> None:
    out.write("[")
    for i, row in enumerate(rows):
        out.write(",\n " if i else "\n ")
        out.write(dumps(row))
    out.write("\n]\n")


def write_jsonl(rows: Iterable[dict[str, Any]], out: Sink) -> None:
    for row in rows:
        out.write(dumps(row) + "\n")


def write_csv(
    rows: Iterable[dict[str, Any]], keys: Sequence[str], out: Sink, *, terminal: bool = False
) -> None:
    """CSV for a spreadsheet: values exact, but never a formula. On a terminal (`terminal`),
    each text cell is also shown as `inert` shows text: an escape sequence in a tag must not
    drive the terminal of someone reading the CSV there (a file or a pipe gets the exact
    values)."""
    # RFC 4180 line ends: with "\n" alone Python's writer leaves a bare "\r" in a value
    # unquoted, and spreadsheets then split the row there (a tag could forge rows).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(keys)
    cell = _terminal_cell if terminal else csv_cell
    for row in rows:
        writer.writerow([cell(row.get(k)) for k in keys])


def _terminal_cell(value: object) -> object:
    value = csv_cell(value)
    return inert(value) if isinstance(value, str) else value


def write_paths(rows: Iterable[dict[str, Any]], out: Sink) -> None:
    """One path per line, always: a newline (or any control character, or a byte that is not
    UTF-8) in a name is written as a \\xNN escape, so no name can forge a second line."""
    for row in rows:
        out.write(inert(row["path"]) + "\n")


class _Names:
    """Where file names go as a program reads them: their exact bytes to a file or a pipe (the
    str form, surrogates and all, to a text-only stream such as io.StringIO); on a terminal,
    which would act on a name's escape sequences, as `inert` shows them. Written in large
    writes (Batched)."""

    def __init__(self, out: IO[str]) -> None:
        self.terminal = out.isatty()
        binary = None if self.terminal else getattr(out, "buffer", None)
        if binary is not None:
            out.flush()  # what the text layer holds goes first
        self._binary = binary is not None
        self._sink: Batched[Any] = Batched(binary if binary is not None else out)

    def shown(self, name: str) -> str:
        """The name as it will be written (inert on a terminal)."""
        return inert(name) if self.terminal else name

    def write(self, head: str, name: str, tail: str) -> None:
        """ASCII `head`, the name (as `shown` gave it), ASCII `tail`."""
        if self._binary:
            self._sink.write(head.encode("ascii") + os.fsencode(name) + tail.encode("ascii"))
        else:
            self._sink.write(head + name + tail)

    def flush(self) -> None:
        self._sink.flush()


def write_paths0(rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """Each path's exact bytes followed by NUL (`xargs -0`, `while read -d ''`): the one output
    that gives any file name back unchanged (POSIX names never hold NUL). On a terminal each
    name is shown as `inert` shows it (_Names)."""
    names = _Names(out)
    for row in rows:
        names.write("", names.shown(row["path"]), "\0")
    names.flush()


def write_checksums(rows: Iterable[dict[str, Any]], key: str, out: IO[str]) -> int:
    """A checksum list as GNU `sha256sum` (or `b2sum -l 256`) writes one, for `sha256sum -c`:
    `DIGEST  NAME` a line, the name's exact bytes, and a name holding a backslash, a newline or
    a carriage return written with those escaped and the line begun by a backslash (coreutils'
    own convention, so no name can forge a line). On a terminal each name is shown as `inert`
    shows it instead (_Names). A row without the digest (not hashed, or with the other
    algorithm) cannot be listed: returns how many were left out, for the caller to say."""
    left_out = 0
    names = _Names(out)
    for row in rows:
        digest = row.get(key)
        if not digest:
            left_out += 1
            continue
        name = names.shown(row["path"])
        prefix = ""
        if "\\" in name or "\n" in name or "\r" in name:
            prefix = "\\"
            name = name.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        names.write(f"{prefix}{digest.lower()}  ", name, "\n")
    names.flush()
    return left_out


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str | None = None) -> Any:
    """A rich Table whose cells are plain Text (never parsed as markup) made inert."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, header_style="bold", show_lines=False)
    for c in columns:
        t.add_column(c, overflow="fold")
    for row in rows:
        t.add_row(*(Text(inert(_cell(row.get(c)))) for c in columns))
    return t


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".")
    return str(value)


def render(
    rows: Iterable[dict[str, Any]],
    fmt: OutputFormat,
    out: IO[str],
    *,
    keys: Sequence[str],
    table_columns: Sequence[str] | None = None,
    console: Any = None,
) -> int:
    """Write rows in the chosen format. Table output goes through a rich console. Returns how
    many rows could not be written in it: those without a digest, in a checksum list."""
    text_writers = {
        OutputFormat.json: write_json,
        OutputFormat.jsonl: write_jsonl,
        OutputFormat.csv: lambda rows, sink: write_csv(rows, keys, sink, terminal=out.isatty()),
        OutputFormat.paths: write_paths,
    }
    if fmt in text_writers:
        batched = Batched(out)
        text_writers[fmt](rows, batched)
        batched.flush()
    elif fmt is OutputFormat.paths0:
        write_paths0(rows, out)
    elif fmt in CHECKSUM_KEYS:
        return write_checksums(rows, CHECKSUM_KEYS[fmt], out)
    else:
        # Piped or redirected, a table is as wide as its content: nothing folded or cut.
        wide = None if out.isatty() else PIPED_WIDTH
        if wide is not None and console is None:
            rows = write_piped_table(rows, table_columns or keys, out)
            if rows is None:
                return 0
        from rich.console import Console

        console = console or Console(file=out, width=wide, no_color=wide is not None)
        console.print(table(rows, table_columns or keys))
    return 0


PIPED_WIDTH = 10_000  # a piped table's width limit (beyond it rich shrinks and folds columns)


def write_piped_table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], out: IO[str]
) -> list[dict[str, Any]] | None:
    """The table exactly as rich draws it on a console PIPED_WIDTH wide without a terminal
    (no styles, columns as wide as their widest cell), written directly: rich measures and
    renders every cell as a styled segment, which costs ~1 ms a row (a 5,000-row search took
    seconds). Returns None when written, or the rows (read) when the table is too wide to be
    drawn this way and rich must fold it."""

    def cell_len(text: str) -> int:  # rich's width of a text; printable ASCII is 1 a character
        if text.isascii():
            return len(text)
        from rich.cells import cell_len as width  # rich only for tables that need it

        return int(width(text))

    read = list(rows)
    cells = [[inert(_cell(v)) for v in map(row.get, columns)] for row in read]
    by_column = list(zip(*cells, strict=True)) if cells else [() for _ in columns]
    widths: list[int] = []
    specs: list[str] = []  # each column's field in the line's format string
    shown: list[Sequence[str]] = []  # each column's cells, padded here unless the format does
    for name, column in zip(columns, by_column, strict=True):
        if "".join(column).isascii():  # printable once inert: as wide as it is long
            width = max(cell_len(name), max(map(len, column), default=0))
            specs.append(f"{{:<{width}}}")  # str.format pads by len
            shown.append(column)
        else:
            lens = [cell_len(text) for text in column]
            width = max(cell_len(name), max(lens, default=0))
            specs.append("{}")
            shown.append([t + " " * (width - n) for t, n in zip(column, lens, strict=True)])
        widths.append(width)
    if sum(widths) + 3 * len(widths) + 1 > PIPED_WIDTH:
        return read

    head = [t + " " * (w - cell_len(t)) for t, w in zip(columns, widths, strict=True)]
    line = "│ " + " │ ".join(specs) + " │\n"
    out.write("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓\n")
    out.write("┃ " + " ┃ ".join(head) + " ┃\n")
    out.write("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩\n")
    lines = zip(*shown, strict=True)
    while chunk := list(islice(lines, 1000)):
        out.write("".join(line.format(*texts) for texts in chunk))
    out.write("└" + "┴".join("─" * (w + 2) for w in widths) + "┘\n")
    return None
