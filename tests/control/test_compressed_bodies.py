"""`microdc serve` reads gzip-compressed request bodies (agents batch and compress telemetry)."""

from __future__ import annotations

import gzip
import json

from fastapi.testclient import TestClient

from microdc.control.security import Role
from microdc.control.services import Services

from .conftest import make_user


def test_gzip_body_is_decoded_before_validation(client: TestClient, services: Services) -> None:
    headers = make_user(services, "ops", Role.ADMIN)
    body = gzip.compress(json.dumps({"name": "bob", "role": "viewer"}).encode())
    r = client.post(
        "/api/v1/users",
        content=body,
        headers={**headers, "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "bob"


def test_decompression_bomb_is_refused(client: TestClient) -> None:
    bomb = gzip.compress(b"0" * (8 * 1024 * 1024))
    r = client.post("/api/v1/auth/login", content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
