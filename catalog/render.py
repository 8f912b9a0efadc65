"""Output: table, json, jsonl, csv, paths. Strings from images are attacker-controlled, so every
renderer makes them inert: no terminal escapes, no rich markup, no spreadsheet formulas."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import IO, Any

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    paths = "paths"


def inert(value: object) -> str:
    """Text safe for a terminal: control characters (ESC, BEL, CR, bidi overrides...) shown as
    \\xNN / \\uNNNN escapes instead of being sent to the terminal."""
    text = "" if value is None else str(value)

    def esc(m: re.Match[str]) -> str:
        c = ord(m.group())
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return CONTROL.sub(esc, text)


def csv_cell(value: object) -> object:
    """Neutralise a text cell a spreadsheet would run as a formula (OWASP: prefix a quote)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_json(rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    out.write("[")
    for i, row in enumerate(rows):
        out.write(",\n " if i else "\n ")
        out.write(json.dumps(row, ensure_ascii=False))
    out.write("\n]\n")


def write_jsonl(rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_csv(rows: Iterable[dict[str, Any]], keys: Sequence[str], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    for row in rows:
        writer.writerow([csv_cell(row.get(k)) for k in keys])


def write_paths(rows: Iterable[dict[str, Any]], out: IO[str]) -> None:
    for row in rows:
        out.write(inert(row["path"]) + "\n")


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
) -> None:
    """Write rows in the chosen format. Table output goes through a rich console."""
    if fmt is OutputFormat.json:
        write_json(rows, out)
    elif fmt is OutputFormat.jsonl:
        write_jsonl(rows, out)
    elif fmt is OutputFormat.csv:
        write_csv(rows, keys, out)
    elif fmt is OutputFormat.paths:
        write_paths(rows, out)
    else:
        from rich.console import Console

        # Piped or redirected, a table is as wide as its content: nothing folded or cut.
        wide = None if out.isatty() else 10_000
        console = console or Console(file=out, width=wide, no_color=wide is not None)
        console.print(table(rows, table_columns or keys))
