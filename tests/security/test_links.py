"""Attacks on the links between agents and the control plane, over real TLS (uvicorn + the agent's uplink).

A private CA is minted per module (microdc.protocol.pki), the control plane serves HTTPS with optional
client certificates, and real agents' uplinks enroll with a CSR. Each attack must fail with a reason an
installer can act on: wrong CA, expired certificate, hostname or pin mismatch, another site's certificate,
a missing client certificate, plain HTTP to a TLS port.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from control.conftest import make_user, test_settings
from microdc.agent.config import AgentConfigError, TlsConfig, UplinkConfig, parse_config
from microdc.agent.state import State
from microdc.agent.tls import AgentTls
from microdc.agent.uplink import Uplink, UplinkError
from microdc.cli.control_cmds import tls_options
from microdc.control.app import create_app
from microdc.control.models import Site
from microdc.control.security import Role
from microdc.protocol import pki

from .conftest import audit_entries, counter, site_body


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Plane:
    url: str
    dir: Path
    services: Any
    admin_h: dict[str, str]
    server: Any = None
    thread: threading.Thread | None = None
    sites: list[str] = field(default_factory=list)

    def stop(self) -> None:
        self.server.should_exit = True
        assert self.thread is not None
        self.thread.join(timeout=15)

    def admin(self) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca" / "ca.pem"))
        ctx.load_cert_chain(str(self.dir / "ops.pem"), str(self.dir / "ops.key"))  # a person's cert
        return httpx.Client(base_url=self.url, verify=ctx, headers=self.admin_h)

    def enrollment_token(self, site_id: str) -> str:
        with self.admin() as c:
            if site_id not in self.sites:
                assert c.post("/api/v1/sites", json=site_body(site_id)).status_code == 201
                self.sites.append(site_id)
            r = c.post(f"/api/v1/sites/{site_id}/enrollment-tokens")
            assert r.status_code == 201, r.text
            return str(r.json()["token"])


def _pki(d: Path) -> None:
    ca = pki.init_ca(d / "ca")
    key = pki.new_key()
    pki.write_private(d / "server.key", pki.key_pem(key))
    pki.write_public(d / "server.pem", pki.cert_pem(pki.issue_server(ca, ["127.0.0.1"], key)))
    pki.init_ca(d / "other-ca", "an attacker's CA")
    ops = pki.new_key()
    pki.write_private(d / "ops.key", pki.key_pem(ops))
    pki.write_public(d / "ops.pem", pki.cert_pem(pki.issue_site(ca, "ops", key=ops)))


def start_plane(d: Path, **settings_kw: Any) -> Plane:
    port = _free_port()
    settings = test_settings(
        f"sqlite:///{d}/cp-{port}.db",
        port=port,
        tls_certfile=str(d / "server.pem"),
        tls_keyfile=str(d / "server.key"),
        tls_client_ca=str(d / "ca" / "ca.pem"),
        ca_dir=str(d / "ca"),
        **settings_kw,
    )
    import uvicorn

    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **tls_options(settings)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "control plane did not start"
        time.sleep(0.02)
    services = app.state.services
    plane = Plane(f"https://127.0.0.1:{port}", d, services, make_user(services, "alice", Role.ADMIN))
    plane.server, plane.thread = server, thread
    return plane


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _pki(d)
    return d


@pytest.fixture(scope="module")
def plane(pki_dir: Path) -> Iterator[Plane]:
    p = start_plane(pki_dir)
    yield p
    p.stop()


def agent_tls(d: Path, name: str, **kw: Any) -> AgentTls:
    cfg = TlsConfig(
        ca_file=str(d / "ca" / "ca.pem"),
        client_cert=str(d / f"{name}.pem"),
        client_key=str(d / f"{name}.key"),
        **kw,
    )
    return AgentTls(cfg, lambda p: Path(p))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _enroll(plane: Plane, tls: AgentTls, token: str, state: Path) -> dict[str, Any]:
    up = Uplink(plane.url, State(state), UplinkConfig(), tls=tls)
    try:
        return await up.enroll(token, "test")
    finally:
        await up.close()


async def _heartbeat(
    url: str, tls: AgentTls, cred: dict[str, Any], state: Path, seq: int = 1
) -> dict[str, Any]:
    st = State(state)
    st.set("credential", cred)
    up = Uplink(url, st, UplinkConfig(), tls=tls)
    try:
        return await up.heartbeat(cred["site_id"], {"seq": seq})
    finally:
        await up.close()


@pytest.fixture(scope="module")
def enrolled(plane: Plane, pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Sites north-1 and south-1 enrolled over TLS with a CSR each: their credentials."""
    out = {}
    for site in ("north-1", "south-1"):
        tls = agent_tls(pki_dir, site)
        state = tmp_path_factory.mktemp(site) / "agent.db"
        out[site] = run(_enroll(plane, tls, plane.enrollment_token(site), state))
    return out


