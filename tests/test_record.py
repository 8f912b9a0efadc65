"""The record's tag listing as stored: exact JSON for any string a file can hold."""

from __future__ import annotations

import json

import pytest

from catalog import record as rec
from catalog.record import PhotoRecord, RawTag, tags_json

HOSTILE = [
    "samsung",
    "",
    'quote " and backslash \\',
    "control \x00 \x07 \x1b[31m \n \r \t \x7f",
    "non-ASCII: Köln 東京 \u2028 \U0001f4f7",
    '=HYPERLINK("http://x")',
    "[/bold] </script>",
    "\ud800 lone surrogate",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_listing_is_the_json_of_the_tags(value: str) -> None:
    tags = [RawTag("IFD0", 0x010F, "Make", value), RawTag("Exif", 0x9003, value or "x", value)]
    listing = tags_json(PhotoRecord(tags=tags))
    assert json.loads(listing) == [[t.ifd, t.tag_id, t.name, t.value] for t in tags]
    # what json.dumps writes, compact: the same text whichever way it is made
    assert listing == json.dumps(json.loads(listing), ensure_ascii=False, separators=(",", ":"))


def test_no_tags() -> None:
    assert tags_json(PhotoRecord()) == "[]"


def test_many_distinct_tags_are_all_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    # a hostile file's thousands of unknown tags: each listed, the prefix cache stays bounded
    monkeypatch.setattr(rec, "_TAG_PREFIX", {})
    monkeypatch.setattr(rec, "_MAX_TAG_PREFIXES", 10)
    tags = [RawTag("IFD0", n, f"Tag0x{n:04X}", str(n)) for n in range(100)]
    for _ in range(2):  # the second time, most prefixes are not cached
        assert json.loads(tags_json(PhotoRecord(tags=tags))) == [
            ["IFD0", n, f"Tag0x{n:04X}", str(n)] for n in range(100)
        ]
    assert len(rec._TAG_PREFIX) == 10
