"""X-Forwarded-For only from trusted proxies (rule ``xff-trusted-proxies``).

The attack: a process on the host (or anyone, if uvicorn believes the header) sends a forged
X-Forwarded-For to dodge the login rate limit and to write a chosen IP into the audit log. It must be
rate limited and audited under its real peer address; a configured reverse proxy's header is used.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from microdc.cli.control_cmds import uvicorn_options
from microdc.control.app import create_app
from microdc.control.dashboard.auth import is_https
from microdc.control.devserver import free_port
from microdc.control.proxies import client_address, is_trusted
from microdc.control.services import Services
from microdc.control.settings import Settings

from .conftest import audit_entries, sec_settings

warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*", category=Warning)


def _fail_login(c: Any, forged: str, user: str = "root") -> int:
    r = c.post(
        "/api/v1/auth/login",
        json={"username": user, "password": "guess guess guess"},
        headers={"X-Forwarded-For": forged},
    )
    return int(r.status_code)


class TestFromLoopback:
    @pytest.fixture
    def peer(self) -> tuple[str, int]:
        return ("127.0.0.1", 40000)

    @pytest.fixture
    def settings_kw(self) -> dict[str, Any]:
        return {"login_burst": 3}

    def test_forged_header_is_rate_limited_and_audited_with_the_real_peer(
        self, client: TestClient, services: Services
    ) -> None:
        # a fresh forged address and user name each time: only the peer IP bucket can stop it
        codes = [_fail_login(client, f"203.0.113.{i}", user=f"u{i}") for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        ips = {e["client_ip"] for e in audit_entries(services, "auth.login_failed")}
        assert ips == {"127.0.0.1"}


class TestBehindATrustedProxy:
    @pytest.fixture
    def peer(self) -> tuple[str, int]:
        return ("10.0.0.5", 40000)

    @pytest.fixture
    def settings_kw(self) -> dict[str, Any]:
        return {"login_burst": 2, "trusted_proxies": ["10.0.0.0/24"]}

    def test_the_proxys_header_names_the_client(self, client: TestClient, services: Services) -> None:
        assert [_fail_login(client, "198.51.100.7", user=f"a{i}") for i in range(3)] == [401, 401, 429]
        # another client behind the same proxy has its own bucket
        assert _fail_login(client, "198.51.100.8", user="b") == 401
        # a client prepending a forged hop gets the address the proxy saw (right-most untrusted)
        assert _fail_login(client, "1.2.3.4, 198.51.100.9", user="c") == 401
        ips = [e["client_ip"] for e in audit_entries(services, "auth.login_failed")]
        assert ips == ["198.51.100.7", "198.51.100.7", "198.51.100.8", "198.51.100.9"]

    def test_dashboard_trusts_forwarded_proto_only_from_the_proxy(self, app: FastAPI) -> None:
        def request(peer: str) -> Request:
            headers = [(b"x-forwarded-proto", b"https"), (b"host", b"mdc.example")]
            scope = {"type": "http", "scheme": "http", "path": "/", "query_string": b"", "client": (peer, 1)}
            return Request({**scope, "headers": headers, "app": app})

        assert is_https(request("10.0.0.5"))  # the proxy terminated TLS: the session cookie is Secure
        assert not is_https(request("127.0.0.1"))  # anyone else cannot claim https


def test_client_address_rules() -> None:
    proxies = ("10.0.0.0/8", "192.0.2.1/32")
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"  # nothing trusted
    assert client_address("127.0.0.1", ["203.0.113.9"], proxies) == "127.0.0.1"  # loopback is not a proxy
    assert client_address("10.1.1.1", ["203.0.113.9"], proxies) == "203.0.113.9"
    assert client_address("10.1.1.1", ["6.6.6.6, 203.0.113.9, 192.0.2.1"], proxies) == "203.0.113.9"
    assert client_address("10.1.1.1", ["6.6.6.6", "203.0.113.9:4711"], proxies) == "203.0.113.9"
    assert client_address("10.1.1.1", ["[2001:db8::1]:443"], proxies) == "2001:db8::1"
    assert client_address("10.1.1.1", ["10.2.2.2"], proxies) == "10.2.2.2"  # all hops trusted: left-most
    assert client_address("10.1.1.1", ["evil, not-an-ip"], proxies) == "10.1.1.1"  # garbage: the proxy
    assert client_address("10.1.1.1", [], proxies) == "10.1.1.1"
    assert is_trusted("::ffff:10.0.0.1", proxies) and not is_trusted("testclient", proxies)


def test_settings_refuse_trusting_forwarded_for_without_proxies() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trust_forwarded_for=True)
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies=["proxy.example"])
    s = Settings.from_env({"MICRODC_TRUSTED_PROXIES": "10.0.0.1, 192.168.0.0/16"})
    assert s.trusted_proxies == ("10.0.0.1/32", "192.168.0.0/16")
    assert Settings.from_env(s.to_env()).trusted_proxies == s.trusted_proxies


def test_serve_turns_uvicorn_proxy_headers_off_unless_proxies_are_configured() -> None:
    off = uvicorn_options(Settings())
    assert off["proxy_headers"] is False and off["forwarded_allow_ips"] is None
    on = uvicorn_options(Settings(trusted_proxies=["10.0.0.0/8"]))
    assert on["proxy_headers"] is True and on["forwarded_allow_ips"] == ["10.0.0.0/8"]


def test_serve_cli_passes_trusted_proxies(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from microdc.cli.main import app as cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    db = f"sqlite:///{tmp_path}/serve.db"
    r = CliRunner().invoke(cli, ["serve", "--db", db, "--trusted-proxy", "10.9.0.0/16"])
    assert r.exit_code == 0, r.output
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == ["10.9.0.0/16"]
    r = CliRunner().invoke(cli, ["serve", "--db", db])
    assert r.exit_code == 0 and seen["proxy_headers"] is False
    r = CliRunner().invoke(cli, ["serve", "--db", db, "--trusted-proxy", "not-a-net"])
    assert r.exit_code == 2 and "trusted_proxies" in r.output and "Traceback" not in r.output


class _Server:
    def __init__(self, app: FastAPI, **options: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **options
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_app(tmp_path: Any) -> Iterator[FastAPI]:
    yield create_app(sec_settings(f"sqlite:///{tmp_path}/live.db", login_burst=2))


def _serve_kw(settings: Settings) -> dict[str, Any]:
    kw = uvicorn_options(settings)
    return {k: kw[k] for k in ("proxy_headers", "forwarded_allow_ips")}


def test_real_uvicorn_as_serve_starts_it_ignores_a_forged_header(live_app: FastAPI) -> None:
    services: Services = live_app.state.services
    with _Server(live_app, **_serve_kw(services.settings)) as url, httpx.Client(base_url=url) as c:
        codes = [_fail_login(c, f"203.0.113.{i}", user=f"u{i}") for i in range(3)]
    assert codes == [401, 401, 429]
    assert {e["client_ip"] for e in audit_entries(services, "auth.login_failed")} == {"127.0.0.1"}


def test_uvicorn_defaults_would_believe_the_forged_header(live_app: FastAPI) -> None:
    """Why `serve` must pass proxy_headers: uvicorn's own defaults trust X-Forwarded-For from
    127.0.0.1, so the same attack then gets a fresh rate-limit bucket and a forged audit IP."""
    services: Services = live_app.state.services
    with _Server(live_app) as url, httpx.Client(base_url=url) as c:
        codes = [_fail_login(c, f"203.0.113.{i}", user=f"u{i}") for i in range(3)]
    assert codes == [401, 401, 401]
    assert {e["client_ip"] for e in audit_entries(services, "auth.login_failed")} == {
        "203.0.113.0",
        "203.0.113.1",
        "203.0.113.2",
    }
