"""Typed ORM classes (SQLAlchemy 2.x) mapped onto the tables of catalog.tables.

The columns are declared once, in catalog.tables; here they are typed for the ORM. photocat's own
store and queries are Core statements over the same tables (no ORM import at start-up); these
classes are for code that wants objects: Alembic's model comparison, tests, scripts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from catalog import tables


class Base(DeclarativeBase):
    metadata = tables.metadata


class Root(Base):
    """A catalogued folder as one machine sees it: two hosts' `/photos` are different roots."""

    __table__ = tables.roots

    id: Mapped[int]
    host: Mapped[str]
    path: Mapped[str]
    added_at: Mapped[datetime]
    last_scan_at: Mapped[datetime | None]


class Device(Base):
    """A camera or phone. Make and model verbatim ('' when absent)."""

    __table__ = tables.devices

    id: Mapped[int]
    make: Mapped[str]
    model: Mapped[str]


class Place(Base):
    """A town photos were taken in or near, found from their GPS position."""

    __table__ = tables.places

    id: Mapped[int]
    country_code: Mapped[str]
    country: Mapped[str]
    region: Mapped[str]
    city: Mapped[str]


class Photo(Base):
    __table__ = tables.photos

    id: Mapped[int]
    root_id: Mapped[int]
    rel_path: Mapped[str]
    size: Mapped[int]
    mtime_ns: Mapped[int]
    sha256: Mapped[str | None]
    blake2b: Mapped[str | None]
    format: Mapped[str | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    orientation: Mapped[int | None]
    captured_at: Mapped[datetime | None]
    captured_from: Mapped[str | None]
    subsec: Mapped[str | None]
    utc_offset: Mapped[str | None]
    offset_from: Mapped[str | None]
    captured_at_utc: Mapped[datetime | None]
    time_source: Mapped[str | None]
    time_zone: Mapped[str | None]
    sort_time: Mapped[datetime | None]
    device_id: Mapped[int | None]
    place_id: Mapped[int | None]
    lens_model: Mapped[str | None]
    serial: Mapped[str | None]
    iso: Mapped[int | None]
    exposure_time: Mapped[float | None]
    f_number: Mapped[float | None]
    focal_length: Mapped[float | None]
    software: Mapped[str | None]
    warnings: Mapped[str | None]
    error: Mapped[str | None]
    first_seen: Mapped[datetime]
    last_scanned: Mapped[datetime]
    read_by: Mapped[str | None]

    root: Mapped[Root] = relationship()
    device: Mapped[Device | None] = relationship()
    place: Mapped[Place | None] = relationship()
    gps: Mapped[GpsPosition | None] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class GpsPosition(Base):
    __table__ = tables.gps_positions

    photo_id: Mapped[int]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    altitude: Mapped[float | None]
    gps_time_utc: Mapped[datetime | None]

    photo: Mapped[Photo] = relationship(back_populates="gps")


class RawTags(Base):
    """The full tag listing of one photo, as JSON [[ifd, tag_id, name, value], ...]."""

    __table__ = tables.raw_tags

    photo_id: Mapped[int]
    tags: Mapped[str]
