"""workloads.spec / spec_hash (what to run) and workload_status (what the site's agent reports runs).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from microdc.control.models import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workloads", sa.Column("spec", sa.JSON(), nullable=True))
    op.add_column("workloads", sa.Column("spec_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "workload_status",
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("workload_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("healthy", sa.Boolean(), nullable=True),
        sa.Column("message", sa.String(length=1024), nullable=False),
        sa.Column("since", sa.String(length=40), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=True),
        sa.Column("observed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reported_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_workload_status_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", "workload_id", name=op.f("pk_workload_status")),
    )


def downgrade() -> None:
    op.drop_table("workload_status")
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("spec_hash")
        batch.drop_column("spec")
