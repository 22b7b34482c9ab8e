"""Fixtures for the site agent: a real control plane (in-process uvicorn, SQLite) that records every request
body it receives, an admin token, sites with enrollment tokens, and agent configs."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from microdc.agent.config import AgentConfig, parse_config
from microdc.demo.fleet import ControlPlaneThread, create_admin


class Capture:
    """ASGI wrapper that records (method, path, decoded body) of every request: what crossed the uplink."""

    def __init__(self, app: Any):
        self.app = app
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        with self.lock:
            self.requests.append((scope["method"], scope["path"], body))
        done = False

        async def replay() -> Any:
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def bodies(self, suffix: str) -> list[Any]:
        with self.lock:
            return [b for m, p, b in self.requests if m == "POST" and p.endswith(suffix)]

    def readings(self) -> list[dict[str, Any]]:
        return [r for b in self.bodies("/telemetry") if isinstance(b, dict) for r in b.get("readings", [])]


@dataclass
class ControlPlane:
    thread: ControlPlaneThread
    admin_token: str
    capture: Capture
    db_url: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.thread.url

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.admin, timeout=30)

    def add_site(self, site_id: str, jurisdiction: str = "DE", ancestors: list[str] | None = None) -> str:
        """Create a site and return a one-time enrollment token for it."""
        body = {
            "id": site_id,
            "name": site_id,
            "lat": 48.1,
            "lon": 11.5,
            "jurisdiction": jurisdiction,
            "jurisdiction_ancestors": ["EU"] if ancestors is None else ancestors,
            "security_tier": 3,
            "grid_power_kw": 30,
            "modules": [
                {
                    "name": "m1",
                    "rack_units": 42,
                    "max_it_kw": 20,
                    "cooling_kind": "dx",
                    "servers": [
                        {
                            "name": "s",
                            "server_type": "r650",
                            "quantity": 2,
                            "cores": 32,
                            "memory_gb": 256,
                            "idle_w": 150,
                            "peak_w": 600,
                        }
                    ],
                }
            ],
        }
        with self.client() as c:
            r = c.post("/api/v1/sites", json=body)
            assert r.status_code in (201, 409), r.text
            return self.enrollment_token(site_id)

    def enrollment_token(self, site_id: str) -> str:
        with self.client() as c:
            r = c.post(f"/api/v1/sites/{site_id}/enrollment-tokens")
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

    def history(self, site_id: str, sensor_id: str) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.get(
                f"/api/v1/sites/{site_id}/sensors/{sensor_id}/history",
                params={"resolution": "raw", "start": "2000-01-01T00:00:00Z", "limit": 100000},
            )
            if r.status_code == 404:
                return []  # no reading of this sensor yet
            assert r.status_code == 200, r.text
            return list(r.json()["points"])

    def sensors(self, site_id: str) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.get(f"/api/v1/sites/{site_id}/sensors")
            assert r.status_code == 200, r.text
            return list(r.json())

    def alarms(self, site_id: str) -> list[dict[str, Any]]:
        with self.client() as c:
            r = c.get("/api/v1/alarms", params={"site_id": site_id})
            assert r.status_code == 200, r.text
            return list(r.json())


def start_control_plane(tmp_path: Path, *, decompress: bool = True, **settings: Any) -> ControlPlane:
    db_url = f"sqlite:///{tmp_path}/control.db"
    token = create_admin(db_url)
    holder: dict[str, Capture] = {}

    def wrap(app: Any) -> Any:
        holder["c"] = Capture(app)
        return holder["c"]

    base = {"enroll_burst": 1000, "rotate_burst": 1000, "background_tasks": False}
    # argon2id at OWASP's minimum, the cheapest the settings accept
    base |= {"password_memory_kib": 19456, "password_time_cost": 2, "password_parallelism": 1}
    base.update(settings)
    th = ControlPlaneThread(db_url, settings=base, wrap=wrap, decompress=decompress).start()
    return ControlPlane(th, token, holder["c"], db_url)


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    cp = start_control_plane(tmp_path)
    try:
        yield cp
    finally:
        cp.thread.stop()


def agent_config(tmp_path: Path, **overrides: Any) -> AgentConfig:
    """A fast agent config (short intervals, deterministic backoff) with overrides merged in."""
    data: dict[str, Any] = {
        "state_path": str(tmp_path / "agent" / "state.db"),
        "intervals": {"poll_s": 0.5, "heartbeat_s": 1, "desired_s": 2, "housekeeping_s": 0.5},
        "uplink": {"flush_s": 0.5, "report_every_s": 0, "backoff": {"initial_s": 0.2, "max_s": 1, "seed": 1}},
        "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return parse_config(data, file="<test>", base_dir=tmp_path)


class AgentThread:
    """Run an Agent in its own event loop thread (so tests can drive servers and devices meanwhile)."""

    def __init__(self, make: Callable[[], Any]):
        self.make = make
        self.agent: Any = None
        self.error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.agent = self.make()
            self.ready.set()
            await self.agent.run()

        try:
            self.loop.run_until_complete(main())
        except BaseException as e:
            self.error = e
            self.ready.set()

    def start(self) -> AgentThread:
        self.thread.start()
        self.ready.wait(30)
        if self.error:
            raise self.error
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run fn in the agent's loop thread and return its result."""
        fut: Any = asyncio.run_coroutine_threadsafe(_as_coro(fn), self.loop)
        return fut.result(30)

    def stop(self) -> None:
        if self.agent is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.agent.stop)
        self.thread.join(30)
        if self.error and not isinstance(self.error, asyncio.CancelledError):
            raise self.error


async def _as_coro(fn: Callable[[], Any]) -> Any:
    return fn()


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or pred}")
