"""Device payloads: malformed ones are refused per reading and counted, never a crash;
aggregates are k-anonymous."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from microdc.agent.alarms import LocalAlarms
from microdc.agent.config import parse_config
from microdc.agent.dataplane import Aggregator, MqttIngest
from microdc.agent.ingest import Ingestor
from microdc.agent.sovereignty import SyncGate, build_policy_book
from microdc.agent.state import State

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "eu-sovereign"


def setup(tmp_path: Path) -> tuple[State, MqttIngest, Ingestor, SyncGate]:
    cfg = parse_config(
        {
            "policy": {"jurisdiction": "FR", "upstream_jurisdiction": "DE", "scenario": str(EXAMPLE)},
            "uplink": {"report_every_s": 0},
            "mqtt": {
                "topics": [
                    {"filter": "mdc/s1/meters/#", "data_class": "personal", "aggregate_group": "tenants"},
                    {"filter": "mdc/s1/#"},
                ]
            },
        }
    )
    state = State(tmp_path / "a.db")
    gate = SyncGate(build_policy_book(cfg.policy), "FR", "DE")
    ing = Ingestor(state, gate, LocalAlarms(state, cfg, "s1"), cfg.uplink, jurisdiction="FR")
    mq = MqttIngest(cfg.mqtt, "s1", ing, state, facility_class="operational", clock=lambda: NOW)
    return state, mq, ing, gate


def msg(**kw: object) -> bytes:
    base: dict[str, object] = {
        "reading_type": "Temperature",
        "unit": "Cel",
        "physical_context": "Intake",
        "value": 22,
    }
    base.update(kw)
    return json.dumps(base).encode()


def test_malformed_payloads_are_counted_never_fatal(tmp_path: Path) -> None:
    state, mq, _ing, _g = setup(tmp_path)
    assert mq.handle("mdc/s1/cabinet/inlet", msg()) == 1
    bad = [
        ("mdc/s1/x", b"\xff\xfe not json"),
        ("mdc/s1/x", b"[1, 2"),
        ("mdc/s1/x", msg(unit="K")),
        ("mdc/s1/x", msg(reading_type="Teleport")),
        ("mdc/s1/x", msg(value="hot")),
        ("mdc/s1/x", msg(value=True)),
        ("mdc/s1/x", b'{"reading_type": "Temperature", "unit": "Cel", "value": NaN}'),
        ("mdc/s1/x", msg(ts="2026-03-02T12:00:00")),  # no zone
        ("mdc/s1/x", msg(ts=(NOW + timedelta(hours=1)).isoformat())),  # the future
        ("mdc/s1/x", msg(colour="red")),
        ("mdc/s1/x", b'"just a string"'),
        ("mdc/s1/x", b"{}"),
        ("other/topic", msg()),
        ("mdc/s1/x", b"[" + b",".join([b"{}"] * 1001) + b"]"),
        ("mdc/s1/x", b" " * 70_000),
    ]
    for topic, payload in bad:
        assert mq.handle(topic, payload) == 0, payload[:60]
    assert state.counter("payloads_rejected") == len(bad)
    assert {r[1].split(":")[0] for r in state.rejected()} >= {
        "not_json",
        "invalid",
        "bad_type",
        "bad_ts",
        "future_ts",
        "unknown_field",
        "no_rule",
        "too_many",
        "too_large",
        "missing_field",
    }
    # a list with one bad reading: the good ones are kept
    mixed = json.dumps([json.loads(msg(value=1)), {"value": 2}, json.loads(msg(value=3))]).encode()
    assert mq.handle("mdc/s1/x", mixed) == 2
    assert state.counter("payloads_rejected") == len(bad) + 1
    assert state.counter("readings_ingested") == 3


@given(st.binary(max_size=300), st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_no_payload_crashes_the_parser(tmp_path_factory: object, payload: bytes, topic: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        state, mq, _i, _g = setup(Path(d))
        mq.handle("mdc/s1/" + topic, payload)
        state.close()


def test_personal_data_stays_local_and_only_k_anonymous_aggregates_are_queued(tmp_path: Path) -> None:
    state, mq, _ing, gate = setup(tmp_path)
    t0 = NOW - timedelta(minutes=30)
    # 4 tenants' meters (personal) and one facility sensor (operational) over two 5-minute windows
    for i in range(20):
        ts = (t0 + timedelta(seconds=30 * i)).isoformat()
        for m in range(4):
            mq.handle(
                f"mdc/s1/meters/m{m}",
                msg(reading_type="Power", unit="W", physical_context="ACInput", value=100 * (m + 1), ts=ts),
            )
        mq.handle("mdc/s1/cabinet/inlet", msg(value=22, ts=ts))
    # a group of 2 sensors only: withheld
    for m in range(2):
        mq.handle(
            f"mdc/s1/meters/solo{m}",
            msg(reading_type="Humidity", unit="%", physical_context="Room", value=40, ts=t0.isoformat()),
        )
    assert gate.decision("personal") == "aggregate"
    with state._lock:
        queued = [r[0] for r in state._conn.execute("SELECT sensor_id FROM pending").fetchall()]
    assert queued and all(s == "cabinet.inlet" for s in queued)  # no raw personal reading queued
    assert len(state.raw_rows(data_class="personal")) == 82  # but all are stored locally, tagged
    assert {r[8] for r in state.raw_rows()} == {"FR"}
    n = Aggregator(
        state, gate, parse_config({"policy": {"jurisdiction": "FR", "upstream_jurisdiction": "DE"}}).policy
    ).run(NOW.timestamp())
    with state._lock:
        agg = state._conn.execute(
            "SELECT sensor_id, value, ts FROM pending WHERE sensor_id LIKE 'agg.%' ORDER BY id"
        ).fetchall()
    assert n == len(agg) == 4  # two windows × (mean, sum) of the tenants' power
    assert {a[0] for a in agg} == {"agg.tenants.Power.ACInput.mean", "agg.tenants.Power.ACInput.sum"}
    sums = [a[1] for a in agg if a[0].endswith(".sum")]
    assert sums == [1000.0, 1000.0]
    assert state.counter("aggregates_withheld_small_group") == 1
    # exactly once: running again queues nothing new
    assert (
        Aggregator(
            state,
            gate,
            parse_config({"policy": {"jurisdiction": "FR", "upstream_jurisdiction": "DE"}}).policy,
        ).run(NOW.timestamp())
        == 0
    )
