"""photos.read_by: which photocat read the file, e.g. "photocat 0.2.0"

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

A record is what one version of photocat read from the file: a later one may read it otherwise
(0.2.0 sums GPS coordinates exactly, where 0.1.0 was a unit in the last place off). Each row now
says which version wrote it, as provenance (`show`, `search --full`). Rows catalogued before
have a null read_by: read by photocat 0.1.0; `scan --reread` reads them again.

Columns are added with a plain ALTER TABLE on SQLite, never with batch mode (see 0002).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("photos", sa.Column("read_by", sa.String(length=40), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE photos DROP COLUMN read_by")
