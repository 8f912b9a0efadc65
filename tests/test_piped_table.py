"""render's piped table: drawn directly (fast) but exactly as rich draws it."""

from __future__ import annotations

import io
import random

import pytest
from rich.console import Console

from catalog.render import PIPED_WIDTH, OutputFormat, render, table

COLUMNS = ["path", "make", "model", "captured_at", "latitude", "error"]
PIECES = [
    "a", "Z", "日", "本", "😀", "e\u0301", "\x1b[31m", "\u202e", "\udcff", " ", "ß", "\t",
    "中文", "ﾊ", "\u200b", "\ufe0f", "🇫🇷", "[bold]x[/]", "=1+1", "x" * 50,
]  # fmt: skip


class Piped(io.StringIO):
    def isatty(self) -> bool:
        return False


def by_rich(rows: list[dict[str, object]], columns: list[str]) -> str:
    out = Piped()
    Console(file=out, width=PIPED_WIDTH, no_color=True).print(table(rows, columns))
    return out.getvalue()


def piped(rows: list[dict[str, object]], columns: list[str]) -> str:
    out = Piped()
    render(iter(rows), OutputFormat.table, out, keys=columns, table_columns=columns)
    return out.getvalue()


ASCII_PIECES = ["a", "Z", " ", "\t", "\x1b[31m", "=1+1", "{0}", "{", "}", "%s", "x" * 50, "[b]x[/]"]


@pytest.mark.parametrize(
    "pieces",
    [PIECES, ASCII_PIECES],  # ASCII columns are padded by a format string, the others cell by cell
    ids=["any", "ascii"],
)
def test_piped_table_is_what_rich_draws(pieces: list[str]) -> None:
    rng = random.Random(20261125)
    for _ in range(200):
        rows: list[dict[str, object]] = []
        for _ in range(rng.randint(0, 5)):
            row: dict[str, object] = {}
            for c in COLUMNS:
                k = rng.random()
                if k < 0.15:
                    row[c] = None
                elif k < 0.3:
                    row[c] = rng.uniform(-180, 180)
                elif k < 0.35:
                    row[c] = rng.randint(-5, 10**6)
                else:
                    row[c] = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
            rows.append(row)
        assert piped(rows, COLUMNS) == by_rich(rows, COLUMNS), rows


def test_a_table_too_wide_for_a_pipe_is_left_to_rich() -> None:
    rows: list[dict[str, object]] = [{"path": "/p/" + "x" * PIPED_WIDTH, "make": "Canon"}]
    assert piped(rows, ["path", "make"]) == by_rich(rows, ["path", "make"])