def test_enrollment_with_csr_hands_the_site_its_certificate(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path
) -> None:
    cred = enrolled["north-1"]
    cert = pki.load_cert(pki_dir / "north-1.pem")
    assert pki.site_of_certificate(cert) == "north-1"
    assert (pki_dir / "north-1.key").stat().st_mode & 0o777 == 0o600
    # the key stayed here: the certificate is for the key the agent made, the answer carries no key
    assert pki.spki_sha256(cert) == pki.spki_sha256_of_key(pki.load_key(pki_dir / "north-1.key"))
    assert "PRIVATE KEY" not in str(cred)
    issued = audit_entries(plane.services, "site.certificate_issue")
    assert any(e["target"] == "site:north-1" for e in issued)
    # and the site speaks with it
    out = run(_heartbeat(plane.url, agent_tls(pki_dir, "north-1"), cred, tmp_path / "a.db"))
    assert "heartbeat_interval_s" in out


def test_cross_site_certificate_is_refused(plane: Plane, pki_dir: Path, enrolled: dict[str, Any]) -> None:
    """north-1's credential over a connection with south-1's client certificate: 403, audited, counted."""
    before = counter(plane.services, "microdc_refused_total", rule="client-cert-other-site", route="auth")
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca" / "ca.pem"))
    ctx.load_cert_chain(str(pki_dir / "south-1.pem"), str(pki_dir / "south-1.key"))
    token = enrolled["north-1"]["token"]
    with httpx.Client(verify=ctx) as c:
        r = c.post(
            f"{plane.url}/api/v1/sites/north-1/heartbeat",
            json={},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["rule"] == "client-cert-other-site"
    assert "'south-1'" in body["detail"] and "'north-1'" in body["detail"]
    refused = audit_entries(plane.services, "auth.client_cert_refused")
    assert refused and refused[-1]["details"]["rule"] == "client-cert-other-site"
    after = counter(plane.services, "microdc_refused_total", rule="client-cert-other-site", route="auth")
    assert after == before + 1


def test_wrong_ca_is_an_error_naming_it(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path
) -> None:
    wrong = pki_dir / "other-ca" / "ca.pem"
    tls = AgentTls(TlsConfig(ca_file=str(wrong)), lambda p: Path(p))
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(plane.url, tls, enrolled["north-1"], tmp_path / "a.db"))
    assert ei.value.kind == "tls"
    assert "wrong CA" in str(ei.value) and str(wrong) in str(ei.value)


def test_ssl_cert_file_in_the_environment_is_not_trusted(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old, undocumented way to trust a private CA no longer works: only tls.ca_file does."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki_dir / "ca" / "ca.pem"))
    tls = AgentTls(TlsConfig(), lambda p: Path(p))
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(plane.url, tls, enrolled["north-1"], tmp_path / "a.db"))
    assert ei.value.kind == "tls" and "tls.ca_file" in str(ei.value)
    # and an agent whose agent.yaml has no `tls:` at all gets the same explicit setup
    from microdc.agent.runner import Agent

    cfg = parse_config(
        {
            "site_id": "north-1",
            "server": plane.url,
            "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
        },
        base_dir=tmp_path,
    )
    agent = Agent(cfg, sources=[])
    agent.state.set("credential", enrolled["north-1"])

    async def beat() -> None:
        try:
            await agent.uplink.heartbeat("north-1", {"seq": 1})
        finally:
            await agent.uplink.close()

    with pytest.raises(UplinkError) as ei:
        run(beat())
    assert ei.value.kind == "tls"


def test_hostname_mismatch(plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path) -> None:
    url = plane.url.replace("127.0.0.1", "localhost")  # the certificate names only 127.0.0.1
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(url, agent_tls(pki_dir, "north-1"), enrolled["north-1"], tmp_path / "a.db"))
    assert ei.value.kind == "tls" and "hostname mismatch" in str(ei.value)


