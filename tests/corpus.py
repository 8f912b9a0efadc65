"""Where the shared corpus is: one setting, PHOTOCAT_CORPUS (default ../shared/corpus).

Without it the corpus tests skip with a visible reason; PHOTOCAT_REQUIRE_CORPUS=1 (set by .ci/run)
turns that skip into a failure so CI always runs them.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("PHOTOCAT_CORPUS", REPO.parent / "shared" / "corpus")).resolve()
IMAGES = CORPUS / "images"
BROKEN = CORPUS / "broken"


def require_corpus() -> Path:
    """Return the corpus folder, or skip (fail under PHOTOCAT_REQUIRE_CORPUS=1) when absent."""
    if (CORPUS / "truth.json").is_file() and IMAGES.is_dir():
        return CORPUS
    reason = f"shared corpus not found at {CORPUS} (set PHOTOCAT_CORPUS)"
    if os.environ.get("PHOTOCAT_REQUIRE_CORPUS") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@cache
def truth() -> dict[str, dict]:
    """truth.json keyed by file name."""
    require_corpus()
    return {t["file"]: t for t in json.loads((CORPUS / "truth.json").read_text())}


@cache
def broken_expected() -> dict[str, dict]:
    require_corpus()
    return {e["file"]: e for e in json.loads((BROKEN / "expected.json").read_text())}


# Containers photocat does not read: Pillow cannot identify them, so they are catalogued with an
# error and no metadata. Every corpus test excludes them from its expectations by this one list.
NOT_READ = {
    "RAF": "Fujifilm RAF: not a TIFF container; Pillow cannot identify it",
    "MRW": "Minolta MRW: proprietary container; Pillow cannot identify it",
    "RW2": "Panasonic RW2: TIFF variant with magic 0x55; Pillow cannot identify it",
}


def readable(t: dict) -> bool:  # type: ignore[type-arg]
    return t["format"] not in NOT_READ
