"""`site_cert_required`: a site credential counts only over mutual TLS with the site's own certificate.

In-process (no TLS here, so no client certificate reaches the app): the credential alone is refused with
a 403 naming the rule, while people and enrollment still work. The TLS end of it is in test_links.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from microdc.control.certbind import RULE_CERT_OTHER_SITE, RULE_CERT_REQUIRED, check_site_certificate
from microdc.protocol import pki

from .conftest import Fleet, audit_entries, counter, problem


@pytest.fixture
def settings_kw() -> dict[str, Any]:
    return {
        "tls_certfile": "server.pem",
        "tls_keyfile": "server.key",
        "tls_client_ca": "ca.pem",
        "site_cert_required": True,
    }


def test_site_credential_without_its_certificate_is_refused(fleet: Fleet, services: Any) -> None:
    fleet.create("north-1")
    cred = fleet.enroll("north-1")  # enrollment itself needs no certificate
    r = fleet.client.post("/api/v1/sites/north-1/heartbeat", json={}, headers=fleet.site_h["north-1"])
    body = problem(r, 403, RULE_CERT_REQUIRED)
    assert body["rule"] == RULE_CERT_REQUIRED and "'north-1'" in body["detail"]
    assert counter(services, "microdc_refused_total", rule=RULE_CERT_REQUIRED, route="auth") == 1
    assert audit_entries(services, "auth.client_cert_refused")[-1]["details"]["token_id"] == cred["token_id"]
    # people are not bound to certificates
    assert fleet.client.get("/api/v1/sites", headers=fleet.admin_h).status_code == 200


def test_binding_rules(tmp_path: Any) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    pem = pki.cert_pem(pki.issue_site(ca, "south-1", key=pki.new_key())).decode()
    assert check_site_certificate("south-1", pem, required=True) is None
    other = check_site_certificate("north-1", pem, required=False)
    assert other is not None and other.rule == RULE_CERT_OTHER_SITE
    assert check_site_certificate("north-1", None, required=False) is None


def test_telemetry_without_the_sites_certificate_is_refused(fleet: Fleet, services: Any) -> None:
    """The telemetry route authenticates on its own path (one transaction); it is bound all the same."""
    fleet.create("north-1")
    fleet.enroll("north-1")
    body = {"batch_id": "b1", "seq": 0, "readings": []}
    r = fleet.client.post("/api/v1/sites/north-1/telemetry", json=body, headers=fleet.site_h["north-1"])
    problem(r, 403, RULE_CERT_REQUIRED)
