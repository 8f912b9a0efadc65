"""photos.blake2b, the digest of `scan --hash blake2b`; index (device_id, sort_time)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Each digest algorithm has its own column (sha256, blake2b), so which algorithm produced a stored
digest is never in doubt and the JSON `sha256` key only ever holds SHA-256. Existing rows get a
null BLAKE2b digest: a `scan --hash blake2b` fills it.

ix_photos_device_sort serves the commonest search, a device's photos in time order
(`search --model X --limit N`), from the index alone: at a million photos, 0.3 ms instead of
25 ms for sorting the device's 10,000 rows fetched from the table.

Columns are added with a plain ALTER TABLE on SQLite, never with batch mode (see 0002).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("photos", sa.Column("blake2b", sa.String(length=64), nullable=True))
    op.create_index("ix_photos_blake2b", "photos", ["blake2b"], unique=False)
    op.create_index("ix_photos_device_sort", "photos", ["device_id", "sort_time"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_photos_device_sort", table_name="photos")
    op.drop_index("ix_photos_blake2b", table_name="photos")
    op.execute("ALTER TABLE photos DROP COLUMN blake2b")
