"""The control plane does no harm by being away: a real server process is stopped for longer than the
heartbeat timeout while real agents keep running, then started again on the same database. No site may go
suspect or down, no alarm may be raised and no desired state may change — the sites are judged by what
arrives after the server is back (its own watch records the outage; see control/watch.py).

SQLite (slow) and PostgreSQL (services).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from microdc.agent.config import parse_config
from microdc.agent.runner import Agent
from microdc.control.devserver import ServerProcess
from microdc.demo.fleet import create_admin

from .conftest import site_body

SITES = ("a", "b", "c")
HEARTBEAT_S, MISSED = 2, 2  # heartbeat timeout 4 s
MARGIN_S = 3  # restart grace 7 s
OUTAGE_S = 10  # longer than the heartbeat timeout
OBSERVE_S = 11  # after the restart: the grace and some more


class Agents:
    """Real site agents in one event loop on a background thread."""

    def __init__(self, url: str, tokens: dict[str, str], workdir: Path) -> None:
        self.agents = [
            Agent(
                parse_config(
                    {
                        "site_id": sid,
                        "state_path": str(workdir / f"{sid}.db"),
                        "intervals": {
                            "poll_s": 1,
                            "heartbeat_s": HEARTBEAT_S,
                            "desired_s": 2,
                            "housekeeping_s": 1,
                        },
                        "uplink": {"flush_s": 1, "backoff": {"initial_s": 0.2, "max_s": 1, "seed": k}},
                        "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
                    },
                    file=f"<agent {sid}>",
                    base_dir=workdir,
                ),
                server=url,
                enroll_token=tokens[sid],
            )
            for k, sid in enumerate(SITES)
        ]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.gather(*(a.run() for a in self.agents), return_exceptions=True))

    def start(self) -> Agents:
        self.thread.start()
        return self

    def stop(self) -> None:
        for a in self.agents:
            self.loop.call_soon_threadsafe(a.stop)
        self.thread.join(30)


def _snapshot(c: httpx.Client) -> dict[str, Any]:
    sites = {s["id"]: (s["state"], s["desired_version"]) for s in c.get("/api/v1/sites").json()}
    workloads = {w["id"]: (w["site_id"], w["placement_state"]) for w in c.get("/api/v1/workloads").json()}
    events = {sid: len(c.get(f"/api/v1/sites/{sid}/state-events").json()) for sid in SITES}
    return {
        "sites": sites,
        "workloads": workloads,
        "events": events,
        "alarms": c.get("/api/v1/alarms").json(),
    }


def _wait(pred: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _outage(db_url: str, tmp_path: Path) -> None:
    token = create_admin(db_url)
    env = {
        "MICRODC_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
        "MICRODC_HEARTBEAT_MISSED_INTERVALS": str(MISSED),
        "MICRODC_MAINTENANCE_INTERVAL_S": "0.25",
        "MICRODC_RESTART_GRACE_MARGIN_S": str(MARGIN_S),
        "MICRODC_DOWN_HOLD_S": "0",
        "MICRODC_ENROLL_BURST": "1000",
    }
    server = ServerProcess(db_url, env=env, log_path=tmp_path / "server.log").start()
    agents: Agents | None = None
    admin = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.base_url, headers=admin, timeout=10) as c:
            tokens = {}
            for sid in SITES:
                assert c.post("/api/v1/sites", json=site_body(sid, cores=16)).status_code == 201
                tokens[sid] = c.post(f"/api/v1/sites/{sid}/enrollment-tokens").json()["token"]
            agents = Agents(server.base_url, tokens, tmp_path / "agents").start()
            _wait(lambda: all(s["state"] == "up" for s in c.get("/api/v1/sites").json()), 60, "agents up")
            for i in range(len(SITES)):
                body = {"id": f"w{i}", "data_class": "public", "origin_jurisdiction": "DE", "cores": 8}
                assert c.post("/api/v1/workloads", json=body).status_code == 201
            time.sleep(2 * HEARTBEAT_S)  # steady state: every agent has beaten since the workloads
            before = _snapshot(c)
        assert {v[0] for v in before["sites"].values()} == {"up"}
        assert {v[1] for v in before["workloads"].values()} == {"assigned"}
        assert before["alarms"] == []

        server.stop()
        time.sleep(OUTAGE_S)  # the agents keep running and keep failing to reach it
        server.start()
        started = time.monotonic()  # it records its start (and the gap before it) before it serves

        seen: set[str] = set()
        with httpx.Client(base_url=server.base_url, headers=admin, timeout=10) as c:
            while time.monotonic() - started < OBSERVE_S:
                seen |= {s["state"] for s in c.get("/api/v1/sites").json()}
                time.sleep(0.2)
            after = _snapshot(c)
            gaps = c.get("/api/v1/audit", params={"action": "control_plane.gap"}).json()
        assert seen == {"up"}, f"states seen after the restart: {seen}"
        assert after == before
        # (on a loaded machine the watch may also have seen its own loop stall: that is a gap too)
        starts = [d for d in (json.loads(g["details"]) for g in gaps) if d["cause"] == "process start"]
        assert starts, f"the server did not record its own outage: {gaps}"
        assert starts[-1]["seconds"] >= OUTAGE_S
    finally:
        if agents is not None:
            agents.stop()
        server.stop()


@pytest.mark.slow
def test_outage_does_no_harm_sqlite(tmp_path: Path) -> None:
    _outage(f"sqlite:///{tmp_path}/grace.db", tmp_path)


@pytest.mark.services
def test_outage_does_no_harm_postgres(pg_url: str, tmp_path: Path) -> None:
    _outage(pg_url, tmp_path)
