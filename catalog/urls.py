"""Where the catalog lives: a path or SQLAlchemy URL, from --db, PHOTOCAT_DB or the default."""

from __future__ import annotations

import os
from pathlib import Path

from catalog.errors import CatalogError

DEFAULT_NAME = "catalog.db"


def default_path() -> Path:
    """The default catalog: a SQLite file in the user's data directory (platformdirs)."""
    from platformdirs import user_data_path

    return user_data_path("photocat", appauthor=False) / DEFAULT_NAME


def database_url(db: str | os.PathLike[str] | None = None) -> str:
    """Turn --db (a path or URL) into a SQLAlchemy URL; None means PHOTOCAT_DB, then the default
    (an empty PHOTOCAT_DB is unset). An empty --db is an error, not the current folder: it is
    more likely a script's unset variable than a choice."""
    if db is not None and not os.fspath(db):
        raise CatalogError("--db is empty: give a catalog file's path or a database URL")
    value = os.fspath(db) if db is not None else os.environ.get("PHOTOCAT_DB") or None
    if value is None:
        path = default_path()
    elif "://" in value:
        return value
    else:
        path = Path(value).expanduser()
    return f"sqlite:///{path.resolve()}"


def new_sqlite_file(url: str) -> bool:
    """Whether `url` (as database_url makes it) names a SQLite catalog file that does not exist
    yet. False whenever in doubt (another database, memory, a query string, %-escapes)."""
    scheme, sep, path = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite" or "?" in path or "%" in path:
        return False
    return path not in ("", ":memory:") and not os.path.lexists(path)
