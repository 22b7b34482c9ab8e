"""Device payloads: malformed ones are refused per reading and counted, never a crash;
aggregates are k-anonymous."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import example, given, settings
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


REASONS = {
    "no_rule", "too_large", "not_json", "too_many", "not_object", "unknown_field", "missing_field",
    "bad_ts", "future_ts", "bad_type", "invalid",
}  # fmt: skip
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True), st.text(max_size=8)
)
_valid = st.builds(
    lambda kind, value, ts, sensor: {
        "reading_type": kind[0], "unit": kind[1], "physical_context": kind[2], "value": value,
        **({} if ts is None else {"ts": ts}), **({} if sensor is None else {"sensor_id": sensor}),
    },
    st.sampled_from([("Temperature", "Cel", "Intake"), ("Power", "W", "ACInput"), ("Humidity", "%", "Room")]),
    st.one_of(st.floats(0, 100), st.integers(0, 100)),
    st.one_of(st.none(), st.sampled_from(["2026-03-02T11:59:00Z", NOW.timestamp() - 5])),
    st.one_of(st.none(), st.text(min_size=1, max_size=12)),
)  # fmt: skip


def _corrupt(draw: st.DrawFn, item: dict[str, object]) -> dict[str, object]:
    """One near miss: a field dropped, added, or replaced by a wrong value."""
    out = dict(item)
    how = draw(st.sampled_from(["drop", "add", "replace"]))
    if how == "drop":
        out.pop(draw(st.sampled_from(sorted(out))))
    elif how == "add":
        out[draw(st.sampled_from(["colour", "ts", "sensor_id", "physical_context"]))] = draw(_scalars)
    else:
        field = draw(st.sampled_from(sorted(out)))
        wrong = st.sampled_from(["K", "Teleport", "Moon", "2026-03-02T11:59:00", "2026-03-02T13:00:00+00:00"])
        out[field] = draw(st.one_of(_scalars, wrong, st.floats(-1e300, 1e300)))
    return out


_near_miss = st.composite(lambda draw: _corrupt(draw, draw(_valid)))()
_reading = st.one_of(_valid, _near_miss, _near_miss)
_junk = st.one_of(st.dictionaries(st.text(max_size=5), _scalars, max_size=3), _scalars)
_items = st.one_of(_reading, _reading, _reading, _junk)
_payloads = st.one_of(
    _items.map(lambda d: json.dumps(d).encode()),  # near-valid JSON, one reading
    st.lists(_items, max_size=5).map(lambda d: json.dumps(d).encode()),  # several, good and bad mixed
    st.binary(max_size=200),  # garbage
    st.text(max_size=60).map(str.encode),
)
_topics = st.one_of(
    st.sampled_from(["mdc/s1/cabinet/inlet", "mdc/s1/meters/m1", "mdc/s1/x", "other/topic", "mdc/s1"]),
    st.text(max_size=20).map(lambda t: "mdc/s1/" + t),
)


def _units(topic: str, payload: bytes) -> int:
    """How many readings a message holds (each must end up accepted or rejected), 1 if it is refused whole."""
    if topic != "mdc/s1" and not topic.startswith("mdc/s1/"):  # MQTT: "mdc/s1/#" matches "mdc/s1" too
        return 1  # no_rule
    try:
        doc = json.loads(payload)
    except ValueError:
        return 1  # not_json
    items = doc if isinstance(doc, list) else [doc]
    return 1 if len(items) > 1000 else len(items)


def test_every_payload_is_accepted_or_rejected_with_a_named_reason(tmp_path: Path) -> None:
    state, mq, _i, _g = setup(tmp_path)  # one state for all examples: the counters must add up anyway
    seen = {"accepted": 0, "units": 0}

    @given(topic=_topics, payload=_payloads)
    @example(topic="mdc/s1/cabinet/inlet", payload=msg())
    @example(topic="mdc/s1/x", payload=b"\xff not json")
    @example(topic="mdc/s1/x", payload=b"[" + msg() + b", 7, " + msg(unit="K") + b"]")
    @settings(max_examples=200, deadline=None, database=None)
    def check(topic: str, payload: bytes) -> None:
        rejected = state.counter("payloads_rejected")
        ingested = state.counter("readings_ingested")
        raw = len(state.raw_rows())
        accepted = mq.handle(topic, payload)  # never raises
        units = _units(topic, payload)
        new_rejected = state.counter("payloads_rejected") - rejected
        assert accepted + new_rejected == units, (topic, payload[:80], accepted, new_rejected)
        assert state.counter("readings_ingested") - ingested == accepted
        assert len(state.raw_rows()) - raw == accepted
        seen["accepted"] += accepted
        seen["units"] += units

    check()
    counters = state.counters()
    by_reason = {k.split(".", 1)[1]: v for k, v in counters.items() if k.startswith("payloads_rejected.")}
    assert set(by_reason) <= REASONS, set(by_reason) - REASONS
    assert sum(by_reason.values()) == counters["payloads_rejected"]
    assert counters["payloads_rejected"] + seen["accepted"] == seen["units"]
    assert seen["accepted"] >= 2 and counters["payloads_rejected"] >= 3  # the explicit examples, at least
    assert {r[1].split(":")[0] for r in state.rejected()} <= REASONS
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
