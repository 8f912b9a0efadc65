"""Regenerate the small demo library in tests/data/demo (used by the README and the fast tests).

.venv/bin/python tests/data/make_demo.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from photos import make_photo  # noqa: E402

DEMO = HERE / "demo"

PHOTOS = [
    (
        "2016/paris.jpg",
        dict(
            make="samsung",
            model="SM-G920F",
            taken="2016:11:10 18:22:47",
            offset="+01:00",
            gps=(48.858370, 2.294481),
            altitude=35.0,
        ),
    ),
    (
        "2016/lyon.jpg",
        dict(
            make="samsung", model="SM-G920F", taken="2016:11:21 09:05:00", gps=(45.764043, 4.835659)
        ),
    ),
    (
        "2016/party.jpg",
        dict(make="Canon", model="Canon EOS 5D Mark III", taken="2016:12:31 23:59:59"),
    ),
    (
        "2017/sydney.jpg",
        dict(
            make="Apple",
            model="iPhone 6",
            taken="2017:01:15 07:30:00",
            offset="+11:00",
            gps=(-33.856784, 151.215297),
        ),
    ),
    ("2017/scan.png", dict(make=None, model=None, taken=None, fmt="PNG")),
]


def main() -> None:
    for rel, kwargs in PHOTOS:
        make_photo(DEMO / rel, size=(32, 24), **kwargs)  # type: ignore[arg-type]
    (DEMO / "2017" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe1 not really a jpeg")
    print(f"wrote {len(PHOTOS) + 1} files under {DEMO}")


if __name__ == "__main__":
    main()
