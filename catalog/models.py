"""Catalog tables (SQLAlchemy 2.x typed ORM). The schema itself is made only by Alembic migrations.

Normalised: a device (make, model), a root (host, folder) and a place (country, region, city) are
stored once and referenced; a photo's GPS position and its raw tag listing live in tables of
their own, one row per photo.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Root(Base):
    """A catalogued folder as one machine sees it: two hosts' `/photos` are different roots."""

    __tablename__ = "roots"
    __table_args__ = (UniqueConstraint("host", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)  # absolute, as given by the OS
    added_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    last_scan_at: Mapped[datetime | None] = mapped_column(DateTime)


class Device(Base):
    """A camera or phone. Make and model verbatim ('' when absent, so the pair can be unique)."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("make", "model"),
        Index("ix_devices_model_lower", func.lower("model")),
        Index("ix_devices_make_lower", func.lower("make")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    make: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)


class Place(Base):
    """A town photos were taken in or near, found from their GPS position (catalog.places).
    Region is '' when the data names none, so the four can be unique together."""

    __tablename__ = "places"
    __table_args__ = (UniqueConstraint("country_code", "country", "region", "city"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    country_code: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    country: Mapped[str] = mapped_column(Text)
    region: Mapped[str] = mapped_column(Text)
    city: Mapped[str] = mapped_column(Text)


class Photo(Base):
    __tablename__ = "photos"
    __table_args__ = (
        UniqueConstraint("root_id", "rel_path"),
        Index("ix_photos_device_captured", "device_id", "captured_at"),
        Index("ix_photos_captured_at", "captured_at"),
        Index("ix_photos_captured_at_utc", "captured_at_utc"),
        Index("ix_photos_sha256", "sha256"),
        Index("ix_photos_blake2b", "blake2b"),
        Index("ix_photos_device_sort", "device_id", "sort_time"),  # a device's photos in order
        Index("ix_photos_sort_time", "sort_time"),
        Index("ix_photos_place_id", "place_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    root_id: Mapped[int] = mapped_column(ForeignKey("roots.id", ondelete="CASCADE"))
    rel_path: Mapped[str] = mapped_column(Text)  # '/'-separated, relative to the root
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    # File digests, hex, each in the column of its algorithm (scan --hash); null until the
    # hash stage has read the file, or when it could not, or was not asked to.
    sha256: Mapped[str | None] = mapped_column(String(64))
    blake2b: Mapped[str | None] = mapped_column(String(64))  # BLAKE2b-256
    format: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    orientation: Mapped[int | None] = mapped_column(Integer)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime)  # local wall time
    captured_from: Mapped[str | None] = mapped_column(String(32))
    subsec: Mapped[str | None] = mapped_column(String(16))
    utc_offset: Mapped[str | None] = mapped_column(String(6))  # "+02:00"
    offset_from: Mapped[str | None] = mapped_column(String(32))
    captured_at_utc: Mapped[datetime | None] = mapped_column(DateTime)
    time_source: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # what time sorts by: the UTC instant when known, else the local time (indexed)
    sort_time: Mapped[datetime | None] = mapped_column(DateTime)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    place_id: Mapped[int | None] = mapped_column(ForeignKey("places.id"))
    lens_model: Mapped[str | None] = mapped_column(Text)
    serial: Mapped[str | None] = mapped_column(Text)
    iso: Mapped[int | None] = mapped_column(Integer)
    exposure_time: Mapped[float | None] = mapped_column(Float)
    f_number: Mapped[float | None] = mapped_column(Float)
    focal_length: Mapped[float | None] = mapped_column(Float)
    software: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[str | None] = mapped_column(Text)  # newline-separated
    error: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_scanned: Mapped[datetime] = mapped_column(DateTime)

    root: Mapped[Root] = relationship()
    device: Mapped[Device | None] = relationship()
    place: Mapped[Place | None] = relationship()
    gps: Mapped[GpsPosition | None] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class GpsPosition(Base):
    __tablename__ = "gps_positions"
    __table_args__ = (Index("ix_gps_positions_latitude_longitude", "latitude", "longitude"),)

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    latitude: Mapped[float | None] = mapped_column(Float)  # null when unreadable (0/0, no Ref)
    longitude: Mapped[float | None] = mapped_column(Float)
    altitude: Mapped[float | None] = mapped_column(Float)
    gps_time_utc: Mapped[datetime | None] = mapped_column(DateTime)

    photo: Mapped[Photo] = relationship(back_populates="gps")


class RawTags(Base):
    """The full tag listing of one photo, as JSON [[ifd, tag_id, name, value], ...].

    One row per photo rather than one per tag: a photo carries 50-300 tags, and a row per tag
    would multiply the writer's work by that factor for a listing that is only ever read whole.
    """

    __tablename__ = "raw_tags"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    tags: Mapped[str] = mapped_column(Text)
