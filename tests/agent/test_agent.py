"""The agent against the real control plane (in-process uvicorn + SQLite): enrollment, telemetry, compression,
desired state with the uplink gone, credential renewal and re-enrollment, and what crosses the uplink."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

from microdc.agent.executors.process import ProcessExecutor
from microdc.agent.readings import make_reading, now_utc
from microdc.agent.runner import Agent
from microdc.agent.state import State

from .conftest import AgentThread, agent_config, start_control_plane, wait_for

SIM = [{"kind": "simulated", "name": "twin", "seed": 3}]
SLEEPER = {"command": ["sleep", "600"], "stop_timeout_s": 1}


def stop_site_processes(site_id: str) -> None:
    """Workloads outlive the agent by design; tests end them."""
    ex = ProcessExecutor(site_id, Path("/nonexistent"))
    for inst in ex.instances():
        ex.stop(inst, 1.0)


def pids(site_id: str) -> dict[str, str]:
    return {i.workload_id: i.handle for i in ProcessExecutor(site_id, Path("/x")).instances() if i.running}


def run_agent(cp: Any, tmp_path: Path, token: str | None, **cfg: Any) -> AgentThread:
    config = agent_config(tmp_path, sensors=cfg.pop("sensors", SIM), **cfg)
    return AgentThread(lambda: Agent(config, server=cp.url, enroll_token=token)).start()


def test_enroll_send_telemetry_gzip_and_reconcile(control_plane: Any, tmp_path: Path) -> None:
    sid = f"s1-{uuid.uuid4().hex[:8]}"  # process labels are host-wide: a site id of its own
    cp = control_plane
    token = cp.add_site(sid)
    at = run_agent(cp, tmp_path, token)
    try:
        wait_for(lambda: len(cp.sensors(sid)) == 7, what="7 simulated sensors on the server")
        st: State = at.agent.state
        assert st.get("credential")["site_id"] == sid
        caps = wait_for(lambda: st.get("server_compression"), what="compression capability")
        assert caps["gzip"] is True
        # a workload placed on the site is started locally (a real process), acked and reported
        with cp.client() as c:
            r = c.post(
                "/api/v1/workloads",
                json={
                    "id": "w1",
                    "data_class": "public",
                    "origin_jurisdiction": "DE",
                    "cores": 4,
                    "spec": SLEEPER,
                },
            )
            assert r.status_code == 201, r.text
        wait_for(lambda: "w1" in st.running(), what="w1 running")
        assert "w1" in pids(sid)
        with cp.client() as c:
            wait_for(
                lambda: c.get(f"/api/v1/sites/{sid}").json()["desired_acked_version"] is not None, what="ack"
            )
            site = c.get(f"/api/v1/sites/{sid}").json()
            rows = wait_for(
                lambda: c.get(f"/api/v1/sites/{sid}/workload-status").json(), what="status report"
            )
        assert site["desired_acked_version"] == site["desired_version"]
        assert [(r["workload_id"], r["state"]) for r in rows] == [("w1", "running")]
        assert cp.capture.bodies("/heartbeat")
    finally:
        at.stop()
        stop_site_processes(sid)


def test_falls_back_to_identity_when_the_server_cannot_read_gzip(tmp_path: Path) -> None:
    cp = start_control_plane(tmp_path, decompress=False)
    try:
        at = run_agent(cp, tmp_path, cp.add_site("s1"))
        try:
            wait_for(lambda: len(cp.sensors("s1")) == 7, what="readings despite no gzip support")
            caps = wait_for(lambda: at.agent.state.get("server_compression"), what="capability")
            assert caps["gzip"] is False
            assert any(a == "uplink.compression_refused" for _t, a, _d in at.agent.state.audit_log())
            assert at.agent.state.counter("batches_dead_lettered") == 0
        finally:
            at.stop()
    finally:
        cp.thread.stop()


def test_keeps_running_the_last_desired_state_without_the_cloud(tmp_path: Path) -> None:
    sid = f"s1-{uuid.uuid4().hex[:8]}"  # process labels are host-wide: a site id of its own
    cp = start_control_plane(tmp_path)
    at = run_agent(cp, tmp_path, cp.add_site(sid))
    try:
        with cp.client() as c:
            for w in ("w1", "w2"):
                c.post(
                    "/api/v1/workloads",
                    json={
                        "id": w,
                        "data_class": "public",
                        "origin_jurisdiction": "DE",
                        "cores": 2,
                        "spec": SLEEPER,
                    },
                ).raise_for_status()
        wait_for(lambda: set(at.agent.state.running()) == {"w1", "w2"}, what="both running")
        before_pids = pids(sid)
        assert set(before_pids) == {"w1", "w2"}
    finally:
        at.stop()
        cp.thread.stop()  # the cloud is gone for good
    try:
        # restart the agent with no control plane at all: it re-applies what it had, stops nothing,
        # adopts the processes that kept running (same pids, no second copy), and restarts one that dies
        at2 = run_agent(cp, tmp_path, None)
        try:
            st2 = at2.agent.state
            # Counters are durable, so wait for *new* readings queued while offline, not the old count.
            before = st2.counter("readings_ingested")
            wait_for(lambda: st2.counter("readings_ingested") > before + 20, what="local readings")
            assert set(st2.running()) == {"w1", "w2"}
            assert pids(sid) == before_pids
            wait_for(lambda: st2.pending_count() + st2.batch_count() > 0, what="readings queued offline")
            assert not at2.agent.online
            os.killpg(int(before_pids["w1"].split(":")[1]), signal.SIGKILL)
            wait_for(lambda: st2.running().get("w1", {}).get("restarts") == 1, what="w1 restarted offline")
            assert pids(sid)["w1"] != before_pids["w1"] and pids(sid)["w2"] == before_pids["w2"]
        finally:
            at2.stop()
    finally:
        stop_site_processes(sid)


def test_rotates_when_due_and_reenrolls_after_revocation(tmp_path: Path) -> None:
    cp = start_control_plane(tmp_path, site_token_ttl_s=6, rotation_grace_s=1)  # renew_after = expiry - 2 s
    token_file = tmp_path / "enroll.token"
    at = run_agent(cp, tmp_path, cp.add_site("s1"), enroll_token_file=str(token_file))
    try:
        st: State = at.agent.state
        wait_for(
            lambda: any(a == "credential.rotated" for _t, a, _d in st.audit_log()),
            timeout=20,
            what="rotation",
        )
        with cp.client() as c:
            c.post("/api/v1/sites/s1/credentials/revoke").raise_for_status()
        wait_for(lambda: st.counter("credential_refused") > 0, what="refused credential noticed")
        before = st.counter("readings_ingested")
        token_file.write_text(cp.enrollment_token("s1"))  # the installer drops a fresh token
        wait_for(
            lambda: any(a == "credential.enrolled" for _t, a, _d in st.audit_log()[1:]), what="re-enrolled"
        )
        assert not token_file.exists()
        # nothing queued while the credential was refused is lost
        wait_for(lambda: st.pending_count() == 0 and st.batch_count() == 0, what="queue drained")
        wait_for(lambda: st.counter("readings_ingested") > before, what="still polling")
        at.agent._kick.set()
        wait_for(
            lambda: st.counter("readings_acked") + st.pending_count() >= st.counter("readings_queued"),
            what="every queued reading acked or still queued",
        )
        assert st.counter("batches_dead_lettered") == 0
    finally:
        at.stop()
        cp.thread.stop()


def test_only_what_may_sync_crosses_the_uplink(tmp_path: Path) -> None:
    cp = start_control_plane(tmp_path)
    example = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "eu-sovereign"
    at = run_agent(
        cp,
        tmp_path,
        cp.add_site("paris-1", jurisdiction="FR"),
        policy={
            "jurisdiction": "FR",
            "upstream_jurisdiction": "DE",
            "scenario": str(example),
            "aggregate_window_s": 1,
            "min_group_size": 3,
        },
    )
    try:
        agent = at.agent
        wait_for(lambda: agent.ingestor is not None, what="agent started")
        for k in range(30):  # personal (tenants' meters) and health (patients' temperatures) readings
            ts = now_utc()
            personal = [
                make_reading(
                    f"tenant{m}",
                    "Power",
                    "W",
                    "ACInput",
                    ts,
                    100.0 + m,
                    data_class="personal",
                    agg_group="tenants",
                )
                for m in range(4)
            ]
            health = [
                make_reading(f"patient{m}", "Temperature", "Cel", "Room", ts, 37.0, data_class="health")
                for m in range(3)
            ]
            agent.ingestor.ingest(personal + health, "test")
            if k % 10 == 0:
                import time

                time.sleep(0.4)
        wait_for(
            lambda: any(r["sensor_id"].startswith("agg.tenants") for r in cp.capture.readings()),
            timeout=20,
            what="aggregates upstream",
        )
        sent = {r["sensor_id"] for r in cp.capture.readings()}
        assert not any(s.startswith("tenant") for s in sent)  # raw personal data never left FR
        assert {s for s in sent if s.startswith("patient")} == {
            "patient0",
            "patient1",
            "patient2",
        }  # EU → DE ok
        assert all(s.startswith(("twin.", "agg.tenants.", "patient")) for s in sent), sent
        # and the raw personal readings are all still at the site, tagged
        rows = agent.state.raw_rows(data_class="personal")
        assert len(rows) == 120 and {r[8] for r in rows} == {"FR"}
    finally:
        at.stop()
        cp.thread.stop()
