"""Every model rule and every kind of bad input gives a clear, located error."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import ScenarioError, load_scenario
from microdc.model.errors import Problem


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1))


def _problems(scenario_dir: Path) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(scenario_dir / "scenario.yaml")
    return info.value.problems


def test_tiny_is_valid(tiny_dir: Path) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    assert [site.id for site in s.sites] == ["berlin", "munich", "paris"]
    assert s.sites[0].grid_zone == "grid"  # CSV defaults applied
    assert s.demand[0].mean_rate_rps == 200
    assert s.tree.is_inside("DE", "EU") and not s.tree.is_inside("US", "EU")


def test_directory_argument_finds_scenario_yaml(tiny_dir: Path) -> None:
    assert load_scenario(tiny_dir).name == "tiny"


def test_missing_field_names_file_line_and_field(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", "      capex: 20000\n", "")
    (p,) = _problems(tiny_dir)
    assert p.file.endswith("scenario.yaml")
    assert p.field == "catalog.modules.0.capex"
    assert p.line == 15  # the module's first line
    assert "missing required field" in p.message


def test_wrong_units_in_csv_names_row(tiny_dir: Path) -> None:
    _edit(tiny_dir / "sites.csv", "DE,3,30,20000", 'DE,3,"30 MW",20000')
    (p,) = _problems(tiny_dir)
    assert p.file.endswith("sites.csv") and p.line == 2
    assert p.field == "sites.0.grid_power_kw"
    assert "valid number" in p.message and "30 MW" in p.message


def test_wrong_type_in_yaml(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", "rack_units: 12", "rack_units: twelve")
    (p,) = _problems(tiny_dir)
    assert p.field == "catalog.modules.0.rack_units" and p.line == 16


def test_unknown_field_is_rejected(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", "capex: 20000", "capex: 20000\n      capex_eur: 1")
    (p,) = _problems(tiny_dir)
    assert p.field == "catalog.modules.0.capex_eur" and "unknown field" in p.message


def test_unknown_jurisdiction(tiny_dir: Path) -> None:
    _edit(tiny_dir / "demand.csv", "500,FR,public", "500,XX,public")
    (p,) = _problems(tiny_dir)
    assert p.file.endswith("demand.csv") and p.line == 4
    assert p.field == "demand.2.jurisdiction" and "unknown jurisdiction 'XX'" in p.message


def test_site_outside_its_jurisdiction(tiny_dir: Path) -> None:
    _edit(tiny_dir / "sites.csv", "paris,Paris,48.86,2.35,FR", "paris,Paris,40.40,-3.70,FR")
    (p,) = _problems(tiny_dir)
    assert p.file.endswith("sites.csv") and p.line == 4
    assert "outside jurisdiction 'FR'" in p.message


def test_malformed_csv_row(tiny_dir: Path) -> None:
    with (tiny_dir / "demand.csv").open("a") as fh:
        fh.write("broken,1,2\n")
    (p,) = _problems(tiny_dir)
    assert p.file.endswith("demand.csv") and p.line == 5
    assert "malformed row: 3 fields, header has 8" in p.message


def test_service_without_slo(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", "payload_kb: 1, slo: {p95_ms: 500}", "payload_kb: 1, slo: {}")
    (p,) = _problems(tiny_dir)
    assert p.field == "services.1.slo" and "p95_ms and/or p99_ms" in p.message
    assert p.line == 28


def test_service_missing_slo_entirely(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", ", slo: {p95_ms: 500}", "")
    (p,) = _problems(tiny_dir)
    assert p.field == "services.1.slo" and "missing required field" in p.message


def test_reference_to_missing_file(tiny_dir: Path) -> None:
    (tiny_dir / "demand.csv").unlink()
    (p,) = _problems(tiny_dir)
    assert p.field == "demand.csv" and "file not found" in p.message


def test_missing_timeseries_file(tiny_dir: Path) -> None:
    _edit(
        tiny_dir / "scenario.yaml",
        "mild: {format: constant, constant_c: 15}",
        "mild: {format: openmeteo, path: nowhere.csv}",
    )
    (p,) = _problems(tiny_dir)
    assert p.field == "timeseries.weather.mild.path" and "nowhere.csv" in p.message


def test_every_problem_is_reported_at_once(tiny_dir: Path) -> None:
    _edit(tiny_dir / "demand.csv", "500,FR,public,batch", "500,XX,public,nosuch")
    _edit(tiny_dir / "sites.csv", "munich,Munich,48.14,11.58,DE", "munich,Munich,48.14,11.58,ZZ")
    fields = {p.field for p in _problems(tiny_dir)}
    assert {"demand.2.jurisdiction", "demand.2.service", "sites.1.jurisdiction"} <= fields


def test_duplicate_ids_and_bad_policy_reference(tiny_dir: Path) -> None:
    _edit(tiny_dir / "sites.csv", "munich,Munich", "berlin,Munich")
    _edit(tiny_dir / "scenario.yaml", "process_in: any", "process_in: [EU, XX]")
    msgs = [str(p) for p in _problems(tiny_dir)]
    assert any("duplicate id 'berlin'" in m for m in msgs)
    assert any("policies.data_classes.public.process_in" in m and "'XX'" in m for m in msgs)


def test_yaml_syntax_error_has_line(tiny_dir: Path) -> None:
    bad = "name: tiny: oops"  # a second ':' on one line: "mapping values are not allowed here"
    _edit(tiny_dir / "scenario.yaml", "name: tiny", bad)
    (p,) = _problems(tiny_dir)
    assert "YAML syntax error" in p.message
    expected = (tiny_dir / "scenario.yaml").read_text().splitlines().index(bad) + 1
    assert p.file.endswith("scenario.yaml") and p.line == expected


def test_idle_above_peak_rejected(tiny_dir: Path) -> None:
    _edit(tiny_dir / "scenario.yaml", "idle_w: 100", "idle_w: 500")
    (p,) = _problems(tiny_dir)
    assert "idle_w (500.0) must not exceed peak_w" in p.message


def test_cli_validate_exit_codes(tiny_dir: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(tiny_dir / "scenario.yaml"), "--no-physics"])
    assert ok.exit_code == 0, ok.output
    _edit(tiny_dir / "sites.csv", "DE,3,30,20000", "DE,3,-30,20000")
    bad = runner.invoke(app, ["validate", str(tiny_dir / "scenario.yaml"), "--no-physics"])
    assert bad.exit_code == 2
    assert "sites.csv:2" in bad.output and "grid_power_kw" in bad.output
    assert "Traceback" not in bad.output


def test_cli_validate_missing_file() -> None:
    res = CliRunner().invoke(app, ["validate", "/nonexistent/scenario.yaml", "--no-physics"])
    assert res.exit_code == 2 and "scenario file not found" in res.output


@pytest.mark.parametrize("name", ["melbourne", "eu-sovereign"])
def test_builtin_examples_are_valid(name: str) -> None:
    res = CliRunner().invoke(app, ["validate", name, "--no-physics"])
    assert res.exit_code == 0, res.output
