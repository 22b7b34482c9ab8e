"""The per-app service container stored on ``app.state.services`` (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from microdc.control.checkpoints import Signer
from microdc.control.context import Ctx
from microdc.control.db import Database
from microdc.control.desired import Placer
from microdc.control.metrics import Metrics
from microdc.control.models import utcnow
from microdc.control.ratelimit import RateLimits
from microdc.control.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    placer: Placer
    metrics: Metrics
    limits: RateLimits
    clock: Callable[[], datetime] = field(default=utcnow)
    checkpoints: Signer = field(default_factory=Signer)

    def ctx(self, actor: str = "system", client_ip: str = "") -> Ctx:
        return Ctx(
            settings=self.settings,
            placer=self.placer,
            now=self.clock(),
            actor=actor,
            client_ip=client_ip,
            dialect=self.db.dialect,
        )

    @classmethod
    def build(cls, settings: Settings, placer: Placer, db: Database | None = None) -> Services:
        db = db or Database(
            settings.db_url, pool_size=settings.db_pool_size, audit_key_file=settings.audit_key_file
        )
        limits = RateLimits(
            login=(settings.login_burst, settings.login_per_s),
            enroll=(settings.enroll_burst, settings.enroll_per_s),
            rotate=(settings.rotate_burst, settings.rotate_per_s),
            security_audit=(settings.security_audit_burst, settings.security_audit_per_s),
            site=(settings.site_request_burst, settings.site_requests_per_s),
        )
        return cls(
            settings=settings,
            db=db,
            placer=placer,
            metrics=Metrics(db, site_series=settings.site_metrics_series),
            limits=limits,
        )
