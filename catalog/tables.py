"""Catalog tables, declared once in SQLAlchemy Core. The schema itself is made only by Alembic.

Normalised: a device (make, model), a root (host, folder) and a place (country, region, city) are
stored once and referenced; a photo's GPS position and its raw tag listing live in tables of
their own, one row per photo.

The store and the query layer use these tables directly, so a CLI command never imports the ORM
(sqlalchemy.orm and mapper set-up cost ~85 ms of every start-up here); catalog.models maps the
typed ORM classes onto the same Table objects for code that wants them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

# Stable constraint names, so migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# A catalogued folder as one machine sees it: two hosts' `/photos` are different roots.
roots = Table(
    "roots",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("host", String(255), nullable=False),
    Column("path", Text, nullable=False),  # absolute, as given by the OS (catalog.paths form)
    Column("added_at", DateTime, nullable=False, server_default=func.now()),
    Column("last_scan_at", DateTime),
    UniqueConstraint("host", "path"),
)

# A camera or phone. Make and model verbatim ('' when absent, so the pair can be unique).
devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("make", Text, nullable=False),
    Column("model", Text, nullable=False),
    UniqueConstraint("make", "model"),
    Index("ix_devices_model_lower", func.lower("model")),
    Index("ix_devices_make_lower", func.lower("make")),
)

# A town photos were taken in or near, found from their GPS position (catalog.places).
# Region is '' when the data names none, so the four can be unique together.
places = Table(
    "places",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("country_code", String(2), nullable=False),  # ISO 3166-1 alpha-2
    Column("country", Text, nullable=False),
    Column("region", Text, nullable=False),
    Column("city", Text, nullable=False),
    UniqueConstraint("country_code", "country", "region", "city"),
)

photos = Table(
    "photos",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("root_id", ForeignKey("roots.id", ondelete="CASCADE"), nullable=False),
    Column("rel_path", Text, nullable=False),  # '/'-separated, relative to the root
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    # File digests, hex, each in the column of its algorithm (scan --hash); null until the
    # hash stage has read the file, or when it could not, or was not asked to.
    Column("sha256", String(64)),
    Column("blake2b", String(64)),  # BLAKE2b-256
    Column("format", String(16)),
    Column("width", Integer),
    Column("height", Integer),
    Column("orientation", Integer),
    Column("captured_at", DateTime),  # local wall time
    Column("captured_from", String(32)),
    Column("subsec", String(16)),
    Column("utc_offset", String(6)),  # "+02:00"
    Column("offset_from", String(32)),
    Column("captured_at_utc", DateTime),
    Column("time_source", String(16)),
    Column("time_zone", String(64)),
    # what time sorts by: the UTC instant when known, else the local time (indexed)
    Column("sort_time", DateTime),
    Column("device_id", ForeignKey("devices.id")),
    Column("place_id", ForeignKey("places.id")),
    Column("lens_model", Text),
    Column("serial", Text),
    Column("iso", Integer),
    Column("exposure_time", Float),
    Column("f_number", Float),
    Column("focal_length", Float),
    Column("software", Text),
    Column("warnings", Text),  # newline-separated
    Column("error", Text),
    Column("first_seen", DateTime, nullable=False),
    Column("last_scanned", DateTime, nullable=False),
    Column("read_by", String(40)),  # "photocat 0.2.0": the version that read the file (0004)
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

# Each digest algorithm's column (scan --hash), by the algorithm's name: a digest is searched,
# stored and compared only under its own name, never taken for another algorithm's.
DIGEST_COLUMNS = {"sha256": photos.c.sha256, "blake2b": photos.c.blake2b}

gps_positions = Table(
    "gps_positions",
    metadata,
    Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("latitude", Float),  # null when unreadable (0/0, no Ref)
    Column("longitude", Float),
    Column("altitude", Float),
    Column("gps_time_utc", DateTime),
    Index("ix_gps_positions_latitude_longitude", "latitude", "longitude"),
)

# The full tag listing of one photo, as JSON [[ifd, tag_id, name, value], ...]. One row per
# photo rather than one per tag: a photo carries 50-300 tags, and a row per tag would multiply
# the writer's work by that factor for a listing that is only ever read whole.
raw_tags = Table(
    "raw_tags",
    metadata,
    Column("photo_id", ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True),
    Column("tags", Text, nullable=False),
)
