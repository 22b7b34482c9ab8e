"""Errors are RFC 9457 `application/problem+json` — in the answers (tests everywhere) and in the OpenAPI
document too, so a generated client or a schema-checking fuzzer expects what it gets. FastAPI documents
its own 422 as `application/json` HTTPValidationError unless the app rewrites it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import Fleet

PROBLEM = "application/problem+json"


def test_every_documented_error_is_problem_json(client: TestClient, fleet: Fleet) -> None:
    spec = client.get("/openapi.json", headers=fleet.admin_h).json()
    errors = [
        (path, method, code, sorted(resp.get("content", {})))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        for code, resp in op.get("responses", {}).items()
        if code[:1] in ("4", "5")
    ]
    assert len(errors) > 100
    wrong = [e for e in errors if e[3] != [PROBLEM]]
    assert not wrong, wrong[:10]
    ref = spec["paths"]["/api/v1/workloads"]["post"]["responses"]["422"]["content"][PROBLEM]["schema"]
    assert ref == {"$ref": "#/components/schemas/Problem"}
    assert "detail" in spec["components"]["schemas"]["Problem"]["properties"]


def test_site_routes_document_their_429(client: TestClient, fleet: Fleet) -> None:
    spec = client.get("/openapi.json", headers=fleet.admin_h).json()
    for path, method in [
        ("/api/v1/sites/{site_id}/telemetry", "post"),
        ("/api/v1/sites/{site_id}/heartbeat", "post"),
        ("/api/v1/sites/{site_id}/alarm-events", "post"),
        ("/api/v1/sites/{site_id}/desired-state", "get"),
        ("/api/v1/probes", "post"),
    ]:
        assert "429" in spec["paths"][path][method]["responses"], (path, method)
