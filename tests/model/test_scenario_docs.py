"""docs/scenario.md is the model's reference as generated now: changing a field without regenerating fails."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model.components import Site
from microdc.model.reference import BEGIN, END, replace_reference, scenario_reference
from microdc.model.scenario import Scenario

DOC = Path(__file__).parents[2] / "docs" / "scenario.md"


def test_committed_reference_is_current() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert replace_reference(current, scenario_reference()) == current, (
        "docs/scenario.md is stale: run python tools/scenario_docs.py"
    )


def test_every_field_of_every_section_is_documented() -> None:
    ref = scenario_reference()
    for name in Scenario.model_fields:
        assert f"| `{name}` |" in ref
    for name, info in Site.model_fields.items():
        assert f"| `{name}` |" in ref and info.description and info.description in ref
    assert "### Cooling" in ref and "### DataClassPolicy" in ref  # nested sections are reached
    assert "| `lat` | number | **required** |" in ref
    assert '| `currency` | text | `"USD"` |' in ref  # a default


def test_reference_follows_the_model(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    field = Site.model_fields["annual_cost"]
    monkeypatch.setattr(field, "description", "a changed description, EUR/year")
    assert "a changed description, EUR/year" in scenario_reference(examples=[])


def test_cli_prints_the_reference() -> None:
    r = CliRunner().invoke(app, ["schema", "--markdown"])
    assert r.exit_code == 0 and r.output.startswith("### Scenario")
    doc = DOC.read_text(encoding="utf-8")
    assert BEGIN in doc and END in doc
