"""audit_log.key_id: the audit chain is keyed (HMAC-SHA256 with a key outside the database).

Entries stored before this revision keep NULL: `Database.migrate` re-keys them once with the audit key
(verifying the legacy SHA-256 chain first and recording the result in an ``audit.rekeyed`` entry), see
control/audit.py.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 02:00:00
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
    op.add_column("audit_log", sa.Column("key_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("key_id")
