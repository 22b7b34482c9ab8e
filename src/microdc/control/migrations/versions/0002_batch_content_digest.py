"""telemetry_batches.content_sha256: a reused batch_id with other content is a 409, not a silent 200.

Rows stored before this revision keep NULL (they cannot be compared and are treated as the same batch).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("telemetry_batches", sa.Column("content_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("telemetry_batches") as batch:
        batch.drop_column("content_sha256")