def test_pin_mismatch_refused_before_any_request(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path
) -> None:
    other = pki.pins_of(pki.load_cert(pki_dir / "other-ca" / "ca.pem"))[0]
    tls = agent_tls(pki_dir, "north-1", pins=[str(other)])
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(plane.url, tls, enrolled["north-1"], tmp_path / "a.db", seq=777))
    assert ei.value.kind == "tls" and "pin mismatch" in str(ei.value)
    with plane.services.db.read_session() as s:  # the server never saw the request
        assert s.get(Site, "north-1").last_heartbeat_seq != 777
    # the right pin (SPKI or certificate) passes
    for pin in pki.pins_of(pki.load_cert(pki_dir / "server.pem")):
        ok = agent_tls(pki_dir, "north-1", pins=[str(pin)])
        assert "heartbeat_interval_s" in run(
            _heartbeat(plane.url, ok, enrolled["north-1"], tmp_path / "b.db")
        )


def test_expired_client_certificate_is_refused(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path
) -> None:
    ca = pki.Ca.load(pki_dir / "ca")
    key = pki.new_key()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert = pki.issue_site(ca, "north-1", key=key, days=1, not_before=old)
    pki.write_private(tmp_path / "old.key", pki.key_pem(key))
    pki.write_public(tmp_path / "old.pem", pki.cert_pem(cert))
    tls = agent_tls(tmp_path, "old", request_certificate=False)
    tls.ca_file = pki_dir / "ca" / "ca.pem"
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(plane.url, tls, enrolled["north-1"], tmp_path / "a.db"))
    # named from the certificate itself (path and date), not guessed from how the server hung up
    assert ei.value.kind == "tls" and f"{tmp_path / 'old.pem'} expired at" in str(ei.value), str(ei.value)


def test_plain_http_to_the_tls_port_fails_cleanly(plane: Plane, pki_dir: Path) -> None:
    with pytest.raises(httpx.TransportError), httpx.Client(timeout=5) as c:
        c.get(plane.url.replace("https://", "http://") + "/healthz")
    with plane.admin() as c:  # and the server keeps serving
        assert c.get("/api/v1/sites").status_code == 200


def test_tls_settings_with_an_http_server_url_are_a_config_error(tmp_path: Path) -> None:
    data = {
        "site_id": "s1",
        "server": "http://cp.example:8443",
        "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
        "tls": {"pins": ["sha256//" + "A" * 43 + "="]},
    }
    with pytest.raises(AgentConfigError) as ei:
        parse_config(data, file="agent.yaml", base_dir=tmp_path)
    assert any(p.field == "server" and "https://" in p.message for p in ei.value.problems)


def test_bad_pin_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    data = {"policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"}, "tls": {"pins": ["md5:abc"]}}
    with pytest.raises(AgentConfigError) as ei:
        parse_config(data, file="agent.yaml", base_dir=tmp_path)
    assert any(p.field.startswith("tls") and "sha256//" in p.message for p in ei.value.problems)


@pytest.fixture(scope="module")
def strict_plane(pki_dir: Path) -> Iterator[Plane]:
    """Client certificates required at the handshake, and site credentials only with their own."""
    p = start_plane(pki_dir, tls_client_certs="required", site_cert_required=True)
    yield p
    p.stop()


def test_required_client_certificate(strict_plane: Plane, pki_dir: Path, tmp_path: Path) -> None:
    tls = AgentTls(TlsConfig(ca_file=str(pki_dir / "ca" / "ca.pem")), lambda p: Path(p))
    with pytest.raises(UplinkError) as ei:
        run(_enroll(strict_plane, tls, "mdc_e_whatever", tmp_path / "a.db"))
    assert ei.value.kind == "tls" and "requires a client certificate" in str(ei.value)


def test_client_certificate_of_another_ca_is_refused(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path
) -> None:
    rogue = pki.init_ca(tmp_path / "rogue")
    key = pki.new_key()
    pki.write_private(tmp_path / "fake.key", pki.key_pem(key))
    pki.write_public(tmp_path / "fake.pem", pki.cert_pem(pki.issue_site(rogue, "north-1", key=key)))
    tls = agent_tls(tmp_path, "fake", request_certificate=False)
    tls.ca_file = pki_dir / "ca" / "ca.pem"
    with pytest.raises(UplinkError) as ei:
        run(_heartbeat(plane.url, tls, enrolled["north-1"], tmp_path / "a.db"))
    assert ei.value.kind == "tls" and "refused our client certificate" in str(ei.value), str(ei.value)


