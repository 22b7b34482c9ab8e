"""Workloads in real podman containers (runc, cgroupfs, host network, a busybox image built locally):
deploy and health, a killed container restarted, a changed spec replaced without a gap in health, the
uplink cut and the site still running, the agent restarted and adopting — never duplicating."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from microdc.agent.executors.base import ExecutorError
from microdc.agent.executors.podman import PodmanExecutor, import_busybox_image
from microdc.agent.runner import Agent
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

from .conftest import AgentThread, agent_config, start_control_plane, wait_for
from .workloads import answers, free_port, make_supervisor, step_until, want

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
IMAGE = "localhost/microdc-test-busybox:1"


def podman_executor(site_id: str) -> PodmanExecutor:
    return PodmanExecutor(site_id, containers_conf=str(CONTAINERS_CONF), timeout_s=60)


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install podman runc busybox-static)")
    if not Path("/bin/busybox").is_file():
        pytest.skip("/bin/busybox is missing (Debian: apt-get install busybox-static)")
    try:
        import_busybox_image(podman_executor("image-build"), IMAGE)
    except ExecutorError as e:
        pytest.skip(f"podman cannot build the test image: {e}")
    return IMAGE


@pytest.fixture
def site_id() -> Iterator[str]:
    sid = f"podtest-{os.getpid()}-{time.monotonic_ns() % 10**9}"
    yield sid
    ex = podman_executor(sid)
    for inst in ex.instances():
        ex.stop(inst, 0)


def httpd(port: int, **extra: Any) -> WorkloadRunSpec:
    body: dict[str, Any] = {
        "image": IMAGE,
        "command": ["/bin/httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
        "ports": [port],
        "memory_mb": 64,
        "cpus": 0.5,
        "health": {
            "probe": {"kind": "http", "port": port, "path": "/index.html"},
            "interval_s": 0.3,
            "timeout_s": 1,
            "retries": 2,
            "start_period_s": 20,
        },
        "restart": {"backoff_initial_s": 0.5, "backoff_max_s": 2},
        "stop_timeout_s": 1,
    }
    body.update(extra)
    return WorkloadRunSpec.model_validate(body)


def running_ids(ex: PodmanExecutor, wid: str | None = None) -> list[str]:
    return [i.handle for i in ex.instances() if i.running and (wid is None or i.workload_id == wid)]


def test_deploy_health_kill_restart_replace_and_adopt(image: str, site_id: str, tmp_path: Path) -> None:
    ex = podman_executor(site_id)
    sup = make_supervisor(ex, tmp_path)
    p1 = free_port()
    sup.set_desired([want("web", httpd(p1))])
    st = step_until(sup, lambda s: s["web"].healthy is True, timeout=60, what="container healthy")["web"]
    assert st.state == "running" and answers(p1)
    (cid,) = running_ids(ex, "web")
    # labels, limits and the runtime really are what the spec and agent.yaml say
    out = subprocess.run(
        [
            "podman",
            "inspect",
            "--format",
            "{{.Config.Labels}} {{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} "
            "{{.OCIRuntime}} {{.HostConfig.NetworkMode}}",
            cid,
        ],
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"microdc.site:{site_id}" in out and f"microdc.spec:{spec_hash(httpd(p1))}" in out
    assert "67108864 500000000 runc host" in out

    # killed behind the agent's back: restarted after backoff, exit code reported
    subprocess.run(
        ["podman", "kill", cid],
        env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)},
        capture_output=True,
        check=True,
    )
    st = step_until(sup, lambda s: s["web"].restarts == 1, timeout=30, what="death noticed")["web"]
    assert st.exit_code == 137, st
    st = step_until(sup, lambda s: s["web"].healthy is True, timeout=60, what="restarted healthy")["web"]
    (cid2,) = running_ids(ex, "web")
    assert cid2 != cid and answers(p1)

    # a changed spec (new port) is replaced start-first: at every moment one copy answers
    p2 = free_port()
    v2 = httpd(p2)
    sup.set_desired([want("web", v2)])
    gaps: list[float] = []
    health: list[bool | None] = []

    def served() -> None:
        if not (answers(p1, 0.5) or answers(p2, 0.5)):
            gaps.append(time.monotonic())

    st = step_until(
        sup,
        lambda s: (
            health.append(s["web"].healthy) is None
            and s["web"].spec_hash == spec_hash(v2)
            and s["web"].healthy is True
            and len(running_ids(ex)) == 1
        ),
        timeout=60,
        every=served,
        what="v2 alone and healthy",
    )["web"]
    assert gaps == [], f"{len(gaps)} moments with nothing answering"
    assert False not in health
    (cid3,) = running_ids(ex, "web")
    assert answers(p2) and not answers(p1)

    # the agent restarts: a new executor and supervisor adopt the container, never start a second one
    ex2 = podman_executor(site_id)
    sup2 = make_supervisor(ex2, tmp_path)
    sup2.set_desired([want("web", v2)])
    for _ in range(3):
        sup2.step()
    st = step_until(sup2, lambda s: s["web"].healthy is True, timeout=30, what="adopted")["web"]
    assert running_ids(ex2, "web") == [cid3] and st.restarts == 0

    # removed from the desired state: stopped and removed
    sup2.set_desired([])
    sup2.step()
    assert ex2.instances() == []


def test_agent_runs_podman_workload_keeps_it_without_uplink_and_adopts(
    image: str, site_id: str, tmp_path: Path
) -> None:
    cp = start_control_plane(tmp_path)
    cfg = agent_config(
        tmp_path,
        site_id=site_id,
        intervals={"supervise_s": 0.3, "status_s": 1},
        executor={"kind": "podman", "podman": {"containers_conf": str(CONTAINERS_CONF)}},
    )
    token = cp.add_site(site_id)
    port = free_port()
    at = AgentThread(lambda: Agent(cfg, server=cp.url, enroll_token=token)).start()
    try:
        with cp.client() as c:
            r = c.post(
                "/api/v1/workloads",
                json={
                    "id": "web",
                    "data_class": "public",
                    "origin_jurisdiction": "DE",
                    "cores": 1,
                    "spec": httpd(port).model_dump(mode="json"),
                },
            )
            assert r.status_code == 201, r.text

            def reported() -> Any:
                rows = c.get(f"/api/v1/sites/{site_id}/workload-status").json()
                return rows if rows and rows[0]["state"] == "running" and rows[0]["healthy"] else None

            rows = wait_for(reported, timeout=90, what="control plane shows web running and healthy")
        assert rows[0]["workload_id"] == "web" and rows[0]["restarts"] == 0
        assert answers(port)
        (cid,) = running_ids(podman_executor(site_id), "web")
    finally:
        cp.thread.stop()  # the uplink is cut for good
    try:
        time.sleep(3)  # several supervise rounds, status reports failing
        assert answers(port) and running_ids(podman_executor(site_id), "web") == [cid]
    finally:
        at.stop()
    # the agent restarts with no control plane: it adopts the running container from its stored state
    at2 = AgentThread(lambda: Agent(cfg, server=cp.url)).start()
    try:
        wait_for(
            lambda: at2.agent.state.running().get("web", {}).get("healthy") is True,
            timeout=60,
            what="adopted and healthy after restart",
        )
        assert running_ids(podman_executor(site_id), "web") == [cid]
        assert not at2.agent.online
    finally:
        at2.stop()


def test_a_missing_image_is_reported_and_leaves_no_container(
    image: str, site_id: str, tmp_path: Path
) -> None:
    ex = podman_executor(site_id)
    sup = make_supervisor(ex, tmp_path)
    sup.set_desired([want("ghost", WorkloadRunSpec.model_validate({"image": "localhost/no-such-image:1"}))])
    (st,) = sup.step()
    assert st.state == "backoff" and "start failed" in st.message and "no-such-image" in st.message, st
    assert ex.instances() == []  # nothing half-created is left to be mistaken for a dead copy
    (st,) = sup.step()
    assert st.restarts == 1  # one failed start counted once
