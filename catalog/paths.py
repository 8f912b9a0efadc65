"""File paths into and out of the catalog database, reversibly, whatever bytes they hold.

POSIX file names are bytes. Python decodes them with surrogateescape, so a name that is not valid
UTF-8 (b"caf\\xe9.jpg") arrives as "caf\\udce9.jpg", and neither SQLite nor PostgreSQL text can
hold that lone surrogate. Paths are therefore stored in a text form where

* every surrogate U+D800..U+DFFF becomes U+FDD0 followed by its code as 4 lowercase hex digits
  (b"caf\\xe9.jpg" -> "caf\\ufdd0dce9.jpg");
* U+FDD0 itself becomes U+FDD0 U+FDD0 (a Unicode noncharacter, reserved for such internal use:
  real names do not hold it, but if one does it still round-trips);
* every other character is stored as it is, so ordinary paths look exactly as they always did.

The mapping works character by character: it is injective, `from_db(to_db(p)) == p`, and it keeps
prefixes (`to_db(a + b) == to_db(a) + to_db(b)`), so folder prefixes, LIKE patterns and
substr() lengths computed on the stored form stay right. store.py and query.py, the only modules
that speak SQL, apply it where paths enter and leave the database; ingest, watch and the CLI only
ever see real paths (str, surrogateescape'd like os.fsdecode gives them).
"""

from __future__ import annotations

import os
import re

ESCAPE = "\ufdd0"
# A byte that was not UTF-8 (surrogateescape'd, from a file name or a command line), or junk.
SURROGATE = re.compile("[\ud800-\udfff]")
_TO_DB = re.compile("[\ud800-\udfff\ufdd0]")
_FROM_DB = re.compile("\ufdd0(\ufdd0|d[89a-f][0-9a-f]{2})")


def to_db(path: str) -> str:
    """A real path (possibly holding surrogateescape'd bytes) as the catalog stores it."""
    if not _TO_DB.search(path):
        return path  # the common case: nothing to escape
    return _TO_DB.sub(lambda m: ESCAPE * 2 if m[0] == ESCAPE else f"{ESCAPE}{ord(m[0]):04x}", path)


def from_db(text: str) -> str:
    """The real path back from its stored form."""
    if ESCAPE not in text:
        return text
    return _FROM_DB.sub(lambda m: ESCAPE if m[1] == ESCAPE else chr(int(m[1], 16)), text)


def relative_to(path: str, folder: str) -> str | None:
    """Where an absolute, normalised `path` lies below `folder`: "" when it is the folder, the
    part below it ('a/b', '/'-separated as rel_path and prefixes are stored) when inside, None
    otherwise. By path components: /photos2 is not inside /photos."""
    if path == folder:
        return ""
    base = folder.rstrip(os.sep) + os.sep
    if path.startswith(base):
        return path[len(base) :].replace(os.sep, "/")
    return None
