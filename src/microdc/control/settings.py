"""Settings of one control-plane instance, injected into `create_app` (never read at import time).

`Settings.from_env()` reads ``MICRODC_*`` variables so that uvicorn worker processes (which build the app
through an import-string factory) get the same settings as the `microdc serve` process that spawned them.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microdc.control.security import OWASP_MIN_MEMORY_KIB, OWASP_MIN_TIME_COST, PasswordPolicy

DEFAULT_DB_URL = "sqlite:///./microdc.db"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str = Field(
        DEFAULT_DB_URL, description="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://"
    )
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    db_pool_size: int = Field(
        16, ge=1, le=500, description="PostgreSQL connections kept per worker (+50% overflow)"
    )
    migrate_on_start: bool = Field(True, description="run Alembic migrations in the app's lifespan")
    background_tasks: bool = Field(True, description="run the periodic health/rollup loop in the app")
    maintenance_interval_s: float = Field(10.0, gt=0, description="health check period")
    rollup_interval_s: float = Field(300.0, gt=0, description="downsampling/retention period")

    # HTTP limits
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0, description="larger request bodies get 413")
    accept_compressed_bodies: bool = Field(True, description="decode gzip/zstd request bodies (agents)")
    max_readings_per_batch: int = Field(5000, gt=0)
    keep_alive_s: int = Field(30, ge=1, le=3600, description="HTTP keep-alive (agents post every ~10 s)")
    trusted_proxies: tuple[str, ...] = Field(
        (),
        description="IPs/CIDRs of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed; from "
        "any other peer those headers are ignored (env: comma-separated)",
    )
    trust_forwarded_for: bool = Field(
        False, description="deprecated: needs trusted_proxies, which alone decides whose headers count"
    )

    # identity
    user_token_ttl_s: int = Field(12 * 3600, gt=0, description="lifetime of a token issued by /auth/login")
    enrollment_ttl_s: int = Field(15 * 60, gt=0, description="lifetime of a one-time enrollment token")
    site_token_ttl_s: int = Field(7 * 24 * 3600, gt=0, description="lifetime of a site credential")
    rotation_grace_s: int = Field(120, ge=0, description="old site credential stays valid this long")
    expired_renewal_s: int = Field(
        90 * 24 * 3600,
        ge=0,
        description="an expired site credential may still be rotated (once) this long after expiry",
    )
    scrypt_n: int = Field(
        2**14, ge=2, description="deprecated, unused: passwords are argon2id (old scrypt hashes still verify)"
    )
    password_memory_kib: int = Field(
        65536, ge=OWASP_MIN_MEMORY_KIB, description="argon2id memory (KiB); RFC 9106 low-memory profile"
    )
    password_time_cost: int = Field(3, ge=OWASP_MIN_TIME_COST, description="argon2id passes")
    password_parallelism: int = Field(4, ge=1, le=64, description="argon2id lanes")

    # rate limits (token buckets: capacity, refill per second)
    login_burst: int = Field(5, ge=1)
    login_per_s: float = Field(5 / 60, gt=0)
    enroll_burst: int = Field(5, ge=1)
    enroll_per_s: float = Field(5 / 60, gt=0)
    rotate_burst: int = Field(3, ge=1)
    rotate_per_s: float = Field(3 / 3600, gt=0)
    security_audit_burst: int = Field(30, ge=1, description="audited auth failures per IP before sampling")
    security_audit_per_s: float = Field(0.5, gt=0)

    # TLS and mutual TLS (docs/security.md)
    tls_certfile: str | None = Field(None, description="PEM server certificate (chain): serve HTTPS")
    tls_keyfile: str | None = Field(None, description="PEM private key of tls_certfile")
    tls_client_ca: str | None = Field(
        None, description="PEM CA bundle that client certificates must chain to (mutual TLS)"
    )
    tls_client_certs: Literal["optional", "required"] = Field(
        "optional",
        description="with tls_client_ca: 'required' refuses every TLS handshake without a valid client "
        "certificate; 'optional' lets certificate-less clients (enrollment, browsers) connect",
    )
    site_cert_required: bool = Field(
        False, description="a site credential counts only over TLS with that site's client certificate"
    )
    ca_dir: str | None = Field(
        None, description="fleet CA directory (`microdc ca init`): signs CSRs sent at enrollment/rotation"
    )
    site_cert_days: int = Field(365, ge=1, le=3650, description="lifetime of a site certificate it signs")

    # exposure
    metrics_public: bool = Field(False, description="serve /metrics without a token")
    public_docs: bool = Field(False, description="serve /openapi.json and /docs without a token")

    # telemetry retention and downsampling
    raw_retention_days: float = Field(7.0, gt=0)
    rollup_5m_retention_days: float = Field(90.0, gt=0)
    rollup_1h_retention_days: float = Field(730.0, gt=0)

    # liveness
    heartbeat_interval_s: float = Field(30.0, gt=0)
    heartbeat_missed_intervals: int = Field(3, ge=1)
    probe_max_age_s: float = Field(300.0, gt=0, description="probe reports older than this are ignored")
    down_hold_s: float = Field(
        60.0,
        ge=0,
        description="hold-down: missed heartbeats and corroborating evidence (a failed peer probe, an "
        "uplink reported up, an exhausted UPS) must both last this long before a site is declared down "
        "and its work re-placed",
    )
    restart_grace_margin_s: float = Field(
        60.0,
        ge=0,
        description="after the control plane was not running (a restart or a gap in its own periodic "
        "watch), sites not heard from since are not judged for heartbeat_interval_s x "
        "heartbeat_missed_intervals plus this margin (the agents' time to reconnect)",
    )
    live_clock_window_s: float = Field(
        600.0, gt=0, description="a probe's or heartbeat's timestamp must be this close to the server's clock"
    )
    max_clock_skew_s: float = Field(
        300.0,
        gt=0,
        description="readings and agent alarm events may be this far in the future (older is fine: queued "
        "while offline, but never before 2000)",
    )

    # alarms (ASHRAE A1 class, see alarm_rules.Thresholds for the defaults)
    temperature_dwell_s: float = Field(300.0, ge=0)
    humidity_dwell_s: float = Field(600.0, ge=0)
    door_dwell_s: float = Field(0.0, ge=0)
    ups_dwell_s: float = Field(30.0, ge=0)
    ups_runtime_warning_min: float = Field(15.0, ge=0)
    ups_runtime_critical_min: float = Field(5.0, ge=0)
    tamper_is_break_in: bool = Field(True, description="an Intrusion reading marks the alarm a break-in")
    untrusted_security_tier: int = Field(
        1,
        ge=0,
        le=4,
        description="effective tier of an untrusted site for the rule placer (policy module: 1)",
    )

    # --- issue 15 (sec-control): audit keying, checkpoints and per-site limits -------------------------
    audit_key_file: str | None = Field(
        None,
        description="audit key file (HMAC + Ed25519, mode 0600; created at first start). Default: next to a "
        "SQLite file (<db>.audit-key), else $XDG_STATE_HOME/microdc/audit.key. Keep it off the database host",
    )
    audit_checkpoint_dir: str | None = Field(
        None, description="folder that receives signed audit checkpoints (periodically and on demand)"
    )
    audit_checkpoint_interval_s: float = Field(300.0, gt=0, description="checkpoint publishing period")
    site_max_sensors: int = Field(
        1000, ge=1, description="sensors one site may have; a batch adding more gets 429 (kept by the agent)"
    )
    site_metrics_series: int = Field(
        32,
        ge=0,
        description="per-sensor series one site may put in /metrics (the rest are counted, not shown)",
    )
    site_request_burst: int = Field(300, ge=1, description="requests one site credential may make at once")
    site_requests_per_s: float = Field(10.0, gt=0, description="sustained requests per second per site")
    data_classes: tuple[str, ...] = Field(
        (),
        description="data classes workloads may name (a scenario's policies.data_classes; `serve --scenario` "
        "sets them). Empty: any class is accepted (env: comma-separated)",
    )
    site_limit_retry_s: int = Field(
        3600, ge=1, description="Retry-After of a 429 for a full sensor quota (an operator must raise it)"
    )

    map_tile_url: str = Field(
        "",
        description="the operator's own slippy-map tile server for street maps under the fleet map, "
        "https://host/{z}/{x}/{y}.png (the page may then load images from that origin); empty: only the "
        "offline Natural Earth basemap",
    )

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url(cls, v: str) -> str:
        from microdc.report.basemap import check_tile_url  # the report's rule; lazy: it loads plotting

        return v if v == "" else check_tile_url(v)

    @field_validator("trusted_proxies", "data_classes", mode="before")
    @classmethod
    def _split_proxies(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(x.strip() for x in v.split(",") if x.strip())
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for item in v:
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"trusted_proxies: {item!r} is not an IP address or CIDR network") from None
        return tuple(out)

    @model_validator(mode="after")
    def _tls_is_whole(self) -> Settings:
        if bool(self.tls_certfile) != bool(self.tls_keyfile):
            raise ValueError("tls_certfile and tls_keyfile: give both (certificate and its key) or neither")
        if self.tls_client_ca and not self.tls_certfile:
            raise ValueError("tls_client_ca: client certificates need TLS; give tls_certfile and tls_keyfile")
        if self.site_cert_required and not self.tls_client_ca:
            raise ValueError("site_cert_required: needs tls_client_ca (the CA that signs site certificates)")
        return self

    @model_validator(mode="after")
    def _forwarded_needs_proxies(self) -> Settings:
        if self.trust_forwarded_for and not self.trusted_proxies:
            raise ValueError(
                "trust_forwarded_for: set trusted_proxies to the CIDRs of your reverse proxies instead; "
                "X-Forwarded-For is honoured only from them (from anyone else it could be forged)"
            )
        return self

    @property
    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(self.password_memory_kib, self.password_time_cost, self.password_parallelism)

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def heartbeat_timeout_s(self) -> float:
        return self.heartbeat_interval_s * self.heartbeat_missed_intervals

    @property
    def restart_grace_s(self) -> float:
        """How long after the control plane resumes watching before a silent site may be judged."""
        return self.heartbeat_timeout_s + self.restart_grace_margin_s

    @property
    def watch_gap_s(self) -> float:
        """A pause in the control plane's own periodic watch longer than this counts as an outage: the
        loop ticks every maintenance_interval_s, and a pause of one heartbeat interval loses no more than
        one beat of any agent."""
        return max(3 * self.maintenance_interval_s, self.heartbeat_interval_s)

    def to_env(self) -> dict[str, str]:
        """The MICRODC_* variables that make `from_env` rebuild these settings (for worker processes)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:  # unset optional setting: absent from the environment
                continue
            if isinstance(value, bool):
                out[f"MICRODC_{name.upper()}"] = str(value).lower()
            elif isinstance(value, (list, tuple)):
                out[f"MICRODC_{name.upper()}"] = ",".join(str(x) for x in value)
            else:
                out[f"MICRODC_{name.upper()}"] = str(value)
        return out

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = f"MICRODC_{name.upper()}"
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
