"""The fleet CA (`microdc ca …`, microdc.protocol.pki) and enrollment with a CSR, in-process and quick."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from microdc.cli.main import app as cli
from microdc.protocol import pki

from .conftest import Fleet, problem

runner = CliRunner()


def invoke(*args: str) -> Any:
    return runner.invoke(cli, list(args))


def test_ca_cli_mints_ca_site_and_server_certificates(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    r = invoke("ca", "init", str(ca_dir))
    assert r.exit_code == 0, r.output
    assert (ca_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    ca = pki.Ca.load(ca_dir)
    assert ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # never silently replaced
    again = invoke("ca", "init", str(ca_dir))
    assert again.exit_code == 2 and "refusing to overwrite" in again.output

    r = invoke("ca", "issue", "munich-1", "--ca", str(ca_dir), "--out", str(tmp_path / "site"))
    assert r.exit_code == 0, r.output
    cert = pki.load_cert(tmp_path / "site" / "munich-1.pem")
    assert pki.site_of_certificate(cert) == "munich-1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert (tmp_path / "site" / "munich-1.key").stat().st_mode & 0o777 == 0o600
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=364) < life <= dt.timedelta(days=366)

    r = invoke(
        "ca", "server", "cp.example.org", "10.0.0.5", "--ca", str(ca_dir), "--out", str(tmp_path / "srv")
    )
    assert r.exit_code == 0, r.output
    srv = pki.load_cert(tmp_path / "srv" / "server.pem")
    san = srv.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cp.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    assert "sha256//" in r.output

    r = invoke("ca", "pin", str(tmp_path / "srv" / "server.pem"))
    pins = r.output.split()
    assert [pki.parse_pin(p).kind for p in pins] == ["spki", "cert"]
    assert pki.pin_matches([pki.parse_pin(p) for p in pins], srv.public_bytes(pki.serialization.Encoding.DER))


def test_ca_issue_signs_a_csr_without_seeing_the_key(tmp_path: Path) -> None:
    invoke("ca", "init", str(tmp_path / "ca"))
    key = pki.new_key("ed25519")
    (tmp_path / "req.csr").write_bytes(pki.csr_pem(pki.make_csr(key, "someone-else")))
    r = invoke("ca", "issue", "s-2", "--ca", str(tmp_path / "ca"), "--csr", str(tmp_path / "req.csr"),
               "--out", str(tmp_path))  # fmt: skip
    assert r.exit_code == 0, r.output
    cert = pki.load_cert(tmp_path / "s-2.pem")
    assert pki.site_of_certificate(cert) == "s-2"  # the CA decides whose it is, not the CSR
    assert pki.spki_sha256(cert) == pki.spki_sha256_of_key(key)
    assert not (tmp_path / "s-2.key").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ca", "issue", "x", "--ca", "{tmp}/nowhere"], "microdc ca init"),
        (["ca", "issue", "bad site!", "--ca", "{tmp}/ca"], "site id"),
        (["ca", "server", "not a name", "--ca", "{tmp}/ca"], "not a DNS name"),
        (["ca", "init", "{tmp}/c2", "--key-type", "rsa"], "--key-type"),
        (
            ["ca", "issue", "x", "--ca", "{tmp}/ca", "--csr", "{tmp}/missing.csr"],
            "certificate signing request",
        ),
    ],
)
def test_ca_cli_errors_are_clear(tmp_path: Path, args: list[str], message: str) -> None:
    invoke("ca", "init", str(tmp_path / "ca"))
    r = invoke(*[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output


def test_site_of_certificate_trusts_the_san_over_the_cn(tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    cert = pki.issue_site(ca, "north-1", key=pki.new_key())
    assert pki.site_of_certificate(cert) == "north-1"
    with pytest.raises(pki.PkiError, match="already exists"):
        pki.write_private(tmp_path / "ca" / "ca.key", b"x")


class TestEnrollmentWithCsr:
    @pytest.fixture
    def settings_kw(self, tmp_path: Path) -> dict[str, Any]:
        pki.init_ca(tmp_path / "fleet-ca")
        return {"ca_dir": str(tmp_path / "fleet-ca")}

    def _token(self, fleet: Fleet, site: str) -> str:
        fleet.create(site)
        r = fleet.client.post(f"/api/v1/sites/{site}/enrollment-tokens", headers=fleet.admin_h)
        return str(r.json()["token"])

    def test_csr_asking_for_another_site_gets_a_certificate_for_its_own(self, fleet: Fleet) -> None:
        token = self._token(fleet, "north-1")
        key = pki.new_key()
        csr = pki.csr_pem(pki.make_csr(key, "south-1")).decode()
        r = fleet.client.post("/api/v1/enroll", json={"token": token, "csr": csr})
        assert r.status_code == 201, r.text
        cert = x509.load_pem_x509_certificate(r.json()["client_certificate"].encode())
        assert pki.site_of_certificate(cert) == "north-1"
        assert "BEGIN CERTIFICATE" in r.json()["ca_certificate"]

    def test_a_bad_csr_does_not_spend_the_token(self, fleet: Fleet) -> None:
        token = self._token(fleet, "north-1")
        r = fleet.client.post("/api/v1/enroll", json={"token": token, "csr": "-----BEGIN NOPE-----"})
        assert problem(r, 422, "bad-csr")["detail"].startswith("csr:")
        r = fleet.client.post("/api/v1/enroll", json={"token": token})
        assert r.status_code == 201, r.text

    def test_rotation_with_a_csr_renews_the_certificate(self, fleet: Fleet) -> None:
        token = self._token(fleet, "north-1")
        cred = fleet.client.post("/api/v1/enroll", json={"token": token}).json()
        csr = pki.csr_pem(pki.make_csr(pki.new_key(), "north-1")).decode()
        r = fleet.client.post(
            "/api/v1/site-credentials/rotate",
            json={"csr": csr},
            headers={"Authorization": f"Bearer {cred['token']}"},
        )
        assert r.status_code == 201, r.text
        assert pki.site_of_pem(r.json()["client_certificate"]) == "north-1"


def test_csr_without_a_fleet_ca_is_refused_before_the_token_is_spent(fleet: Fleet) -> None:
    fleet.create("north-1")
    token = fleet.client.post("/api/v1/sites/north-1/enrollment-tokens", headers=fleet.admin_h).json()[
        "token"
    ]
    csr = pki.csr_pem(pki.make_csr(pki.new_key(), "north-1")).decode()
    r = fleet.client.post("/api/v1/enroll", json={"token": token, "csr": csr})
    problem(r, 422, "csr-not-accepted")
    assert fleet.client.post("/api/v1/enroll", json={"token": token}).status_code == 201


def test_serve_refuses_incomplete_or_broken_tls_settings(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cp.db"
    r = invoke("serve", "--db", db, "--tls-cert", str(tmp_path / "s.pem"))
    assert r.exit_code == 2 and "tls_certfile and tls_keyfile" in r.output
    r = invoke(
        "serve", "--db", db, "--tls-cert", str(tmp_path / "s.pem"), "--tls-key", str(tmp_path / "s.key")
    )
    assert r.exit_code == 2 and "file not found" in r.output
    ca = pki.init_ca(tmp_path / "ca")
    k1, k2 = pki.new_key(), pki.new_key()
    pki.write_public(tmp_path / "s.pem", pki.cert_pem(pki.issue_server(ca, ["127.0.0.1"], k1)))
    pki.write_private(tmp_path / "s.key", pki.key_pem(k2))  # not its key
    r = invoke(
        "serve", "--db", db, "--tls-cert", str(tmp_path / "s.pem"), "--tls-key", str(tmp_path / "s.key")
    )
    assert r.exit_code == 2 and "matching key" in r.output
    r = invoke("serve", "--db", db, "--site-cert-required")
    assert r.exit_code == 2 and "tls_client_ca" in r.output
    assert "Traceback" not in r.output


def test_uvicorn_gets_the_client_certificate_settings() -> None:
    import ssl

    from microdc.cli.control_cmds import uvicorn_options
    from microdc.control.settings import Settings

    plain = uvicorn_options(Settings())
    assert "ssl_certfile" not in plain
    tls = Settings(tls_certfile="s.pem", tls_keyfile="s.key", tls_client_ca="ca.pem")
    opts = uvicorn_options(tls)
    assert opts["ssl_cert_reqs"] == ssl.CERT_OPTIONAL and opts["ssl_ca_certs"] == "ca.pem"
    assert opts["http"].endswith("tlsext:AutoTlsProtocol")
    strict = uvicorn_options(tls.model_copy(update={"tls_client_certs": "required"}))
    assert strict["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    # worker processes rebuild the same settings from the environment
    assert Settings.from_env(tls.to_env()) == tls
