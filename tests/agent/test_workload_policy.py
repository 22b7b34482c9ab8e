"""The agent refuses to mount a volume its site's policy forbids, and says so in the ack and the status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from microdc.agent.config import PolicyConfig
from microdc.agent.executors.process import ProcessExecutor
from microdc.agent.reconcile import NO_SPEC, Reconciler, want_of
from microdc.agent.sovereignty import build_policy_book, volume_refusal
from microdc.agent.state import State
from microdc.model.jurisdiction import Jurisdiction
from microdc.model.policies import DataClassPolicy

from .workloads import make_supervisor

EU = Jurisdiction(code="EU", children=[Jurisdiction(code="DE"), Jurisdiction(code="FR")])
POLICY = PolicyConfig(
    jurisdiction="DE",
    upstream_jurisdiction="DE",
    jurisdictions=[EU],
    data_classes={
        "personal": DataClassPolicy(process_in="origin"),
        "public": DataClassPolicy(process_in="any"),
        "eu-records": DataClassPolicy(process_in="origin", store_in="EU"),
        "fr-archive": DataClassPolicy(process_in="any", store_in="FR"),
    },
)
BOOK = build_policy_book(POLICY)


@pytest.mark.parametrize(
    ("data_class", "jurisdiction", "refusal"),
    [
        ("personal", "DE", None),
        ("public", "DE", None),
        ("public", "EU", None),  # data bound to the EU may sit in DE
        ("eu-records", "EU", None),
        ("personal", "FR", "must stay in FR; this site is in DE"),  # the tag binds, whatever the class
        ("fr-archive", "EU", "may not be stored at this site (DE)"),  # inside the tag, but the class says FR
        ("public", "FR", "must stay in FR; this site is in DE"),
        ("secret", "DE", "data class 'secret' is unknown"),
        ("public", "US", "jurisdiction 'US' is not in this site's jurisdiction tree"),
    ],
)
def test_volume_refusal_rules(data_class: str, jurisdiction: str, refusal: str | None) -> None:
    why = volume_refusal(BOOK, "DE", data_class, jurisdiction)
    if refusal is None:
        assert why is None
    else:
        assert why is not None and why.startswith("volume sovereignty:") and refusal in why


def _desired(*workloads: dict[str, Any]) -> dict[str, Any]:
    return {"site_id": "s", "version": 3, "etag": "x", "state": "up", "workloads": list(workloads)}


def _wl(wid: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": wid, "name": wid, "data_class": "personal", "cores": 1, "state": "assigned", "spec": spec}


def test_reconciler_refuses_forbidden_volume_and_runs_the_rest(tmp_path: Path) -> None:
    ex = ProcessExecutor(f"policy-{tmp_path.name}", tmp_path / "run")
    sup = make_supervisor(ex, tmp_path)
    state = State(tmp_path / "state.db")
    try:
        ok_spec = {
            "command": ["sleep", "300"],
            "stop_timeout_s": 1,
            "volumes": [{"name": "d", "path": "/d", "data_class": "personal", "jurisdiction": "DE"}],
        }
        bad_spec = {
            **ok_spec,
            "volumes": [{"name": "d", "path": "/d", "data_class": "personal", "jurisdiction": "FR"}],
        }
        state.set("desired", _desired(_wl("ok", ok_spec), _wl("bad", bad_spec), _wl("plan-only", None)))
        rec = Reconciler(
            state,
            sup,
            "s",
            volume_check=lambda v: volume_refusal(BOOK, "DE", v.data_class, v.jurisdiction),
            executor_check=ex.check,
        )
        ok, msg = rec.apply_local()
        assert not ok
        assert msg.startswith("bad: volume sovereignty:") and "(volume 'd')" in msg and "plan-only" not in msg
        status = {s.workload_id: s for s in sup.step()}
        assert status["ok"].state == "running"
        assert status["bad"].state == "refused" and "volume sovereignty" in status["bad"].message
        assert status["plan-only"].state == "refused" and status["plan-only"].message == NO_SPEC
        assert {i.workload_id for i in ex.instances() if i.running} == {"ok"}  # the refused one never started
    finally:
        for i in ex.instances():
            ex.stop(i, 1)
        state.close()


def test_want_of_names_the_bad_field_of_a_spec_it_cannot_read() -> None:
    w = want_of(_wl("x", {"command": ["a"], "ports": [0]}), lambda v: None, lambda s: None)
    assert w.refused.startswith("spec.ports.0:")
    w = want_of(_wl("y", {"image": "busybox:1"}), lambda v: None, ProcessExecutor("s", Path("/x")).check)
    assert "cannot run image" in w.refused
