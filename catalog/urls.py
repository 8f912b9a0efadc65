"""Where the catalog lives: a path or SQLAlchemy URL, from --db, PHOTOCAT_DB or the default."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote

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
    resolved = str(path.resolve())
    try:
        # Quoted as SQLAlchemy quotes a URL's database: a '?' in a file name would otherwise
        # start a query string, and '%41' be read as 'A' (the catalog made at another path).
        return f"sqlite:///{quote(resolved, safe=' +/')}"
    except UnicodeEncodeError:  # a name of bytes that are not UTF-8: no URL can hold it
        raise CatalogError(
            f"cannot use {resolved} as a catalog: its path is not valid UTF-8"
        ) from None


def new_sqlite_file(url: str) -> bool:
    """Whether `url` (as database_url makes it) names a SQLite catalog file that does not exist
    yet. False whenever in doubt (another database, memory, a query string)."""
    scheme, sep, quoted = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite" or "?" in quoted:
        return False
    path = unquote(quoted)  # as SQLAlchemy reads the URL's database
    return path not in ("", ":memory:") and not os.path.lexists(path)
