"""A scenario's `workloads:` section: the format of a workloads.yaml, its references checked against
the scenario (data class, jurisdictions, volumes), every problem named by file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.examples import EXAMPLES_DIR
from microdc.model import ScenarioError, load_scenario
from microdc.model.errors import Problem
from microdc.model.workloads import parse_workloads


@pytest.fixture
def eu(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES_DIR / "eu-sovereign", tmp_path / "eu")
    return tmp_path / "eu" / "scenario.yaml"


def _edit(path: Path, old: str, new: str) -> int:
    """Replace `old` once; return the 1-based line where it started."""
    text = path.read_text()
    assert text.count(old) == 1, f"fixture no longer holds {old!r} exactly once"
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value.problems


def test_example_declares_a_command_workload_with_a_tagged_volume() -> None:
    s = load_scenario(EXAMPLES_DIR / "eu-sovereign" / "scenario.yaml")
    (w,) = s.workloads
    assert w.spec is not None and w.spec.image is None and w.spec.command
    assert w.spec.health is not None and w.spec.health.probe.kind == "http"
    (vol,) = w.spec.volumes
    assert vol.data_class in s.policies.data_classes and vol.jurisdiction in s.tree


def test_scenario_and_workloads_file_share_one_format(eu: Path) -> None:
    import yaml

    section = yaml.safe_load(eu.read_text())["workloads"]
    assert parse_workloads({"workloads": section}, "workloads.yaml") == list(load_scenario(eu).workloads)


def test_unknown_data_class_names_file_line_and_field(eu: Path) -> None:
    line = _edit(
        eu,
        "    data_class: personal\n    origin_jurisdiction: DE",
        "    data_class: secret\n    origin_jurisdiction: DE",
    )
    (p,) = _problems(eu)
    assert (Path(p.file).name, p.line, p.field) == ("scenario.yaml", line, "workloads.0.data_class")
    assert "data class 'secret'" in p.message and "personal" in p.message


def test_unknown_jurisdictions_and_volume_references(eu: Path) -> None:
    origin = _edit(
        eu, "origin_jurisdiction: DE", "origin_jurisdiction: XX\n    allowed_jurisdictions: [FR, ZZ]"
    )
    vol = _edit(eu, "data_class: personal, jurisdiction: DE}", "data_class: gossip, jurisdiction: YY}")
    found = {(p.field, p.line): p.message for p in _problems(eu)}
    assert set(found) == {
        ("workloads.0.origin_jurisdiction", origin),
        ("workloads.0.allowed_jurisdictions.1", origin + 1),
        ("workloads.0.spec.volumes.0.data_class", vol),
        ("workloads.0.spec.volumes.0.jurisdiction", vol),
    }
    assert "unknown jurisdiction 'XX'" in found[("workloads.0.origin_jurisdiction", origin)]
    assert "'gossip'" in found[("workloads.0.spec.volumes.0.data_class", vol)]


def test_bad_run_spec_field_is_located(eu: Path) -> None:
    line = _edit(eu, "    cores: 0.5\n", "    cores: -1\n")
    (p,) = _problems(eu)
    assert (p.field, p.line) == ("workloads.0.cores", line) and "greater than 0" in p.message


def test_repeated_workload_id_is_located(eu: Path) -> None:
    text = eu.read_text()
    eu.write_text(text + "  - {id: patient-files, data_class: public, origin_jurisdiction: FR, cores: 1}\n")
    (p,) = _problems(eu)
    assert (p.field, p.line) == ("workloads.1.id", text.count("\n") + 1)
    assert "repeats workloads.0" in p.message


def test_cli_validate_reports_the_workload_problem(eu: Path) -> None:
    line = _edit(
        eu,
        "    data_class: personal\n    origin_jurisdiction: DE",
        "    data_class: secret\n    origin_jurisdiction: DE",
    )
    res = CliRunner().invoke(app, ["validate", str(eu), "--no-physics"], env={"COLUMNS": "250"})
    assert res.exit_code == 2, res.output
    assert f"scenario.yaml:{line} [workloads.0.data_class]" in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_no_section_means_no_workloads() -> None:
    assert load_scenario(EXAMPLES_DIR / "melbourne" / "scenario.yaml").workloads == []
