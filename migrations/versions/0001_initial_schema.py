"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("make", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("make", "model", name=op.f("uq_devices_make_model")),
    )
    # expression indexes: autogenerate cannot compare these, so they are written by hand
    op.create_index("ix_devices_make_lower", "devices", [sa.text("lower(make)")])
    op.create_index("ix_devices_model_lower", "devices", [sa.text("lower(model)")])
    op.create_table(
        "roots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=False
        ),
        sa.Column("last_scan_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roots")),
        sa.UniqueConstraint("host", "path", name=op.f("uq_roots_host_path")),
    )
    op.create_table(
        "photos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("root_id", sa.Integer(), nullable=False),
        sa.Column("rel_path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("orientation", sa.Integer(), nullable=True),
        sa.Column("captured_at", sa.DateTime(), nullable=True),
        sa.Column("captured_from", sa.String(length=32), nullable=True),
        sa.Column("subsec", sa.String(length=16), nullable=True),
        sa.Column("utc_offset", sa.String(length=6), nullable=True),
        sa.Column("offset_from", sa.String(length=32), nullable=True),
        sa.Column("captured_at_utc", sa.DateTime(), nullable=True),
        sa.Column("time_source", sa.String(length=16), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("lens_model", sa.Text(), nullable=True),
        sa.Column("serial", sa.Text(), nullable=True),
        sa.Column("iso", sa.Integer(), nullable=True),
        sa.Column("exposure_time", sa.Float(), nullable=True),
        sa.Column("f_number", sa.Float(), nullable=True),
        sa.Column("focal_length", sa.Float(), nullable=True),
        sa.Column("software", sa.Text(), nullable=True),
        sa.Column("warnings", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_scanned", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name=op.f("fk_photos_device_id_devices")
        ),
        sa.ForeignKeyConstraint(
            ["root_id"], ["roots.id"], name=op.f("fk_photos_root_id_roots"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_photos")),
        sa.UniqueConstraint("root_id", "rel_path", name=op.f("uq_photos_root_id_rel_path")),
    )
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.create_index("ix_photos_captured_at", ["captured_at"], unique=False)
        batch_op.create_index("ix_photos_captured_at_utc", ["captured_at_utc"], unique=False)
        batch_op.create_index(
            "ix_photos_device_captured", ["device_id", "captured_at"], unique=False
        )
        batch_op.create_index("ix_photos_sha256", ["sha256"], unique=False)

    op.create_table(
        "gps_positions",
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("altitude", sa.Float(), nullable=True),
        sa.Column("gps_time_utc", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
            name=op.f("fk_gps_positions_photo_id_photos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_gps_positions")),
    )
    with op.batch_alter_table("gps_positions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gps_positions_latitude_longitude", ["latitude", "longitude"], unique=False
        )

    op.create_table(
        "raw_tags",
        sa.Column("photo_id", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["photos.id"],
            name=op.f("fk_raw_tags_photo_id_photos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_raw_tags")),
    )


def downgrade() -> None:
    op.drop_table("raw_tags")
    with op.batch_alter_table("gps_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_gps_positions_latitude_longitude")

    op.drop_table("gps_positions")
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_index("ix_photos_sha256")
        batch_op.drop_index("ix_photos_device_captured")
        batch_op.drop_index("ix_photos_captured_at_utc")
        batch_op.drop_index("ix_photos_captured_at")

    op.drop_table("photos")
    op.drop_table("roots")
    op.drop_index("ix_devices_model_lower", table_name="devices")
    op.drop_index("ix_devices_make_lower", table_name="devices")
    op.drop_table("devices")
