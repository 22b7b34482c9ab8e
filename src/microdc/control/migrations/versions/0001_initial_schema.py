"""Initial control-plane schema (inventory, identity, telemetry, alarms, placements, audit log).

Revision ID: 0001
Revises:
Create Date: 2026-11-27 17:14:45.284281
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from microdc.control.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(audit_head, [{"id": 1, "last_seq": 0, "last_hash": "0" * 64}])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_table(
        "rollup_state",
        sa.Column("bucket_s", sa.Integer(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("batch_mark", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("bucket_s", name=op.f("pk_rollup_state")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("jurisdiction", sa.String(length=64), nullable=False),
        sa.Column("jurisdiction_ancestors", sa.JSON(), nullable=False),
        sa.Column("security_tier", sa.Integer(), nullable=False),
        sa.Column("grid_power_kw", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("liveness", sa.String(length=16), nullable=False),
        sa.Column("liveness_since", UTCDateTime(timezone=True), nullable=False),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("trust_reason", sa.String(length=512), nullable=True),
        sa.Column("last_heartbeat_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_heartbeat_seq", sa.BigInteger(), nullable=True),
        sa.Column("agent_version", sa.String(length=64), nullable=True),
        sa.Column("desired_version", sa.Integer(), nullable=False),
        sa.Column("desired_acked_version", sa.Integer(), nullable=True),
        sa.Column("desired_acked_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("desired_ack_status", sa.String(length=16), nullable=True),
        sa.Column("desired_ack_message", sa.String(length=1024), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("sensor_id", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=1024), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("break_in", sa.Boolean(), nullable=False),
        sa.Column("raised_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("cleared_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_alarms_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index("ix_alarms_site_state", "alarms", ["site_id", "state"], unique=False)
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("description", sa.String(length=256), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_api_tokens_site_id_sites"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_site_id"), "api_tokens", ["site_id"], unique=False)
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by_ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_enrollment_tokens_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrollment_tokens_token_hash")),
    )
    op.create_index(op.f("ix_enrollment_tokens_site_id"), "enrollment_tokens", ["site_id"], unique=False)
    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_maintenance_windows_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index(op.f("ix_maintenance_windows_site_id"), "maintenance_windows", ["site_id"], unique=False)
    op.create_table(
        "modules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("enclosure", sa.String(length=128), nullable=False),
        sa.Column("rack_units", sa.Integer(), nullable=False),
        sa.Column("max_it_kw", sa.Float(), nullable=False),
        sa.Column("cooling_kind", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_modules_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_modules")),
        sa.UniqueConstraint("site_id", "name", name=op.f("uq_modules_site_id")),
    )
    op.create_index(op.f("ix_modules_site_id"), "modules", ["site_id"], unique=False)
    op.create_table(
        "power_feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        sa.Column("amps_a", sa.Float(), nullable=False),
        sa.Column("phase", sa.Integer(), nullable=False),
        sa.Column("utilization", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_power_feeds_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_power_feeds")),
    )
    op.create_index(op.f("ix_power_feeds_site_id"), "power_feeds", ["site_id"], unique=False)
    op.create_table(
        "probe_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("observer", sa.String(length=160), nullable=False),
        sa.Column("target_site_id", sa.String(length=128), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("path", sa.String(length=256), nullable=False),
        sa.Column("observed_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_site_id"],
            ["sites.id"],
            name=op.f("fk_probe_reports_target_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_reports")),
    )
    op.create_index(
        "ix_probe_reports_target_observed", "probe_reports", ["target_site_id", "observed_at"], unique=False
    )
    op.create_table(
        "sensors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("sensor_id", sa.String(length=128), nullable=False),
        sa.Column("reading_type", sa.String(length=32), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("physical_context", sa.String(length=32), nullable=False),
        sa.Column("first_seen", UTCDateTime(timezone=True), nullable=False),
        sa.Column("latest_ts", UTCDateTime(timezone=True), nullable=False),
        sa.Column("latest_value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_sensors_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensors")),
        sa.UniqueConstraint("site_id", "sensor_id", name=op.f("uq_sensors_site_id")),
    )
    op.create_table(
        "site_rule_state",
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_site_rule_state_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("site_id", name=op.f("pk_site_rule_state")),
    )
    op.create_table(
        "site_state_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_site_state_events_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_state_events")),
    )
    op.create_index(op.f("ix_site_state_events_site_id"), "site_state_events", ["site_id"], unique=False)
    op.create_table(
        "telemetry_batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reading_count", sa.Integer(), nullable=False),
        sa.Column("first_ts", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_ts", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_telemetry_batches_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_batches")),
        sa.UniqueConstraint("site_id", "batch_id", name=op.f("uq_telemetry_batches_site_id")),
    )
    op.create_index(
        op.f("ix_telemetry_batches_received_at"), "telemetry_batches", ["received_at"], unique=False
    )
    op.create_table(
        "workloads",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("data_class", sa.String(length=64), nullable=False),
        sa.Column("origin_jurisdiction", sa.String(length=64), nullable=False),
        sa.Column("allowed_jurisdictions", sa.JSON(), nullable=False),
        sa.Column("min_security_tier", sa.Integer(), nullable=False),
        sa.Column("cores", sa.Float(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=True),
        sa.Column("placement_state", sa.String(length=16), nullable=False),
        sa.Column("placement_reason", sa.String(length=512), nullable=False),
        sa.Column("placed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_workloads_site_id_sites"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workloads")),
    )
    op.create_index(op.f("ix_workloads_site_id"), "workloads", ["site_id"], unique=False)
    op.create_table(
        "agent_alarm_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_agent_alarm_events_alarm_id_alarms"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_agent_alarm_events_site_id_sites"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_alarm_events")),
        sa.UniqueConstraint("site_id", "event_id", name=op.f("uq_agent_alarm_events_site_id")),
    )
    op.create_table(
        "readings",
        sa.Column("sensor_pk", sa.Integer(), nullable=False),
        sa.Column("ts", UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    op.create_index("ix_readings_sensor_ts", "readings", ["sensor_pk", "ts"], unique=False)
    op.create_index("ix_readings_ts", "readings", ["ts"], unique=False, postgresql_using="brin")
    op.create_table(
        "rollups",
        sa.Column("sensor_pk", sa.Integer(), nullable=False),
        sa.Column("bucket_s", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("min", sa.Float(), nullable=False),
        sa.Column("max", sa.Float(), nullable=False),
        sa.Column("sum", sa.Float(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sensor_pk"], ["sensors.id"], name=op.f("fk_rollups_sensor_pk_sensors"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sensor_pk", "bucket_s", "bucket_start", name=op.f("pk_rollups")),
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("server_type", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("cores", sa.Integer(), nullable=False),
        sa.Column("memory_gb", sa.Float(), nullable=False),
        sa.Column("idle_w", sa.Float(), nullable=False),
        sa.Column("peak_w", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["module_id"], ["modules.id"], name=op.f("fk_servers_module_id_modules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
    )
    op.create_index(op.f("ix_servers_module_id"), "servers", ["module_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_servers_module_id"), table_name="servers")
    op.drop_table("servers")
    op.drop_table("rollups")
    op.drop_index("ix_readings_ts", table_name="readings", postgresql_using="brin")
    op.drop_index("ix_readings_sensor_ts", table_name="readings")
    op.drop_table("readings")
    op.drop_table("agent_alarm_events")
    op.drop_index(op.f("ix_workloads_site_id"), table_name="workloads")
    op.drop_table("workloads")
    op.drop_index(op.f("ix_telemetry_batches_received_at"), table_name="telemetry_batches")
    op.drop_table("telemetry_batches")
    op.drop_index(op.f("ix_site_state_events_site_id"), table_name="site_state_events")
    op.drop_table("site_state_events")
    op.drop_table("site_rule_state")
    op.drop_table("sensors")
    op.drop_index("ix_probe_reports_target_observed", table_name="probe_reports")
    op.drop_table("probe_reports")
    op.drop_index(op.f("ix_power_feeds_site_id"), table_name="power_feeds")
    op.drop_table("power_feeds")
    op.drop_index(op.f("ix_modules_site_id"), table_name="modules")
    op.drop_table("modules")
    op.drop_index(op.f("ix_maintenance_windows_site_id"), table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index(op.f("ix_enrollment_tokens_site_id"), table_name="enrollment_tokens")
    op.drop_table("enrollment_tokens")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_index(op.f("ix_api_tokens_site_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_index("ix_alarms_site_state", table_name="alarms")
    op.drop_table("alarms")
    op.drop_table("users")
    op.drop_table("sites")
    op.drop_table("rollup_state")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
