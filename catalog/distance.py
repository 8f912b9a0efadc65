"""Distances on the Earth, for "what was shot near here": pure arithmetic, no database.

A sphere of the mean Earth radius (IUGG, 6,371,008.8 m) and the haversine formula, as most map
tools use: within ~0.5% of the ellipsoid's true distance anywhere, far better than a phone's fix
over the kilometres a search covers. PostgreSQL computes the same formula in SQL (query.py),
SQLite calls `distance_m` itself (registered by store.py), so both backends agree.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
HALF_CIRCUMFERENCE_M = math.pi * EARTH_RADIUS_M  # no two points are farther apart
# Box edges are widened by this much (degrees, ~0.1 mm) so that a point the exact distance puts
# on the circle is never cut off by the rounding of the box's own arithmetic.
BOX_SLACK = 1e-9


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance in metres between two positions in decimal degrees."""
    # In this order of operations, as the SQL in query.py computes it.
    a = (
        math.sin(math.radians(lat2 - lat1) / 2) ** 2
        + math.cos(math.radians(lat1))
        * math.cos(math.radians(lat2))
        * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def sql_distance_m(lat1: object, lon1: object, lat2: object, lon2: object) -> float | None:
    """distance_m for SQLite: NULL (None) for a position it cannot measure, never an error."""
    try:
        return distance_m(lat1, lon1, lat2, lon2)  # type: ignore[arg-type]
    except (TypeError, ValueError):  # NULL, or a value that is no number
        return None


def bounding_box(
    lat: float, lon: float, radius_m: float
) -> tuple[float, float, list[tuple[float, float]] | None]:
    """(south, north, longitude ranges) holding every point within `radius_m` of (lat, lon):
    a cheap first test an index can serve, before the exact distance. The ranges are None when
    any longitude may be within reach (a pole inside the circle, or a circle wider than half
    the Earth); a circle across the antimeridian gets two ranges."""
    angle = radius_m / EARTH_RADIUS_M  # radians of arc
    south = lat - math.degrees(angle) - BOX_SLACK
    north = lat + math.degrees(angle) + BOX_SLACK
    if south <= -90 or north >= 90 or angle >= math.pi / 2:
        return max(south, -90.0), min(north, 90.0), None
    # The widest longitude of a circle that holds no pole: asin(sin(arc) / cos(latitude)).
    reach = math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(lat))))
    west = lon - math.degrees(reach) - BOX_SLACK
    east = lon + math.degrees(reach) + BOX_SLACK
    if east - west >= 360:
        return south, north, None
    if west < -180:
        return south, north, [(-180.0, east), (west + 360, 180.0)]
    if east > 180:
        return south, north, [(west, 180.0), (-180.0, east - 360)]
    return south, north, [(west, east)]
