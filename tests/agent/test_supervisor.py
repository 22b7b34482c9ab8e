"""The supervisor against the real process executor: deploy, health, restart with backoff, exit codes,
replacement without a gap, stop-first on a shared port, adoption after a restart, removal, refusals."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from microdc.agent.executors.process import ProcessExecutor
from microdc.agent.supervisor import Supervisor, Want
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

from .workloads import answers, free_port, http_server_spec, make_supervisor, step_until, want

SITE = "test-site"


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[ProcessExecutor]:
    ex = ProcessExecutor(f"{SITE}-{os.getpid()}-{time.monotonic_ns()}", tmp_path / "run")
    try:
        yield ex
    finally:
        for inst in ex.instances():
            ex.stop(inst, 1.0) if inst.running else ex.remove(inst)


def pids(ex: ProcessExecutor, wid: str | None = None) -> list[int]:
    return [
        int(i.handle.split(":")[1])
        for i in ex.instances()
        if i.running and (wid is None or i.workload_id == wid)
    ]


def test_deploys_and_reports_healthy(executor: ProcessExecutor, tmp_path: Path) -> None:
    port = free_port()
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("web", http_server_spec(port))])
    first = {s.workload_id: s for s in sup.step()}
    assert first["web"].state == "starting" and first["web"].healthy is None
    st = step_until(sup, lambda s: s["web"].healthy is True, what="healthy")["web"]
    assert st.state == "running" and st.restarts == 0 and st.exit_code is None
    assert answers(port)
    assert len(pids(executor, "web")) == 1


def test_killed_process_is_restarted_with_backoff(executor: ProcessExecutor, tmp_path: Path) -> None:
    port = free_port()
    spec = http_server_spec(port, restart={"backoff_initial_s": 0.5, "backoff_max_s": 4})
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("web", spec)])
    step_until(sup, lambda s: s["web"].healthy is True, what="healthy")
    (pid,) = pids(executor, "web")
    os.killpg(pid, signal.SIGKILL)
    t_kill = time.monotonic()
    st = step_until(sup, lambda s: s["web"].state == "backoff", what="backoff")["web"]
    assert (st.restarts == 1 and "vanished" in st.message) or "exited" in st.message
    st = step_until(sup, lambda s: s["web"].healthy is True and s["web"].restarts == 1, what="restarted")[
        "web"
    ]
    assert time.monotonic() - t_kill >= 0.5  # not before the backoff
    (new_pid,) = pids(executor, "web")
    assert new_pid != pid and answers(port)
    # a second death waits twice as long (exponential backoff)
    os.killpg(new_pid, signal.SIGKILL)
    step_until(sup, lambda s: s["web"].state == "backoff", what="backoff again")
    t2 = time.monotonic()
    step_until(sup, lambda s: s["web"].restarts == 2 and s["web"].state != "backoff", what="second restart")
    assert time.monotonic() - t2 >= 0.9


def test_backoff_delays_grow_and_cap() -> None:
    spec = WorkloadRunSpec.model_validate(
        {"command": ["x"], "restart": {"backoff_initial_s": 1, "backoff_max_s": 10, "backoff_multiplier": 3}}
    )
    assert [spec.restart.delay(n) for n in range(1, 6)] == [1, 3, 9, 10, 10]


def test_exit_codes_and_restart_policies(executor: ProcessExecutor, tmp_path: Path) -> None:
    def sh(code: int, policy: str) -> WorkloadRunSpec:
        return WorkloadRunSpec.model_validate(
            {"command": ["sh", "-c", f"exit {code}"], "restart": {"policy": policy, "backoff_initial_s": 0.1}}
        )

    sup = make_supervisor(executor, tmp_path)
    sup.set_desired(
        [want("never3", sh(3, "never")), want("onf0", sh(0, "on-failure")), want("alw3", sh(3, "always"))]
    )
    st = step_until(
        sup,
        lambda s: s["never3"].state == "failed" and s["onf0"].state == "exited" and s["alw3"].restarts >= 2,
        what="terminal states",
    )
    assert st["never3"].exit_code == 3 and "exited with code 3" in st["never3"].message
    assert st["never3"].restarts == 0
    assert st["onf0"].exit_code == 0
    assert st["alw3"].exit_code == 3
    time.sleep(0.3)
    after = {s.workload_id: s for s in sup.step()}
    assert after["never3"].state == "failed" and after["never3"].restarts == 0  # never restarted


def test_changed_spec_is_replaced_without_a_gap(executor: ProcessExecutor, tmp_path: Path) -> None:
    """start-first: the old copy serves until the new one is healthy; then the old one is stopped."""
    p1, p2 = free_port(), free_port()
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("web", http_server_spec(p1))])
    step_until(sup, lambda s: s["web"].healthy is True, what="v1 healthy")
    (old_pid,) = pids(executor, "web")
    # the new copy takes a second to listen, so stopping the old one before the new one is healthy leaves a
    # gap on any machine, however fast it starts processes
    slow = f"sleep 1; exec {sys.executable} -m http.server {p2} --bind 127.0.0.1"
    v2 = http_server_spec(p2, command=["sh", "-c", slow])
    sup.set_desired([want("web", v2)])
    gaps: list[str] = []

    def served() -> None:
        if not (answers(p1, 0.5) or answers(p2, 0.5)):
            gaps.append(f"nothing answered at {time.monotonic():.2f}")
        if old_pid not in pids(executor, "web") and not answers(p2, 0.5):
            gaps.append(f"old copy stopped before the new one answered at {time.monotonic():.2f}")

    st = step_until(
        sup,
        lambda s: (
            s["web"].spec_hash == spec_hash(v2) and s["web"].healthy is True and len(pids(executor)) == 1
        ),
        every=served,
        what="v2 alone and healthy",
    )["web"]
    assert gaps == []
    assert st.restarts == 0
    (new_pid,) = pids(executor, "web")
    assert new_pid != old_pid and answers(p2) and not answers(p1)


def test_shared_port_is_replaced_stop_first(executor: ProcessExecutor, tmp_path: Path) -> None:
    port = free_port()
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("web", http_server_spec(port))])
    step_until(sup, lambda s: s["web"].healthy is True, what="v1 healthy")
    v2 = http_server_spec(port, env={"VERSION": "2"})
    sup.set_desired([want("web", v2)])
    most = 0

    def count() -> None:
        nonlocal most
        most = max(most, len(pids(executor, "web")))

    step_until(sup, lambda s: s["web"].spec_hash == spec_hash(v2) and s["web"].healthy is True, every=count,
               what="v2 healthy")  # fmt: skip
    assert most == 1  # never two copies fighting for one port
    assert [i.spec_hash for i in executor.instances()] == [spec_hash(v2)]


def test_a_restarted_agent_adopts_and_never_duplicates(executor: ProcessExecutor, tmp_path: Path) -> None:
    port = free_port()
    spec = http_server_spec(port)
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("web", spec)])
    step_until(sup, lambda s: s["web"].healthy is True, what="healthy")
    (pid,) = pids(executor, "web")
    # a new agent process: a new executor and supervisor that know nothing but the labels
    ex2 = ProcessExecutor(executor.site_id, tmp_path / "run")
    sup2 = make_supervisor(ex2, tmp_path)
    sup2.set_desired([want("web", spec)])
    for _ in range(10):
        sup2.step()
    st = step_until(sup2, lambda s: s["web"].healthy is True, what="adopted healthy")["web"]
    assert pids(ex2, "web") == [pid]
    assert st.restarts == 0
    # an adopted process that dies is noticed (exit code unknown: not our child) and restarted
    os.killpg(pid, signal.SIGKILL)
    st = step_until(sup2, lambda s: s["web"].restarts == 1 and s["web"].healthy is True, what="restart")[
        "web"
    ]
    assert pids(ex2, "web") != [pid]


def test_duplicate_copies_are_reduced_to_one(executor: ProcessExecutor, tmp_path: Path) -> None:
    spec = WorkloadRunSpec.model_validate({"command": ["sleep", "300"], "stop_timeout_s": 1})
    h = spec_hash(spec)
    executor.start("w", spec, h, {})
    time.sleep(0.05)
    executor.start("w", spec, h, {})
    assert len(pids(executor, "w")) == 2
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([Want("w", spec, h)])
    sup.step()
    assert len(pids(executor, "w")) == 1


def test_removed_workloads_are_stopped_and_others_never_touched(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    spec = WorkloadRunSpec.model_validate({"command": ["sleep", "300"], "stop_timeout_s": 1})
    other_site = ProcessExecutor(executor.site_id + "-other", tmp_path / "other")
    foreign = other_site.start("w", spec, spec_hash(spec), {})
    try:
        sup = make_supervisor(executor, tmp_path)
        sup.set_desired([want("a", spec), want("b", spec)])
        step_until(sup, lambda s: all(x.state == "running" for x in s.values()), what="both running")
        sup.set_desired([want("a", spec)])
        sup.step()
        assert {i.workload_id for i in executor.instances()} == {"a"}
        # another site's process still runs (not merely listed as exited)
        assert any(i.handle == foreign.handle and i.running for i in other_site.instances())
    finally:
        other_site.stop(foreign, 1.0)


def test_unhealthy_is_restarted(executor: ProcessExecutor, tmp_path: Path) -> None:
    dead_port = free_port()
    spec = WorkloadRunSpec.model_validate(
        {
            "command": ["sleep", "300"],
            "health": {
                "probe": {"kind": "tcp", "port": dead_port},
                "interval_s": 0.1,
                "retries": 2,
                "timeout_s": 0.2,
            },
            "restart": {"backoff_initial_s": 0.1},
            "stop_timeout_s": 1,
        }
    )
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("w", spec)])
    seen: set[str] = set()
    st = step_until(sup, lambda s: seen.add(s["w"].state) or s["w"].restarts >= 1, what="restart")["w"]
    assert "unhealthy" in st.message or "unhealthy" in seen
    assert st.healthy in (None, False)


def test_command_health_check_and_start_period(executor: ProcessExecutor, tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    spec = WorkloadRunSpec.model_validate(
        {
            "command": ["sleep", "300"],
            "health": {
                "probe": {"kind": "command", "command": ["test", "-e", str(flag)]},
                "interval_s": 0.1,
                "retries": 1,
                "start_period_s": 30,
            },
            "stop_timeout_s": 1,
        }
    )
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want("w", spec)])
    for _ in range(5):
        st = {s.workload_id: s for s in sup.step()}["w"]
        time.sleep(0.1)
    assert st.state == "starting" and st.restarts == 0  # failing inside the start period does not count
    flag.touch()
    st = step_until(sup, lambda s: s["w"].healthy is True, what="healthy")["w"]
    assert st.state == "running"


def test_process_executor_refuses_what_it_cannot_enforce(executor: ProcessExecutor) -> None:
    img = WorkloadRunSpec.model_validate({"image": "busybox:1.35"})
    assert "cannot run image" in (executor.check(img) or "")
    cpus = WorkloadRunSpec.model_validate({"command": ["true"], "cpus": 1})
    assert "cpus" in (executor.check(cpus) or "")


def test_volumes_are_created_and_handed_over(executor: ProcessExecutor, tmp_path: Path) -> None:
    out = tmp_path / "seen"
    spec = WorkloadRunSpec.model_validate(
        {
            "command": [
                sys.executable,
                "-c",
                f"import os,time; open({str(out)!r},'w').write("
                "os.environ['MICRODC_VOLUME_DATA']); time.sleep(300)",
            ],
            "volumes": [{"name": "data", "path": "/data", "data_class": "public", "jurisdiction": "DE"}],
            "stop_timeout_s": 1,
        }
    )
    sup: Supervisor = make_supervisor(executor, tmp_path)
    sup.set_desired([want("w", spec)])
    step_until(sup, lambda s: out.exists() and out.read_text() != "", what="volume env")
    assert Path(out.read_text()) == tmp_path / "volumes" / "w" / "data"
    assert Path(out.read_text()).is_dir()


def test_nothing_is_touched_before_a_desired_state_is_known(
    executor: ProcessExecutor, tmp_path: Path
) -> None:
    """A fresh agent (no desired state yet) must not stop what runs: only a desired state stops work."""
    spec = WorkloadRunSpec.model_validate({"command": ["sleep", "300"], "stop_timeout_s": 1})
    executor.start("w", spec, spec_hash(spec), {})
    sup = make_supervisor(executor, tmp_path)
    assert sup.step() == []
    assert len(pids(executor, "w")) == 1
    sup.set_desired([])  # an explicit, empty desired state does stop it
    sup.step()
    assert pids(executor, "w") == []


def test_a_broken_engine_is_reported_per_workload(tmp_path: Path) -> None:
    from microdc.agent.executors.podman import PodmanExecutor

    ex = PodmanExecutor("s", podman=str(tmp_path / "no-such-podman"))
    sup = make_supervisor(ex, tmp_path)
    sup.set_desired([want("web", WorkloadRunSpec.model_validate({"image": "busybox:1.35"}))])
    (st,) = sup.step()
    assert st.state == "failed" and "podman not found" in st.message


def test_a_hanging_probe_does_not_hold_up_the_others(executor: ProcessExecutor, tmp_path: Path) -> None:
    """Probes due in one round run at once: five services whose checks each take 1 s cost one second."""
    spec = WorkloadRunSpec.model_validate(
        {
            "command": ["sleep", "300"],
            "stop_timeout_s": 1,
            "health": {
                "probe": {"kind": "command", "command": ["sleep", "1"]},
                "interval_s": 0.1,
                "timeout_s": 5,
            },
        }
    )
    sup = make_supervisor(executor, tmp_path)
    sup.set_desired([want(f"w{i}", spec) for i in range(5)])
    step_until(sup, lambda s: all(x.healthy for x in s.values()), what="all healthy")
    time.sleep(0.2)
    t0 = time.monotonic()
    statuses = sup.step()
    assert all(s.healthy for s in statuses)
    assert time.monotonic() - t0 < 4.5  # in line, five 1-s probes take at least 5 s
