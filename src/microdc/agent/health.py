"""Health probes of a workload instance: HTTP and TCP on the loopback (workloads use host networking),
or a command run in the instance's context by its executor. One probe is one bounded attempt.
"""

from __future__ import annotations

import http.client
import socket

from microdc.agent.executors.base import Executor, Instance
from microdc.protocol.workload import CommandCheck, HealthCheck, HttpCheck, TcpCheck

HOST = "127.0.0.1"


def probe_http(check: HttpCheck, timeout_s: float, host: str = HOST) -> bool:
    conn = http.client.HTTPConnection(host, check.port, timeout=timeout_s)
    try:
        conn.request("GET", check.path, headers={"User-Agent": "microdc-agent-health"})
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return status == check.expect_status if check.expect_status is not None else 200 <= status < 400


def probe_tcp(check: TcpCheck, timeout_s: float, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, check.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def probe(health: HealthCheck, inst: Instance, executor: Executor) -> bool:
    p = health.probe
    if isinstance(p, HttpCheck):
        return probe_http(p, health.timeout_s)
    if isinstance(p, TcpCheck):
        return probe_tcp(p, health.timeout_s)
    assert isinstance(p, CommandCheck)
    return executor.exec_check(inst, list(p.command), health.timeout_s)
