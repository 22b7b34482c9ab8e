"""The sweep on Ray: embedded (ray.init() in this process) and a real two-node cluster on this machine,
started with `ray start` and stopped by the ids of the processes this test started (never `ray stop`,
which would kill every Ray on the machine). Determinism: the same master seed gives the same
sweep.parquet serially, on one embedded worker and on the two-node cluster.

Loopback only: Ray rewrites the literal 127.0.0.1 (and localhost) into the machine's routable address
(`resolve_ip_for_localhost`), so the nodes use other loopback addresses (127.0.0.2 for the head,
127.0.0.3 for the worker; all of 127.0.0.0/8 is the loopback interface on Linux) and the cluster never
listens on or talks to anything but loopback. Token authentication is on, with a token made for the test.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[sweep]'")

from microdc.sweep import sweep

pytestmark = pytest.mark.slow

HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
VARY = ["economics.carbon_price_per_tonne=0,200", "demand.scale=0.5,1.5"]
RAY = Path(sys.executable).parent / "ray"


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_for_cpus(address: str, env: dict[str, str], cpus: int, timeout_s: float = 180.0) -> None:
    code = (
        "import ray,sys,time\n"
        f"ray.init(address='{address}', log_to_driver=False)\n"
        "t=time.time()\n"
        f"while ray.cluster_resources().get('CPU',0) < {cpus} and time.time()-t < {timeout_s}:\n"
        "    time.sleep(0.5)\n"
        f"ok = ray.cluster_resources().get('CPU',0) >= {cpus}\n"
        "ips = [n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']]\n"
        "assert all(ip.startswith('127.') for ip in ips), ips  # loopback only\n"
        "sys.exit(0 if ok else 3)\n"
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout_s
        )
        if r.returncode == 0:
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} never had {cpus} CPUs: {r.stderr[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop one `ray start --block` and every process it started (its own session), by id."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group (raylet, gcs, workers)
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """A head node and a worker node, one CPU each, as separate `ray start` process trees."""
    tmp = Path(tempfile.mkdtemp(prefix="mdcray", dir="/tmp"))  # short: Ray's socket paths must fit
    env = dict(
        os.environ,
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_USAGE_STATS_ENABLED="0",
    )
    env.pop("RAY_ADDRESS", None)
    port = _free_port(HEAD_IP)
    address = f"{HEAD_IP}:{port}"
    common = ["--block", "--num-cpus", "1", "--disable-usage-stats"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    str(RAY),
                    "start",
                    "--head",
                    "--node-ip-address",
                    HEAD_IP,
                    "--port",
                    str(port),
                    "--include-dashboard",
                    "false",
                    "--temp-dir",
                    str(tmp),
                    *common,
                ],
                env=env,
                stdout=(tmp / "head.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for_cpus(address, env, 1)
        procs.append(
            subprocess.Popen(
                [str(RAY), "start", "--address", address, "--node-ip-address", WORKER_IP, *common],
                env=env,
                stdout=(tmp / "worker.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for_cpus(address, env, 2)
        yield address, env
    finally:
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)


def test_two_node_cluster_gives_the_serial_result(
    cluster: tuple[str, dict[str, str]], tiny_dir: Path, tmp_path: Path
) -> None:
    """`microdc sweep --address` (its own process: Ray reads the auth token from the environment when it
    loads) on the two-node cluster, one point per task, against the same sweep run serially here."""
    address, env = cluster
    scenario = tiny_dir / "scenario.yaml"
    cmd = [
        str(Path(sys.executable).parent / "microdc"),
        "sweep",
        str(scenario),
        "-o",
        str(tmp_path / "cluster"),
        "--address",
        address,
        "--batch",
        "1",
        "--replicas",
        "2",
        "--days",
        "0.5",
        "--time-limit",
        "10",
    ]
    for v in VARY:
        cmd += ["--vary", v]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "32 rows, 0 failed" in " ".join(r.stdout.split())
    on_cluster = pd.read_parquet(tmp_path / "cluster" / "sweep.parquet")
    serial = sweep(
        scenario, VARY, tmp_path / "serial", engine="serial", replicas=2, days=0.5, time_limit_s=10.0
    )
    assert len(on_cluster) == 4 * 2 * 4 and (on_cluster["status"] == "ok").all()
    pd.testing.assert_frame_equal(on_cluster, serial)
    a = (tmp_path / "cluster" / "sweep.parquet").read_bytes()
    assert a == (tmp_path / "serial" / "sweep.parquet").read_bytes()
    assert (tmp_path / "cluster" / "sweep.html").is_file()


def test_embedded_ray_one_worker(tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    kw = {"replicas": 1, "days": 0.5, "time_limit_s": 10.0}
    scenario = tiny_dir / "scenario.yaml"
    df = sweep(scenario, ["demand.scale=0.5,1.5"], tmp_path / "ray", workers=1, **kw)  # type: ignore[arg-type]
    serial = sweep(scenario, ["demand.scale=0.5,1.5"], tmp_path / "serial", engine="serial", **kw)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(df, serial)
    import ray

    assert not ray.is_initialized()  # the sweep shut down the Ray it started
