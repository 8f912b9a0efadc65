"""Run photocat in the benchmarks as an installed photocat runs: with its bytecode compiled.

`pip install photocat` compiles the package's bytecode at install time; an editable checkout
writes it on first use, unless PYTHONDONTWRITEBYTECODE is set (as it is on some CI and
sandbox machines), in which case every command recompiles photocat's own modules from source:
~20 ms of each start-up that no installed photocat pays."""

from __future__ import annotations

import compileall
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def as_installed() -> None:
    """Compile catalog/ once and let the photocat processes started from here use it."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    compileall.compile_dir(REPO / "catalog", quiet=1)
