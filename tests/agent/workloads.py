"""Helpers for the workload tests: free ports, HTTP checks, specs, a supervisor with a real probe."""

from __future__ import annotations

import http.client
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from microdc.agent.executors.base import Executor
from microdc.agent.health import probe
from microdc.agent.supervisor import Supervisor, Want
from microdc.protocol.workload import WorkloadRunSpec, WorkloadStatus, spec_hash


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, timeout: float = 1.0) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status < 400
    except OSError:
        return False
    finally:
        conn.close()


def http_server_spec(port: int, **extra: Any) -> WorkloadRunSpec:
    """A real HTTP service as a process (python's http.server), health-checked over HTTP."""
    body: dict[str, Any] = {
        "command": [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        "ports": [port],
        "health": {
            "probe": {"kind": "http", "port": port},
            "interval_s": 0.2,
            "timeout_s": 1,
            "retries": 2,
            "start_period_s": 10,
        },
        "restart": {"backoff_initial_s": 0.2, "backoff_max_s": 1},
        "stop_timeout_s": 2,
    }
    for k, v in extra.items():
        body[k] = {**body[k], **v} if isinstance(v, dict) and isinstance(body.get(k), dict) else v
    return WorkloadRunSpec.model_validate(body)


def want(wid: str, spec: WorkloadRunSpec) -> Want:
    return Want(wid, spec, spec_hash(spec))


def make_supervisor(executor: Executor, tmp_path: Path, **kw: Any) -> Supervisor:
    def run_probe(spec: WorkloadRunSpec, inst: Any) -> bool:
        return spec.health is not None and probe(spec.health, inst, executor)

    return Supervisor(executor, tmp_path / "volumes", probe=run_probe, **kw)


def step_until(
    sup: Supervisor,
    pred: Callable[[dict[str, WorkloadStatus]], bool],
    timeout: float = 20.0,
    every: Callable[[], None] | None = None,
    what: str = "",
) -> dict[str, WorkloadStatus]:
    deadline = time.monotonic() + timeout
    last: dict[str, WorkloadStatus] = {}
    while time.monotonic() < deadline:
        last = {s.workload_id: s for s in sup.step()}
        if every is not None:
            every()
        if pred(last):
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {last}")
