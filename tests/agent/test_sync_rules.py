"""Guard tests for the `may_sync` rule: what data may leave a site, as decided by `PolicyBook.may_sync` and
applied by the agent (`SyncGate`, `Ingestor`, local alarms, `Aggregator`).

Each case breaks the rule one way (raw data outside its store rule, aggregates of a class whose aggregates
may not leave, a group smaller than k) and asserts the agent refuses it and names the rule. Mutants in
tools/mutants/ops.toml disable each part of the rule in turn; these tests must then fail.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from microdc.agent.alarms import LocalAlarms
from microdc.agent.config import AgentConfig, parse_config
from microdc.agent.dataplane import Aggregator
from microdc.agent.ingest import Ingestor
from microdc.agent.readings import Reading, make_reading
from microdc.agent.sovereignty import SyncGate, build_policy_book
from microdc.agent.state import State
from microdc.policy import PolicyBook

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
# EU ⊃ {DE ⊃ DE-BY, FR}; CH outside
TREE = [
    {"code": "EU", "children": [{"code": "DE", "children": [{"code": "DE-BY"}]}, {"code": "FR"}]},
    {"code": "CH"},
]
CLASSES: dict[str, dict[str, Any]] = {
    "personal": {"process_in": "origin", "aggregates_may_leave": True},  # raw stays home, aggregates go
    "secret": {"process_in": "origin"},  # nothing leaves, not even aggregates
    "eu": {"process_in": "EU"},  # anywhere inside the EU tree
    "home_store": {"process_in": "any", "store_in": "origin"},  # store_in is stricter than process_in
    "eu_store": {"process_in": "origin", "store_in": "EU"},  # store_in is looser than process_in
    "listed": {"process_in": ["DE", "CH"]},  # named codes, origin not among them
    "public": {"process_in": "any"},
}


def config(**policy: Any) -> AgentConfig:
    return parse_config(
        {
            "policy": {
                "jurisdiction": "FR",
                "upstream_jurisdiction": "DE",
                "jurisdictions": TREE,
                "data_classes": CLASSES,
                "aggregate_window_s": 300,
                "min_group_size": 3,
                **policy,
            },
            "uplink": {"report_every_s": 0},
        }
    )


@pytest.fixture
def book() -> PolicyBook:
    return build_policy_book(config().policy)


# (class, origin, destination, aggregate, may it sync, why)
CASES = [
    ("personal", "FR", "FR", False, True, "raw inside its store rule (origin itself)"),
    ("personal", "FR", "DE", False, False, "raw outside its store rule"),
    ("personal", "FR", "EU", False, False, "the parent of the origin is not inside the origin"),
    ("personal", "FR", "DE", True, True, "aggregates_may_leave"),
    ("personal", "FR", "CH", True, True, "aggregates_may_leave: anywhere"),
    ("secret", "FR", "DE", True, False, "aggregates may not leave without aggregates_may_leave"),
    ("secret", "FR", "DE", False, False, "raw outside its store rule"),
    ("secret", "FR", "FR", True, True, "aggregates inside the store rule"),
    ("eu", "FR", "DE", False, True, "a child of the allowed container"),
    ("eu", "FR", "DE-BY", False, True, "a grandchild of the allowed container"),
    ("eu", "FR", "EU", False, True, "the allowed container itself"),
    ("eu", "FR", "CH", False, False, "outside the allowed container"),
    ("eu", "FR", "CH", True, False, "aggregates of a class without aggregates_may_leave"),
    ("home_store", "FR", "DE", False, False, "store_in (origin) overrides process_in (any)"),
    ("home_store", "FR", "FR", False, True, "store_in origin: the origin itself"),
    ("eu_store", "FR", "DE", False, True, "store_in (EU) overrides process_in (origin)"),
    ("eu_store", "FR", "CH", False, False, "store_in EU: not outside it"),
    ("listed", "FR", "DE-BY", False, True, "inside a named code"),
    ("listed", "FR", "CH", False, True, "a named code"),
    ("listed", "FR", "FR", False, False, "origin is not among the named codes"),
    ("public", "FR", "CH", False, True, "any"),
]


@pytest.mark.parametrize(
    ("cls", "origin", "dest", "aggregate", "expected", "why"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}-{'agg' if c[3] else 'raw'}" for c in CASES],
)
def test_may_sync(
    book: PolicyBook, cls: str, origin: str, dest: str, aggregate: bool, expected: bool, why: str
) -> None:
    got = book.may_sync(cls, origin, dest, aggregate=aggregate)
    assert got is expected, f"may_sync({cls}, {origin} → {dest}, aggregate={aggregate}): {why}"


def test_the_gate_decides_raw_aggregate_or_local_and_names_the_rule(
    book: PolicyBook, caplog: pytest.LogCaptureFixture
) -> None:
    gate = SyncGate(book, "FR", "DE")
    with caplog.at_level(logging.INFO, logger="microdc.agent.sovereignty"):
        got = {c: gate.decision(c) for c in [*CLASSES, "operational", "no-such-class"]}
    assert got == {
        "personal": "aggregate",
        "secret": "local",
        "eu": "raw",
        "home_store": "local",
        "eu_store": "raw",
        "listed": "raw",
        "public": "raw",
        "operational": "raw",  # the default facility class: no personal data
        "no-such-class": "local",  # unknown class: fail closed
    }
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("may_sync:")]
    for cls in ("personal", "secret", "home_store", "no-such-class"):
        assert any(repr(cls) in m and "FR" in m and "DE" in m for m in refusals), (cls, refusals)
    assert not any("'public'" in m or "'eu'" in m for m in refusals)


def _r(sensor: str, cls: str, ts: datetime, value: float = 22.0, **kw: Any) -> Reading:
    kw.setdefault("reading_type", "Temperature")
    kw.setdefault("unit", "Cel")
    kw.setdefault("context", "Room")
    return make_reading(
        sensor, kw["reading_type"], kw["unit"], kw["context"], ts, value, data_class=cls,
        agg_group=kw.get("group", ""),
    )  # fmt: skip


def _world(tmp_path: Path, **policy: Any) -> tuple[State, Ingestor, SyncGate, AgentConfig]:
    cfg = config(**policy)
    state = State(tmp_path / "a.db")
    gate = SyncGate(build_policy_book(cfg.policy), "FR", "DE")
    ing = Ingestor(state, gate, LocalAlarms(state, cfg, "s1"), cfg.uplink, jurisdiction="FR")
    return state, ing, gate, cfg


def _pending(state: State) -> list[str]:
    with state._lock:
        return [r[0] for r in state._conn.execute("SELECT sensor_id FROM pending ORDER BY id").fetchall()]


def test_raw_data_refused_by_may_sync_is_stored_but_never_queued(tmp_path: Path) -> None:
    state, ing, _gate, _cfg = _world(tmp_path)
    readings = [_r(f"{cls}-{i}", cls, T0 + timedelta(seconds=i)) for cls in CLASSES for i in range(2)]
    res = ing.ingest(readings, "test")
    queued = set(_pending(state))
    assert queued == {f"{c}-{i}" for c in ("eu", "eu_store", "listed", "public") for i in range(2)}
    assert res.withheld == 6 and state.counter("readings_withheld") == 6
    for cls in ("personal", "secret", "home_store"):
        assert state.counter(f"readings_withheld.{cls}") == 2, cls
    assert len(state.raw_rows()) == len(readings)  # everything stays at the site, tagged
    assert {r[8] for r in state.raw_rows()} == {"FR"}


def test_alarm_events_of_data_that_may_not_leave_carry_neither_value_nor_message(tmp_path: Path) -> None:
    """A humidity alarm on a tenant's sensor still goes upstream, but not the reading that raised it."""
    state, ing, _gate, _cfg = _world(tmp_path)
    for k in range(12):  # 99 %RH for 11 minutes: past the humidity dwell time
        ts = T0 + timedelta(minutes=k)
        ing.ingest(
            [
                _r("flat-7", "personal", ts, 99.0, reading_type="Humidity", unit="%"),
                _r("room-1", "public", ts, 98.0, reading_type="Humidity", unit="%"),
            ],
            "test",
        )
    bodies = {a.body["sensor_id"]: a.body for a in state.next_alarms()}
    assert set(bodies) == {"flat-7", "room-1"}
    assert bodies["room-1"]["value"] == 98.0 and "98" in bodies["room-1"]["message"]  # the clean case
    hidden = bodies["flat-7"]
    assert hidden["value"] is None and "99" not in hidden["message"], hidden
    assert "may_sync" in hidden["message"]


