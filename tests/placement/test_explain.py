"""`validate` explains a scenario back: counts and names, and warnings for what looks unusual — each
warning built by breaking exactly that thing in the Melbourne example, beside the clean example."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import Scenario, load_scenario
from microdc.placement.explain import explain

MELBOURNE = Path(__file__).parents[2] / "src" / "microdc" / "examples" / "melbourne"


@pytest.fixture(scope="module")
def unusual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("unusual") / "m"
    shutil.copytree(MELBOURNE, d)
    data = yaml.safe_load((d / "scenario.yaml").read_text())
    # a site in Perth: inside AU, thousands of km from every user
    with (d / "sites.csv").open("a") as fh:
        fh.write("perth-1,Perth,-31.95,115.86,2,25.0,15000.0\n")
    data["sites"] = {"csv": "sites.csv", "defaults": data["sites"]["defaults"]}
    # tighter SLO for telemetry, so nothing reaches Perth within SLO
    for sv in data["services"]:
        if sv["id"] == "iot-telemetry":
            sv["slo"] = {"p95_ms": 30}
    # a demand row at 0,0 (outside every jurisdiction) and one whose class nothing may process
    data["policies"]["data_classes"]["secret"] = {"process_in": "AU-NSW", "min_security_tier": 3}
    data["cloud_regions"] = [r for r in data["cloud_regions"] if r["jurisdiction"] == "AU-VIC"]
    with (d / "demand.csv").open("a") as fh:
        fh.write("zero-1,0.0,0.0,5,public,iot-telemetry,1.0,flat,0.1\n")
        fh.write("secret-1,-37.81,144.96,5,secret,iot-telemetry,1.0,flat,0.1\n")
    (d / "scenario.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    # the site in Perth must carry the root jurisdiction to pass the (hard) bbox check
    rows = (d / "sites.csv").read_text().splitlines()
    rows[0] += ",jurisdiction"
    rows = [rows[0]] + [r + (",AU" if r.startswith("perth") else ",AU-VIC") for r in rows[1:]]
    (d / "sites.csv").write_text("\n".join(rows) + "\n")
    return d


def test_clean_example_has_facts_and_no_warning() -> None:
    ex = explain(load_scenario(MELBOURNE))
    facts = dict(ex.facts)
    assert facts["jurisdictions"].startswith("AU, AU-VIC (125 sites, 294 demand)")
    assert "ar-guidance (p95 20 ms)" in facts["services"]
    assert "personal (process in origin, tier ≥ 2)" in facts["data classes"]
    assert "aws-ap-southeast-4 (AU-VIC)" in facts["cloud regions"]
    assert ex.warnings == []


def test_unusual_rows_are_warned_about(unusual: Path) -> None:
    s: Scenario = load_scenario(unusual)
    text = "\n".join(explain(s).warnings)
    assert "outside every jurisdiction's area: demand zero-1 at (0, 0)" in text
    assert "sites have no demand within any service's SLO reach: perth-1 (nearest demand 2," in text
    assert "no site or cloud that may legally serve them (sovereignty or security tier): secret-1" in text
    assert "optus" not in text  # the real sites are not flagged


def test_validate_prints_warnings_and_still_passes(unusual: Path) -> None:
    r = CliRunner().invoke(app, ["validate", str(unusual), "--no-physics"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "warning: 1 rows lie outside every jurisdiction" in out
    assert "What it holds" in out
