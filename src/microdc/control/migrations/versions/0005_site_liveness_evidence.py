"""Site liveness evidence and the control plane's own watch.

* ``sites.liveness_reason`` / ``liveness_evidence`` and ``site_state_events.evidence``: why a site is in
  its state and what was weighed (shown on the dashboard);
* ``probe_reports.kind``: ``peer`` (a reachability probe) or ``uplink`` (the site's uplink as the network
  sees it);
* ``control_plane_watch``: process starts and periodic ticks, so a gap in the control plane's own
  liveness is known and no site is judged on heartbeats it could not receive.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from microdc.control.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "sites", sa.Column("liveness_reason", sa.String(length=512), nullable=False, server_default="")
    )
    op.add_column("sites", sa.Column("liveness_evidence", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column("site_state_events", sa.Column("evidence", sa.JSON(), nullable=False, server_default="{}"))
    op.add_column(
        "probe_reports", sa.Column("kind", sa.String(length=8), nullable=False, server_default="peer")
    )
    op.create_table(
        "control_plane_watch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_tick_at", UTCDateTime(), nullable=False),
        sa.Column("watching_since", UTCDateTime(), nullable=False),
        sa.Column("last_gap_from", UTCDateTime(), nullable=True),
        sa.Column("last_gap_to", UTCDateTime(), nullable=True),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_plane_watch")),
    )


def downgrade() -> None:
    op.drop_table("control_plane_watch")
    with op.batch_alter_table("probe_reports") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("site_state_events") as batch:
        batch.drop_column("evidence")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("liveness_evidence")
        batch.drop_column("liveness_reason")
