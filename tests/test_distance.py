"""catalog.distance: the great-circle distance against an independent formula (3-D chords), and
the bounding box, which must hold every point within the distance: at the poles, across the
antimeridian, for circles wider than half the Earth."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.distance import (
    EARTH_RADIUS_M,
    HALF_CIRCUMFERENCE_M,
    bounding_box,
    distance_m,
    sql_distance_m,
)

latitudes = st.floats(-90, 90)
longitudes = st.floats(-180, 180)


def chord_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The same great-circle distance another way: the straight chord between the two points
    as 3-D unit vectors, turned into the arc it subtends."""

    def unit(lat: float, lon: float) -> tuple[float, float, float]:
        p, q = math.radians(lat), math.radians(lon)
        return math.cos(p) * math.cos(q), math.cos(p) * math.sin(q), math.sin(p)

    chord = math.dist(unit(lat1, lon1), unit(lat2, lon2))
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, chord / 2))


def destination(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    """The point `metres` from (lat, lon) along the initial bearing (degrees), on the sphere."""
    p, q, b = math.radians(lat), math.radians(lon), math.radians(bearing)
    d = metres / EARTH_RADIUS_M
    p2 = math.asin(
        max(-1.0, min(1.0, math.sin(p) * math.cos(d) + math.cos(p) * math.sin(d) * math.cos(b)))
    )
    q2 = q + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p), math.cos(d) - math.sin(p) * math.sin(p2)
    )
    lon2 = (math.degrees(q2) + 540) % 360 - 180
    return math.degrees(p2), lon2


@pytest.mark.parametrize(
    ("a", "b", "metres"),
    [
        ((48.8584, 2.2945), (48.8584, 2.2945), 0.0),
        ((0, 0), (1, 0), EARTH_RADIUS_M * math.pi / 180),  # a degree along a meridian
        ((0, 179.5), (0, -179.5), EARTH_RADIUS_M * math.pi / 180),  # across the antimeridian
        ((89.5, 0), (89.5, 180), EARTH_RADIUS_M * math.pi / 180),  # over the pole
        ((0, 0), (0, 180), HALF_CIRCUMFERENCE_M),  # antipodes
        ((90, 0), (-90, 0), HALF_CIRCUMFERENCE_M),
        ((90, 0), (90, 123), 0.0),  # every longitude is the pole
    ],
)
def test_known_distances(a: tuple[float, float], b: tuple[float, float], metres: float) -> None:
    assert distance_m(*a, *b) == pytest.approx(metres, rel=1e-12, abs=1e-6)


@settings(max_examples=500, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_distance_agrees_with_the_chord_formula(
    lat1: float, lon1: float, lat2: float, lon2: float
) -> None:
    d = distance_m(lat1, lon1, lat2, lon2)
    assert 0 <= d <= HALF_CIRCUMFERENCE_M * (1 + 1e-12)
    assert d == pytest.approx(chord_distance_m(lat1, lon1, lat2, lon2), rel=1e-9, abs=1e-3)
    assert d == distance_m(lat2, lon2, lat1, lon1) or math.isclose(
        d, distance_m(lat2, lon2, lat1, lon1), rel_tol=1e-12, abs_tol=1e-6
    )


def in_box(
    box: tuple[float, float, list[tuple[float, float]] | None], lat: float, lon: float
) -> bool:
    south, north, ranges = box
    return south <= lat <= north and (ranges is None or any(w <= lon <= e for w, e in ranges))


radii = st.one_of(
    st.floats(0, 2_000),
    st.floats(0, 200_000),
    st.floats(0, 25_000_000),
)


@settings(max_examples=2000, deadline=None)
@given(latitudes, longitudes, radii, st.floats(0, 360), st.floats(0, 1))
def test_every_point_within_the_distance_is_inside_the_box(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    # A point at most `radius` away, in any direction: on the circle itself when fraction is 1.
    lat2, lon2 = destination(lat, lon, bearing, radius * fraction)
    if distance_m(lat, lon, lat2, lon2) > radius:  # rounding put it just outside the circle
        return
    assert in_box(bounding_box(lat, lon, radius), lat2, lon2)


@settings(max_examples=500, deadline=None)
@given(latitudes, longitudes, radii)
def test_the_box_is_a_box_of_the_globe(lat: float, lon: float, radius: float) -> None:
    south, north, ranges = bounding_box(lat, lon, radius)
    assert -90 <= south <= lat <= north <= 90
    if ranges is not None:
        assert 1 <= len(ranges) <= 2
        assert all(-180 <= w <= e <= 180 for w, e in ranges)
        assert any(w <= lon <= e for w, e in ranges)


@pytest.mark.parametrize(
    ("lat", "lon", "radius", "ranges"),
    [
        (48.8584, 2.2945, 1000, 1),  # an ordinary circle: one range of longitudes
        (-17.0, 179.99, 5000, 2),  # across the antimeridian, east side
        (-17.0, -179.99, 5000, 2),  # and west side
        (89.99, 10, 5000, None),  # the North Pole inside the circle: any longitude
        (-89.99, 10, 5000, None),
        (0, 0, HALF_CIRCUMFERENCE_M, None),  # the whole Earth
    ],
)
def test_box_shapes(lat: float, lon: float, radius: float, ranges: int | None) -> None:
    box = bounding_box(lat, lon, radius)
    assert (None if box[2] is None else len(box[2])) == ranges


def test_a_position_sqlite_cannot_measure_is_null_not_an_error() -> None:
    assert sql_distance_m(None, 2.0, 48.0, 2.0) is None
    assert sql_distance_m("x", 2.0, 48.0, 2.0) is None
    assert sql_distance_m(48.0, 2.0, 48.0, 2.0) == 0.0
