"""Property-based API fuzzing from the OpenAPI document: no input may cause a 5xx, and every answer
must conform to the documented schema (status codes, content types, Allow headers, bodies).

Runs every operation as an admin (so role checks don't stop requests at the door) against a fresh
SQLite-backed app with a few sites, workloads and alarms to hit real code paths.

It drives schemathesis through its strategy API (`operation.as_strategy()` under hypothesis) rather than
its pytest plugin, whose lazy fixtures reach into pytest internals that pytest 9.2 removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from microdc.control.app import create_app
from microdc.control.security import Role

from .conftest import Clock, Fleet, batch, make_user, reading, test_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_app(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FastAPI, dict[str, str], dict[str, str]]]:
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
        yield app, admin, fleet.site_h["s1"]


# operations only a site's own credential gets past the door of (as admin they stop at 403)
SITE_OPERATIONS = ("/telemetry", "/heartbeat", "/alarm-events", "/desired-state")


def test_site_operations_as_the_site(fuzz_app: tuple[FastAPI, dict[str, str], dict[str, str]]) -> None:
    """The agent-facing operations, authenticated as site s1 and aimed at s1: no 5xx, answers conform.

    Schema-valid bodies may still be refused here: a reading's unit must fit its type, its value its
    type's range, its timestamp the server's clock — rules JSON Schema cannot express — so the
    "schema-valid request accepted" check is left out (their refusals are tested in tests/security)."""
    app, _admin, site_h = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=_admin)
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if any(k in op.path for k in SITE_OPERATIONS) and "{site_id}" in op.path]
    assert len(ops) >= 5, [op.label for op in ops]
    failures: list[str] = []
    for op in ops:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            case.path_parameters = {**(case.path_parameters or {}), "site_id": "s1"}
            case.call_and_validate(
                headers=site_h,
                additional_checks=[not_a_server_error],
                excluded_checks=[positive_data_acceptance],
            )

        try:
            fuzz()
        except Exception as exc:
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)


def test_no_server_errors(fuzz_app: tuple[FastAPI, dict[str, str], dict[str, str]]) -> None:
    app, admin, _site = fuzz_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=admin)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, f"the OpenAPI document lists only {len(operations)} operations"
    failures: list[str] = []
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: Any) -> None:
            # default checks include not_a_server_error plus schema conformance
            case.call_and_validate(headers=admin, additional_checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{op.label}: {type(exc).__name__}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
