"""Partition, crash-and-restart and idle bandwidth, with the real broker (Mosquitto) and control plane.

Devices publish counters (value = sequence number) over MQTT; afterwards the server must hold every value
exactly once, and in the order the devices produced them (checked on the batches as they arrived)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from microdc.agent.runner import Agent

from .conftest import AgentThread, agent_config, start_control_plane, wait_for
from .emulators import MQTT_HOST, MQTT_PORT, need_broker
from .netproxy import Proxy


class Publisher:
    def __init__(self, site: str) -> None:
        import paho.mqtt.client as mqtt

        self.site = site
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.c.connect(MQTT_HOST, MQTT_PORT)
        self.c.loop_start()
        self.n = 0

    def counter(self, k: int, pause: float = 0.005) -> None:
        for _ in range(k):
            body = {
                "reading_type": "Power",
                "unit": "W",
                "physical_context": "ACOutput",
                "value": self.n,
                "ts": time.time(),
            }
            self.c.publish(f"mdc/{self.site}/dev/counter", json.dumps(body), qos=1).wait_for_publish(5)
            self.n += 1
            time.sleep(pause)

    def door(self, value: int) -> None:
        body = {"reading_type": "Door", "unit": "1", "physical_context": "Door", "value": value}
        self.c.publish(f"mdc/{self.site}/dev/door", json.dumps(body), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def check_exactly_once_in_order(cp: Any, site: str, n: int) -> None:
    values = [p["value"] for p in cp.history(site, "dev.counter")]
    assert sorted(values) == list(range(n)), f"missing {set(range(n)) - set(values)}"
    arrived = [r["value"] for r in cp.capture.readings() if r["sensor_id"] == "dev.counter"]
    firsts: list[float] = []
    for v in arrived:  # retried batches repeat values; the first arrival of each must be in order
        if not firsts or v > firsts[-1]:
            firsts.append(v)
        else:
            assert v in firsts, f"{v} arrived out of order"
    assert firsts == list(range(n))


@pytest.mark.services
def test_partition_loses_nothing_and_keeps_order(tmp_path: Path) -> None:
    need_broker()
    site = f"part-{uuid.uuid4().hex[:6]}"
    cp = start_control_plane(tmp_path)
    proxy = Proxy(cp.thread.port).start()
    cfg = agent_config(
        tmp_path,
        site_id=site,
        sensors=[],
        mqtt={"enabled": True, "client_id": f"agent-{site}"},
        uplink={"flush_s": 0.3, "max_batch_readings": 40},
        alarms={"thresholds": {"door_dwell_s": 0}},
    )
    token = cp.add_site(site)
    at = AgentThread(lambda: Agent(cfg, server=proxy.url, enroll_token=token)).start()
    pub = Publisher(site)
    try:
        wait_for(
            lambda: at.agent.mqtt is not None and at.agent.mqtt.connected.is_set(), what="agent subscribed"
        )
        pub.counter(100)
        wait_for(lambda: len(cp.history(site, "dev.counter")) == 100, what="first 100 before the cut")
        proxy.cut()
        t_cut = time.monotonic()
        pub.counter(150)
        pub.door(1)  # a break-in while the site is cut off: raised locally at once
        wait_for(lambda: "door_open|dev.door" in at.agent.alarms.open_alarms(), what="local alarm offline")
        time.sleep(2)
        assert not at.agent.online and len(cp.history(site, "dev.counter")) == 100
        queued = at.agent.state.pending_count() + at.agent.state.batch_count()
        proxy.restore()
        partition_s = time.monotonic() - t_cut
        pub.counter(50)
        wait_for(lambda: len(cp.history(site, "dev.counter")) >= 300, timeout=60, what="backlog delivered")
        check_exactly_once_in_order(cp, site, 300)
        alarms = [a for a in cp.alarms(site) if a["kind"] == "door_open"]
        assert alarms and alarms[0]["source"] == "agent"
        assert at.agent.state.counter("payloads_rejected") == 0
        print(
            f"\npartition {partition_s:.1f} s: {queued} readings/batches queued offline,"
            " 300/300 delivered once,"
            f" in order; door alarm delivered after reconnect"
        )
    finally:
        pub.close()
        at.stop()
        proxy.stop()
        cp.thread.stop()


def _agent_proc(cfg_path: Path, server: str, token: str | None, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "microdc.cli.main", "agent", "--server", server, "--config", str(cfg_path)]
    if token:
        cmd += ["--enroll", token]
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.services
def test_agent_killed_mid_sync_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    need_broker()
    site = f"crash-{uuid.uuid4().hex[:6]}"
    cp = start_control_plane(tmp_path)
    proxy = Proxy(cp.thread.port).start()
    cfg = {
        "site_id": site,
        "state_path": str(tmp_path / "agent.db"),
        "intervals": {"poll_s": 1, "heartbeat_s": 2, "housekeeping_s": 1},
        # a slow uplink (small batches, 1.5 kB/s) so that the kill lands in the middle of the drain
        "uplink": {
            "flush_s": 0.3,
            "report_every_s": 0,
            "max_batch_readings": 10,
            "compression": "none",
            "budget_bytes_per_s": 1500,
            "burst_bytes": 4096,
            "backoff": {"initial_s": 0.2, "max_s": 1},
        },
        "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
        "mqtt": {"enabled": True, "client_id": f"agent-{site}"},
    }
    cfg_path = tmp_path / "agent.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    log = tmp_path / "agent.log"
    proc = _agent_proc(cfg_path, proxy.url, cp.add_site(site), log)
    pub = Publisher(site)
    try:
        wait_for(lambda: cp.capture.bodies("/heartbeat"), timeout=30, what=f"agent up ({log})")
        time.sleep(1)  # subscribed
        proxy.cut()
        pub.counter(200, pause=0.002)  # a backlog builds up while the uplink is cut
        time.sleep(1.5)
        proxy.restore()
        wait_for(lambda: 20 <= len(cp.history(site, "dev.counter")) < 200, timeout=30, what="drain under way")
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 mid-sync
        proc.wait(10)
        delivered_at_kill = len(cp.history(site, "dev.counter"))
        pub.counter(100, pause=0.002)  # devices keep publishing while the agent is dead (broker queues them)
        proc = _agent_proc(cfg_path, proxy.url, None, log)  # restart: no token, the state has the credential
        wait_for(
            lambda: len(cp.history(site, "dev.counter")) >= 300, timeout=120, what="everything delivered"
        )
        time.sleep(1)
        check_exactly_once_in_order(cp, site, 300)
        assert delivered_at_kill < 300
        print(f"\nkill -9 after {delivered_at_kill}/200 delivered; after restart 300/300 stored exactly once")
    finally:
        pub.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        proxy.stop()
        cp.thread.stop()


@pytest.mark.services
@pytest.mark.slow
def test_idle_uplink_traffic_is_under_1kb_per_s(tmp_path: Path) -> None:
    """A site with the simulated twin (7 sensors) and default uplink settings, measured on the wire."""
    cp = start_control_plane(tmp_path, heartbeat_interval_s=30)
    proxy = Proxy(cp.thread.port).start()
    cfg = agent_config(
        tmp_path,
        sensors=[{"kind": "simulated", "name": "twin", "seed": 5}],
        intervals={"poll_s": 10, "heartbeat_s": 30, "desired_s": 300, "housekeeping_s": 30},
        uplink={"flush_s": 30, "report_every_s": 300, "backoff": {"seed": 1}},
    )
    at = AgentThread(lambda: Agent(cfg, server=proxy.url, enroll_token=cp.add_site("idle"))).start()
    try:
        wait_for(lambda: at.agent.state.counter("readings_acked") > 0, timeout=60, what="first upload")
        time.sleep(5)
        proxy.reset_counters()
        t0 = time.monotonic()
        window = float(os.environ.get("MICRODC_IDLE_WINDOW_S", "90"))
        time.sleep(window)
        dt = time.monotonic() - t0
        up, down = proxy.up_bytes / dt, proxy.down_bytes / dt
        print(f"\nidle over {dt:.0f} s: {up:.0f} B/s up, {down:.0f} B/s down, {up + down:.0f} B/s total")
        assert up + down < 1024
    finally:
        at.stop()
        proxy.stop()
        cp.thread.stop()