def test_strict_plane_accepts_the_sites_own_certificate(
    strict_plane: Plane, pki_dir: Path, tmp_path: Path
) -> None:
    # an installer mints the first certificate offline (`microdc ca issue`), the agent enrolls with it
    ca = pki.Ca.load(pki_dir / "ca")
    key = pki.new_key()
    pki.write_private(tmp_path / "east-1.key", pki.key_pem(key))
    pki.write_public(tmp_path / "east-1.pem", pki.cert_pem(pki.issue_site(ca, "east-1", key=key)))
    tls = agent_tls(tmp_path, "east-1", request_certificate=False)
    tls.ca_file = pki_dir / "ca" / "ca.pem"
    cred = run(_enroll(strict_plane, tls, strict_plane.enrollment_token("east-1"), tmp_path / "a.db"))
    assert "heartbeat_interval_s" in run(_heartbeat(strict_plane.url, tls, cred, tmp_path / "b.db"))


def test_tls_failure_is_logged_as_error_not_offline(
    plane: Plane, pki_dir: Path, enrolled: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The agent's uplink loop reports a certificate failure at ERROR with the reason."""
    from microdc.agent.runner import Agent

    cfg = parse_config(
        {
            "site_id": "north-1",
            "server": plane.url,
            "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
            "tls": {"ca_file": str(pki_dir / "other-ca" / "ca.pem")},
            "uplink": {"backoff": {"initial_s": 30, "seed": 1}},
        },
        base_dir=tmp_path,
    )
    agent = Agent(cfg, sources=[])
    # renewal due: the loop's first call is a rotation (a queue this empty would make no request)
    agent.state.set("credential", {**enrolled["north-1"], "renew_after": "2000-01-01T00:00:00+00:00"})

    async def once() -> None:
        task = asyncio.create_task(agent._uplink_loop())
        for _ in range(200):
            await asyncio.sleep(0.02)
            if any(r.levelno == logging.ERROR for r in caplog.records):
                break
        agent.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await agent.uplink.close()

    with caplog.at_level(logging.INFO, logger="microdc.agent"):
        run(once())
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "wrong CA" in errors[0]


def test_tls_to_a_plain_http_port_says_so(pki_dir: Path, tmp_path: Path) -> None:
    """An agent pointed with https:// at a plain-HTTP listener: kind tls, 'does not speak TLS'."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def answer_plainly() -> None:
        for _ in range(4):
            try:
                conn, _addr = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    t = threading.Thread(target=answer_plainly, daemon=True)
    t.start()
    tls = AgentTls(TlsConfig(ca_file=str(pki_dir / "ca" / "ca.pem")), lambda p: Path(p))
    cred = {"site_id": "north-1", "token": "mdc_s_x"}
    try:
        with pytest.raises(UplinkError) as ei:
            run(_heartbeat(f"https://127.0.0.1:{port}", tls, cred, tmp_path / "a.db"))
    finally:
        srv.close()
    assert ei.value.kind == "tls" and "does not speak TLS" in str(ei.value), str(ei.value)


def test_agent_renews_its_certificate_with_a_rotation_near_expiry(
    plane: Plane, pki_dir: Path, tmp_path: Path
) -> None:
    """A certificate with less than renew_before_days left: the next rotation carries a CSR of a new key;
    key and certificate are replaced together, and the site goes on speaking with them."""
    tls = agent_tls(tmp_path, "west-1")
    tls.ca_file = pki_dir / "ca" / "ca.pem"
    cred = run(_enroll(plane, tls, plane.enrollment_token("west-1"), tmp_path / "a.db"))
    old_key = pki.load_key(tmp_path / "west-1.key")
    # the CA re-issues the same key with 10 days left (as if 355 days had passed)
    short = pki.issue_site(pki.Ca.load(pki_dir / "ca"), "west-1", key=old_key, days=10)
    (tmp_path / "west-1.pem").write_bytes(pki.cert_pem(short))
    tls = agent_tls(tmp_path, "west-1")
    tls.ca_file = pki_dir / "ca" / "ca.pem"

    async def rotate() -> dict[str, Any]:
        st = State(tmp_path / "b.db")
        st.set("credential", cred)
        up = Uplink(plane.url, st, UplinkConfig(), tls=tls)
        try:
            return await up.rotate("west-1")
        finally:
            await up.close()

    new = run(rotate())
    assert new["client_certificate"]
    cert = pki.load_cert(tmp_path / "west-1.pem")
    key = pki.load_key(tmp_path / "west-1.key")
    assert pki.spki_sha256(cert) == pki.spki_sha256_of_key(key) != pki.spki_sha256_of_key(old_key)
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)
    assert (tmp_path / "west-1.key").stat().st_mode & 0o777 == 0o600
    assert "heartbeat_interval_s" in run(_heartbeat(plane.url, tls, new, tmp_path / "c.db"))
    # a certificate far from its end is not renewed
    assert tls.csr("west-1", dt.datetime.now(dt.UTC), enrolling=False) is None
