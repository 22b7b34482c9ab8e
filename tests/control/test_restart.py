"""Crash safety: SIGKILL the server mid-ingest, restart it, re-send what was not acknowledged, and every
acknowledged reading is stored exactly once (acks are sent only after commit; retries are idempotent)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from microdc.control.db import Database
from microdc.control.desired import RulePlacer
from microdc.control.devserver import ServerProcess
from microdc.control.identity import create_user, issue_user_token
from microdc.control.models import TelemetryBatch, readings
from microdc.control.security import Role
from microdc.control.services import Services
from microdc.control.settings import Settings

from .conftest import site_body

READINGS_PER_BATCH = 50


def _admin_token(db_url: str) -> str:
    db = Database(db_url)
    db.migrate()
    services = Services.build(Settings(db_url=db_url), RulePlacer(), db)
    with db.session() as s:
        u = create_user(s, services.ctx("test"), "root", Role.ADMIN, None)
        _, token = issue_user_token(s, services.ctx("test"), u)
    db.dispose()
    return token


def _batch(i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "batch_id": f"b{i:06d}-{uuid.uuid4().hex[:8]}",
        "seq": i,
        "readings": [
            {
                "sensor_id": f"s{k % 10}",
                "reading_type": "Temperature",
                "unit": "Cel",
                "physical_context": "Intake",
                "ts": (now - timedelta(milliseconds=k)).isoformat(),
                "value": 20 + k % 7,
            }
            for k in range(READINGS_PER_BATCH)
        ],
    }


def _crash_and_recover(db_url: str, tmp_path: Path) -> None:
    token = _admin_token(db_url)
    admin = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "server.log"
    # a crash test, not a rate test: 400 batches as fast as they go
    env = {"MICRODC_SITE_REQUEST_BURST": "100000"}
    server = ServerProcess(db_url, log_path=log, env=env).start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=10) as c:
            assert c.post("/api/v1/sites", json=site_body("a"), headers=admin).status_code == 201
            et = c.post("/api/v1/sites/a/enrollment-tokens", headers=admin).json()["token"]
            site_token = c.post("/api/v1/enroll", json={"token": et}).json()["token"]
        site_h = {"Authorization": f"Bearer {site_token}"}
        batches = [_batch(i) for i in range(400)]
        acked: dict[str, int] = {}
        unacked: list[dict[str, Any]] = []
        stop = threading.Event()

        def poster() -> None:
            with httpx.Client(base_url=server.base_url, timeout=5) as c:
                for b in batches:
                    if stop.is_set():
                        unacked.append(b)
                        continue
                    try:
                        r = c.post("/api/v1/sites/a/telemetry", json=b, headers=site_h)
                        if r.status_code in (200, 201):
                            acked[b["batch_id"]] = r.json()["accepted"]
                        else:
                            unacked.append(b)
                    except httpx.HTTPError:
                        unacked.append(b)  # in flight when the server died: outcome unknown

        t = threading.Thread(target=poster)
        t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # SIGKILL mid-stream
        time.sleep(0.5)
        stop.set()
        t.join(timeout=60)
        assert 0 < len(acked) < len(batches), "the kill should land mid-stream"
        assert unacked

        server.start()  # restart on the same database (migrations run again: no-op)
        with httpx.Client(base_url=server.base_url, timeout=10) as c:
            for b in unacked:
                r = c.post("/api/v1/sites/a/telemetry", json=b, headers=site_h)
                assert r.status_code in (200, 201), r.text
                acked[b["batch_id"]] = r.json()["accepted"]
            # a retry of an already-acknowledged batch changes nothing
            r = c.post("/api/v1/sites/a/telemetry", json=batches[0], headers=site_h)
            assert r.status_code == 200 and r.json()["duplicate"]
    finally:
        server.stop()

    assert len(acked) == len(batches)
    db = Database(db_url)
    with db.read_session() as s:
        n_readings = s.scalar(select(func.count()).select_from(readings))
        ids = list(s.scalars(select(TelemetryBatch.batch_id)))
    db.dispose()
    assert sorted(ids) == sorted(acked)  # every batch exactly once
    assert n_readings == sum(acked.values()) == len(batches) * READINGS_PER_BATCH


@pytest.mark.services
def test_sigkill_mid_ingest_postgres(pg_url: str, tmp_path: Path) -> None:
    _crash_and_recover(pg_url, tmp_path)


@pytest.mark.slow
def test_sigkill_mid_ingest_sqlite(tmp_path: Path) -> None:
    _crash_and_recover(f"sqlite:///{tmp_path}/crash.db", tmp_path)