def test_only_k_anonymous_aggregates_of_aggregate_only_classes_are_queued(tmp_path: Path) -> None:
    state, ing, gate, cfg = _world(tmp_path)
    readings: list[Reading] = []
    for k in range(10):  # two 300 s windows
        ts = T0 + timedelta(seconds=60 * k)
        readings += [_r(f"t{m}", "personal", ts, 10.0 * (m + 1), group="tenants") for m in range(3)]  # k
        readings += [_r(f"p{m}", "personal", ts, 5.0, group="pair") for m in range(2)]  # k - 1
        readings += [_r(f"s{m}", "secret", ts, 1.0) for m in range(4)]  # local: never aggregated
        readings += [_r(f"u{m}", "public", ts, 1.0) for m in range(3)]  # raw: sent as is
    ing.ingest(readings, "test")
    before = set(_pending(state))
    assert before == {"u0", "u1", "u2"}
    n = Aggregator(state, gate, cfg.policy).run((T0 + timedelta(seconds=600 + 61)).timestamp())
    agg = [s for s in _pending(state) if s.startswith("agg.")]
    assert n == len(agg) == 2  # two windows × mean (Temperature is not additive)
    assert set(agg) == {"agg.tenants.Temperature.Room.mean"}  # exactly k sensors: sent
    assert state.counter("aggregates_withheld_small_group") == 2  # the pair, in each window
    assert not any(s.startswith(("agg.secret", "agg.public", "agg.pair")) for s in _pending(state))
