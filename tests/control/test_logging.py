"""No secret ever reaches a log line: tokens and passwords are redacted (checked by capturing logs)."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient

from microdc.control.security import RedactingFilter, redact

from .conftest import Fleet, batch, reading

TOKEN_RE = re.compile(r"mdc_[use]_[A-Za-z0-9_\-]{20,}")


def test_redact() -> None:
    tok = "mdc_s_" + "A" * 43
    assert tok not in redact(f"got {tok} from agent")
    assert "abc.def" not in redact("Authorization: Bearer abc.def")
    assert "xyz.uvw" not in redact("sent bearer xyz.uvw")
    assert "hunter2" not in redact('{"password": "hunter2"}')
    assert "s3cr3t" not in redact("token=s3cr3t")


def test_filter_rewrites_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("microdc.test.redact")
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    record = logger.makeRecord("x", logging.INFO, __file__, 1, "token %s", ("mdc_u_" + "b" * 43,), None)
    handler.filter(record)
    assert "mdc_u_bbbb" not in record.getMessage()


def test_flows_log_no_secrets(
    client: TestClient, fleet: Fleet, admin_h: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[str] = [admin_h["Authorization"].split()[1]]
    h = fleet.add_site("a")
    secrets.append(h["Authorization"].split()[1])
    et = client.post("/api/v1/sites/a/enrollment-tokens", headers=admin_h).json()["token"]
    secrets.append(et)
    secrets.append(client.post("/api/v1/enroll", json={"token": et}).json()["token"])
    client.post("/api/v1/enroll", json={"token": et})  # failure path is logged/audited too
    h = {"Authorization": f"Bearer {secrets[-1]}"}  # re-enrolling revoked the first credential
    rot = client.post("/api/v1/site-credentials/rotate", headers=h).json()["token"]
    secrets.append(rot)
    client.post(
        "/api/v1/users",
        json={"name": "pat", "role": "viewer", "password": "correct horse battery"},
        headers=admin_h,
    )
    client.post("/api/v1/auth/login", json={"username": "pat", "password": "correct horse battery"})
    client.post("/api/v1/auth/login", json={"username": "pat", "password": "wrong horse battery"})
    client.get("/api/v1/sites", headers={"Authorization": "Bearer mdc_u_" + "Z" * 43})
    client.post(
        "/api/v1/sites/a/telemetry",
        json=batch([reading("t", "Temperature", 22, fleet_time(client))]),
        headers=h,
    )
    text = caplog.text
    assert caplog.records, "expected some log output"
    for s in secrets:
        assert s not in text
    assert "correct horse battery" not in text and "wrong horse battery" not in text
    assert not TOKEN_RE.search(text)
    # the audit log stores no secrets either
    audit_text = client.get("/api/v1/audit", params={"limit": 10000}, headers=admin_h).text
    for s in secrets:
        assert s not in audit_text
    assert "correct horse battery" not in audit_text


def fleet_time(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.services.clock()  # type: ignore[attr-defined]
