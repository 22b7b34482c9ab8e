"""Property-based API fuzzing from the OpenAPI document: no input may cause a 5xx, and every answer
must conform to the documented schema (status codes, content types, Allow headers, bodies).

Runs every operation as an admin (so role checks don't stop requests at the door) against a fresh
SQLite-backed app with a few sites, workloads and alarms to hit real code paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from microdc.control.app import create_app
from microdc.control.security import Role

from .conftest import Clock, Fleet, batch, make_user, reading, test_settings

pytestmark = pytest.mark.slow

_STATE: dict[str, Any] = {}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    clock = Clock()
    app = create_app(test_settings(f"sqlite:///{db}"), clock=clock)
    with TestClient(app) as c:
        admin = make_user(app.state.services, "fuzzer", Role.ADMIN)
        fleet = Fleet(c, admin)
        for s in ("s1", "s2"):
            fleet.add_site(s)
        c.post(
            "/api/v1/workloads",
            json={"id": "w1", "data_class": "p", "origin_jurisdiction": "DE", "cores": 1},
            headers=admin,
        )
        c.post(
            "/api/v1/sites/s1/telemetry",
            json=batch([reading("smoke", "Smoke", 1, clock.now)]),
            headers=fleet.site_h["s1"],
        )
        _STATE["admin"] = admin
        yield app


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, headers=_STATE["admin"])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any) -> None:
    # default checks include not_a_server_error plus schema conformance
    case.call_and_validate(headers=_STATE["admin"], additional_checks=[not_a_server_error])
