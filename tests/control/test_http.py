"""HTTP behaviour: RFC 9457 problem shape everywhere, size limits, request ids, health."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance"}


def _is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status and body["type"].startswith("urn:microdc:problem:")
    assert body["instance"].startswith("/")
    return body


def test_health_is_public(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and "x-request-id" in r.headers


def test_problem_shapes(client: TestClient, viewer_h: dict[str, str], admin_h: dict[str, str]) -> None:
    _is_problem(client.get("/api/v1/sites"), 401)
    _is_problem(client.get("/api/v1/sites", headers={"Authorization": "Bearer mdc_u_forged"}), 401)
    _is_problem(client.get("/api/v1/sites", headers={"Authorization": "Basic abc"}), 401)
    _is_problem(client.get("/api/v1/users", headers=viewer_h), 403)
    _is_problem(client.get("/api/v1/sites/nope", headers=viewer_h), 404)
    _is_problem(client.get("/no/such/route", headers=viewer_h), 404)
    _is_problem(client.put("/api/v1/sites", headers=viewer_h), 405)
    body = _is_problem(client.post("/api/v1/sites", json={"id": "x"}, headers=admin_h), 422)
    assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "lat"), ("body", "security_tier")}
    body = _is_problem(
        client.post(
            "/api/v1/sites", content=b"{not json", headers={**admin_h, "content-type": "application/json"}
        ),
        422,
    )
    _is_problem(client.get("/api/v1/alarms", params={"limit": 0}, headers=viewer_h), 422)


def test_unknown_fields_rejected(client: TestClient, admin_h: dict[str, str]) -> None:
    r = client.post("/api/v1/users", json={"name": "x", "role": "viewer", "is_admin": True}, headers=admin_h)
    _is_problem(r, 422)


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    return {"max_body_bytes": 1024}


def test_body_size_limit_by_header_and_stream(client: TestClient, admin_h: dict[str, str]) -> None:
    big = b'{"name": "' + b"x" * 5000 + b'", "role": "viewer"}'
    body = _is_problem(
        client.post("/api/v1/users", content=big, headers={**admin_h, "content-type": "application/json"}),
        413,
    )
    assert "1024" in body["detail"]

    def chunks() -> Any:
        for _ in range(10):
            yield b"x" * 500

    _is_problem(
        client.post(
            "/api/v1/users", content=chunks(), headers={**admin_h, "content-type": "application/json"}
        ),
        413,
    )


def test_openapi_requires_auth_and_documents_problems(client: TestClient, viewer_h: dict[str, str]) -> None:
    _is_problem(client.get("/openapi.json"), 401)
    _is_problem(client.get("/docs"), 401)
    spec = client.get("/openapi.json", headers=viewer_h).json()
    assert "Problem" in spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    op = spec["paths"]["/api/v1/sites/{site_id}/telemetry"]["post"]
    assert "application/problem+json" in op["responses"]["422"]["content"]
    assert client.get("/docs", headers=viewer_h).status_code == 200


def test_unhandled_error_is_a_problem(
    client: TestClient, viewer_h: dict[str, str], services: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from microdc.control import inventory

    def boom(*a: Any, **k: Any) -> Any:
        raise RuntimeError("kaboom with mdc_u_secretsecretsecret")

    monkeypatch.setattr(inventory, "site_out", boom)
    body = _is_problem(client.get("/api/v1/sites", headers=viewer_h), 500)
    assert "kaboom" not in body["detail"]
