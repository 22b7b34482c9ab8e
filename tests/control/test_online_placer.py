"""The control plane's desired state through the real online placer and the one policy module."""

from __future__ import annotations

from pathlib import Path

from microdc.control.desired import Assignment, FleetSite, WorkloadSpec
from microdc.control.online_placer import OnlinePlacer

from .test_desired import site, wl


def place(fleet: list[FleetSite], wls: list[WorkloadSpec]) -> dict[str, Assignment]:
    return OnlinePlacer().place(fleet, wls).by_workload()


def test_sovereignty_including_ancestors() -> None:
    fleet = [site("fr", j="FR"), site("de", j="DE"), site("us", j="US", anc=())]
    out = place(fleet, [wl("a"), wl("b", allowed=("EU",)), wl("c", origin="US")])
    assert out["a"].site_id == "de"
    assert out["b"].site_id in {"fr", "de"}
    assert out["c"].site_id == "us"


def test_tier_capacity_and_unserved() -> None:
    fleet = [site("low", tier=1), site("small", tier=3, cores=4)]
    out = place(fleet, [wl("a", tier=2, cores=8)])
    assert out["a"].site_id != "low"  # never below the class's tier
    assert out["a"].state == "degraded"


def test_held_on_link_down_and_replaced_from_down() -> None:
    fleet = [site("a"), site("b"), site("c", liveness="link_down"), site("d", liveness="down")]
    out = place(fleet, [wl("keep", cur="b"), wl("held", cur="c"), wl("moved", cur="d")])
    assert (out["keep"].site_id, out["keep"].state) == ("b", "assigned")
    assert (out["held"].site_id, out["held"].state) == ("c", "held")
    assert out["moved"].site_id in {"a", "b"} and out["moved"].state == "assigned"


def test_break_in_drains_only_what_needs_a_higher_tier_and_never_crosses_a_border() -> None:
    fleet = [site("a", trusted=False), site("b", j="FR")]
    out = place(fleet, [wl("pub", cur="a", tier=1), wl("sec", cur="a", tier=2)])
    assert out["pub"].site_id == "a"  # an untrusted site still counts as tier 1
    assert out["sec"].site_id is None and out["sec"].state == "degraded"  # FR would break sovereignty
    assert "unschedulable" in out["sec"].reason or "sovereignty" in out["sec"].reason


def test_sites_import_from_scenario_and_plan(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from microdc.cli.main import app
    from microdc.control.scenario_import import sites_from_scenario
    from microdc.examples import resolve_scenario
    from microdc.model import load_scenario

    s = load_scenario(resolve_scenario("eu-sovereign"))
    sites = sites_from_scenario(s)
    assert len(sites) == len(s.sites)
    zurich = next(x for x in sites if x.id == "zurich-1")
    assert zurich.jurisdiction == "CH" and zurich.jurisdiction_ancestors == []
    munich = next(x for x in sites if x.id == "munich-1")
    assert munich.jurisdiction_ancestors == ["EU"]
    db = f"sqlite:///{tmp_path / 'c.db'}"
    res = CliRunner().invoke(app, ["sites", "import", "eu-sovereign", "--db", db])
    assert res.exit_code == 0, res.output
    assert "20 site(s) added" in res.output


def test_an_empty_fleet_leaves_work_unserved_instead_of_crashing() -> None:
    out = place([], [wl("a")])
    assert out["a"].site_id is None and out["a"].state != "assigned"
