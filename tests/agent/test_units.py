"""Token bucket, backoff, codecs, Modbus decoding, local alarms, sovereignty decisions, the simulated twin."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microdc.agent.alarms import LocalAlarms, event_id
from microdc.agent.config import BackoffConfig, ModbusPoint, SimulatedSource, parse_config
from microdc.agent.readings import InvalidReading, make_reading
from microdc.agent.sensors.modbus import decode, encode
from microdc.agent.sensors.simulated import SimulatedSite
from microdc.agent.sovereignty import SyncGate, build_policy_book
from microdc.agent.state import State
from microdc.agent.uplink import Backoff, TokenBucket, compress, zstd_available
from microdc.control.decompress import DecompressMiddleware
from microdc.model import load_scenario
from microdc.protocol import alarm_rules

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "eu-sovereign"


def test_token_bucket_paces_bytes() -> None:
    now = [0.0]
    b = TokenBucket(rate=100, burst=1000, clock=lambda: now[0])
    assert b.delay(1000) == 0
    b.consume(1000)
    assert b.delay(500) == pytest.approx(5.0)
    now[0] = 2.0
    assert b.delay(500) == pytest.approx(3.0)
    b.consume(5000)  # an oversized request goes into debt
    assert b.delay(1) > 40


def test_backoff_is_exponential_jittered_and_seeded() -> None:
    cfg = BackoffConfig(initial_s=1, max_s=30, multiplier=2, seed=42)
    a, b = Backoff(cfg), Backoff(cfg)
    da = [a.next() for _ in range(8)]
    assert da == [b.next() for _ in range(8)]
    for k, d in enumerate(da):
        base = min(30, 2**k)
        assert base / 2 <= d <= base
    a.reset()
    assert a.next() <= 1


def test_gzip_and_zstd_bodies_are_decoded_for_the_app() -> None:
    seen: list[bytes] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        msg = await receive()
        seen.append(msg["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    mw = DecompressMiddleware(app, max_bytes=10_000)
    body = b'{"x": 1}' * 100

    async def go(data: bytes, coding: str) -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mw), base_url="http://t") as c:
            r = await c.post("/", content=data, headers={"content-encoding": coding})
            return r.status_code

    assert asyncio.run(go(compress(body, "gzip"), "gzip")) == 200
    if zstd_available():  # optional dependency (zstandard)
        assert asyncio.run(go(compress(body, "zstd"), "zstd")) == 200
        assert seen == [body, body]
    else:
        assert seen == [body]
    assert asyncio.run(go(b"not gzip", "gzip")) == 400
    assert asyncio.run(go(gzip.compress(b"0" * 50_000), "gzip")) == 413  # a decompression bomb
    assert asyncio.run(go(body, "br")) == 415


@given(
    value=st.floats(-3000, 3000, allow_nan=False),
    typ=st.sampled_from(["int16", "int32", "float32"]),
    bo=st.sampled_from(["big", "little"]),
    wo=st.sampled_from(["big", "little"]),
)
@settings(max_examples=200, deadline=None)
def test_modbus_codec_roundtrip(value: float, typ: str, bo: str, wo: str) -> None:
    p = ModbusPoint(
        sensor_id="x",
        address=0,
        type=typ,
        scale=0.1,
        reading_type="Temperature",
        unit="Cel",
        byte_order=bo,
        word_order=wo,
    )  # type: ignore[arg-type]
    regs = encode(value, p)
    assert all(0 <= r <= 0xFFFF for r in regs)
    # integer registers round to the nearest 0.1 step: at most half a step off (ties included)
    tol = 0.05 + 1e-9 + (abs(value) * 1e-6 if typ == "float32" else 0)
    assert decode(regs, p) == pytest.approx(value, abs=tol)


def test_modbus_known_layouts() -> None:
    f = ModbusPoint(sensor_id="p", address=0, type="float32", reading_type="Power", unit="W")
    assert decode([0x43C8, 0x0000], f) == 400.0  # IEEE 754 400.0, high word first
    swapped = f.model_copy(update={"word_order": "little"})
    assert decode([0x0000, 0x43C8], swapped) == 400.0
    neg = ModbusPoint(
        sensor_id="t", address=0, type="int16", scale=0.1, reading_type="Temperature", unit="Cel"
    )
    assert decode([0xFF9C], neg) == pytest.approx(-10.0)


def test_readings_are_validated_with_the_servers_schema() -> None:
    make_reading("t", "Temperature", "Cel", "Intake", T0, 21.0)
    for bad in [
        ("Temperature", "K", "Intake", 1.0),
        ("Teleport", "1", "Room", 1.0),
        ("Temperature", "Cel", "Attic", 1.0),
        ("Temperature", "Cel", "Intake", float("nan")),
    ]:
        with pytest.raises(InvalidReading):
            make_reading("t", *bad[:3], T0, bad[3])  # type: ignore[arg-type]


def test_local_alarms_use_the_control_planes_rules_and_persist(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
            "alarms": {"thresholds": {"ups_dwell_s": 0}},
        }
    )
    s = State(tmp_path / "a.db")
    la = LocalAlarms(s, cfg, "site-1")
    door = [make_reading("door", "Door", "1", "Door", T0, 1.0)]
    hot = [
        make_reading("inlet", "Temperature", "Cel", "Intake", T0 + timedelta(seconds=i * 60), 35.0)
        for i in range(7)
    ]
    with s.tx() as c:
        ev = la.evaluate(c, door + hot, redact=lambda r: False)
    # the same events the pure rules give
    _st, expected = alarm_rules.evaluate(
        [r.for_rules() for r in door + hot], None, alarm_rules.Thresholds(ups_dwell_s=0)
    )
    assert [(e["kind"], e["action"], e["severity"]) for e in ev] == [
        (x.kind, "clear" if x.action == "clear" else "raise", x.severity) for x in expected
    ]
    assert {e["kind"] for e in ev} == {"door_open", "inlet_temperature"}
    assert ev[0]["event_id"] == event_id("site-1", expected[0])
    assert s.alarm_count() == len(ev)
    # dwell state survives a restart: the door closing clears the alarm raised before it
    la2 = LocalAlarms(s, cfg, "site-1")
    with s.tx() as c:
        ev2 = la2.evaluate(
            c,
            [make_reading("door", "Door", "1", "Door", T0 + timedelta(minutes=10), 0.0)],
            redact=lambda r: True,
        )
    assert [(e["kind"], e["action"], e["value"]) for e in ev2] == [("door_open", "clear", None)]
    assert "inlet_temperature|inlet" in la2.open_alarms() and "door_open|door" not in la2.open_alarms()


def test_sync_gate_asks_the_policy_book() -> None:
    cfg = parse_config(
        {"policy": {"jurisdiction": "FR", "upstream_jurisdiction": "DE", "scenario": str(EXAMPLE)}}
    )
    book = build_policy_book(cfg.policy)
    g = SyncGate(book, "FR", "DE")
    assert g.decision("public") == "raw"
    assert g.decision("health") == "raw"  # EU-only data may go from FR to DE
    assert g.decision("personal") == "aggregate"  # stays in FR; aggregates may leave
    assert g.decision("operational") == "raw"  # the default facility class
    assert g.decision("unknown-class") == "local"  # fail closed
    g_ch = SyncGate(book, "FR", "CH")
    assert g_ch.decision("health") == "local" and g_ch.decision("personal") == "aggregate"
    for cls in ("public", "health", "personal"):
        raw_ok = book.may_sync(cls, "FR", "CH", aggregate=False)
        assert (g_ch.decision(cls) == "raw") == raw_ok


def test_simulated_site_follows_the_twin_physics() -> None:
    scenario = load_scenario(EXAMPLE)
    cfg = parse_config({"policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"}})
    src = SimulatedSource(
        kind="simulated", name="twin", scenario=str(EXAMPLE), site="munich-1", time_scale=60, servers=15
    )
    sim = SimulatedSite(src, cfg, site_id="munich-1", base_dir=Path("."))
    server = scenario.catalog.servers[0]
    s0 = sim.step(T0)
    assert sim.servers * server.idle_w <= s0["it_w"] <= sim.servers * server.peak_w
    assert s0["facility_w"] > s0["it_w"] and s0["ups_state"] == 0 and s0["door"] == 0
    sim.inject("cooling_failure")
    sim.inject("grid_outage")
    temps, runtimes = [], []
    for k in range(1, 30):
        st_ = sim.step(T0 + timedelta(seconds=10 * k))  # 600 simulated s per step
        temps.append(st_["inlet_c"])
        runtimes.append(st_["runtime_min"])
    assert temps[:10] == sorted(temps[:10]) and temps[-1] > 32  # heats up past the ASHRAE allowable limit
    assert runtimes[-1] < runtimes[0] and st_["ups_state"] == 1
    sim.inject("cooling_failure", False)
    assert sim.step(T0 + timedelta(seconds=400))["inlet_c"] < 25


def test_an_enrollment_token_file_is_taken_only_once_it_is_complete(tmp_path: Path) -> None:
    """An installer writing the token must not lose it: an empty or just-written file is not consumed."""
    import os
    import time
    from types import SimpleNamespace

    from microdc.agent.runner import TOKEN_FILE_SETTLE_S, Agent

    p = tmp_path / "enroll.token"
    fake = SimpleNamespace(cfg=SimpleNamespace(enroll_token_file=str(p), resolve=Path))
    take = Agent._enroll_file_token
    assert take(fake) is None  # no file
    p.write_text("")
    assert take(fake) is None and p.exists()  # opened, not yet written: left alone
    p.write_text("tok-123\n")
    assert take(fake, peek=True) == "tok-123" and p.exists()
    assert take(fake) is None and p.exists()  # written a moment ago: next round
    old = time.time() - 10 * TOKEN_FILE_SETTLE_S
    os.utime(p, (old, old))
    assert take(fake) == "tok-123" and not p.exists()  # settled: taken, and only once
    assert take(fake) is None
