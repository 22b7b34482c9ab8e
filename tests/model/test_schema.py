"""`microdc schema` describes the scenario file as the loader reads it: every built-in example (and
the test scenario) validates against it with `jsonschema`, every property is described with its unit,
and a wrong type is rejected."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.examples import EXAMPLES_DIR, list_examples
from microdc.model import load_scenario

TINY = Path(__file__).parents[1] / "data" / "tiny" / "scenario.yaml"
SCENARIOS = [EXAMPLES_DIR / name / "scenario.yaml" for name in list_examples()] + [TINY]

# Words that name a unit (or say that a number has none). Every numeric field's description has one.
UNITS = (
    "kW",
    "kWh",
    " W",
    "ms",
    "°C",
    "degrees",
    "GB",
    "kB",
    " km",
    "TB",
    " U",
    "req/s",
    "seconds",
    "years",
    "hours",
    "days",
    "currency units",
    "gCO2eq/kWh",
    "kg CO2e",
    "count",
    "fraction",
    "ratio",
    "tier",
    "dimensionless",
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0, res.output
    out: dict[str, Any] = json.loads(res.output)
    jsonschema.Draft202012Validator.check_schema(out)
    return out


def _as_json(path: Path) -> Any:
    """The YAML document as JSON data: what an editor validates (YAML dates become ISO strings)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))


def _errors(schema: dict[str, Any], doc: Any) -> list[str]:
    v = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc)]


def test_examples_are_there() -> None:
    assert {p.parent.name for p in SCENARIOS} >= {"melbourne", "eu-sovereign", "tiny"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.parent.name)
def test_every_builtin_scenario_validates(schema: dict[str, Any], path: Path) -> None:
    doc = _as_json(path)
    assert isinstance(doc["sites"], dict) and "csv" in doc["sites"]  # the table-reference form
    assert _errors(schema, doc) == []


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.parent.name)
def test_the_inline_form_validates_and_loads(schema: dict[str, Any], path: Path, tmp_path: Path) -> None:
    """The same scenario with every table written inline (what `load_scenario` makes of the CSVs)."""
    s = load_scenario(path)
    doc = json.loads(s.model_dump_json())
    for key in ("sites", "demand", "cloud_regions"):
        assert isinstance(doc[key], list)
    assert _errors(schema, doc) == []
    folder = tmp_path / "inline"
    folder.mkdir()
    sources = [*s.timeseries.weather.values(), *s.timeseries.carbon.values()]
    for rel in {src.path for src in sources if src.path is not None}:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s.resolve(rel), folder / rel)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert load_scenario(folder).model_dump() == s.model_dump()


def _properties(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            out += [(f"{path}/properties/{k}", v) for k, v in props.items()]
        for k, v in node.items():
            out += _properties(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _properties(v, f"{path}/{i}")
    return out


def _types(prop: dict[str, Any]) -> set[str]:
    found = {prop["type"]} if isinstance(prop.get("type"), str) else set()
    for alt in prop.get("anyOf", []):
        found |= _types(alt)
    return found


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    props = _properties(schema)
    assert len(props) > 100  # every model's fields, not just the top level
    undescribed = [path for path, p in props if not str(p.get("description", "")).strip()]
    assert undescribed == []


def test_every_number_names_its_unit(schema: dict[str, Any]) -> None:
    numeric = [(path, p) for path, p in _properties(schema) if _types(p) & {"number", "integer"}]
    assert len(numeric) > 40
    missing = [
        f"{path}: {p.get('description')!r}"
        for path, p in numeric
        if not any(u in p["description"] for u in UNITS)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (("catalog", "modules", 0, "rack_units"), "twelve", "catalog/modules/0/rack_units"),
        (("sites",), 5, "sites"),
        (("sites", "defaults"), ["grid"], "sites"),
        (("demand", "sql"), "select *", "demand"),
        (("policies", "data_classes", "public", "min_security_tier"), 7, "policies/data_classes/public"),
    ],
)
def test_wrong_types_are_rejected(
    schema: dict[str, Any], path: tuple[Any, ...], value: Any, where: str
) -> None:
    doc = _as_json(TINY)
    assert _errors(schema, doc) == []
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    errors = _errors(schema, doc)
    assert errors and all(e.startswith(where) for e in errors), errors
