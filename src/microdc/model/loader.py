"""Load a scenario from YAML, with CSV tables beside it, collecting every problem with its location.

Tables may be inline lists or `{csv: file.csv, defaults: {...}}`; CSV paths are relative to the
YAML file. Each CSV row keeps its line number so a bad value is reported as `file.csv:17 [lat]`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from microdc.model.errors import Problem, ScenarioError
from microdc.model.scenario import Scenario, cross_reference_problems
from microdc.model.yaml_source import Loc, SourceMap, YamlSyntaxError, load_yaml_with_lines

CSV_TABLES = ("sites", "demand", "cloud_regions")


def _parse_existing(cell: str) -> list[dict[str, Any]]:
    """`module:server:count;...` → installed modules (CSV cannot nest)."""
    out: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        bits = part.split(":")
        if len(bits) != 3:
            raise ValueError(f"expected 'module:server:count' entries separated by ';', got {part!r}")
        out.append({"module": bits[0], "server": bits[1], "count": bits[2]})
    return out


def read_csv_table(
    path: Path, loc: Loc, smap: SourceMap, defaults: dict[str, Any], problems: list[Problem]
) -> list[dict[str, Any]]:
    """Rows as dicts (empty cells omitted so defaults apply); malformed rows become problems."""
    rows: list[dict[str, Any]] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            problems.append(Problem(str(path), 1, "", "empty CSV file; expected a header row"))
            return rows
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            problems.append(Problem(str(path), 1, "", f"duplicate column names in header {header}"))
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                problems.append(
                    Problem(
                        str(path), line, "", f"malformed row: {len(row)} fields, header has {len(header)}"
                    )
                )
                continue
            record: dict[str, Any] = dict(defaults)
            for col, cell in zip(header, row, strict=True):
                cell = cell.strip()
                if cell == "":
                    continue
                if col == "existing":
                    try:
                        record[col] = _parse_existing(cell)
                    except ValueError as exc:
                        problems.append(Problem(str(path), line, "existing", str(exc)))
                    continue
                record[col] = cell
            idx = len(rows)
            smap.add((*loc, idx), str(path), line)
            for col in record:
                smap.add((*loc, idx, col), str(path), line)
            rows.append(record)
    return rows


def _expand_tables(
    data: dict[str, Any], base: Path, yaml_file: str, smap: SourceMap
) -> tuple[list[Problem], set[str]]:
    """Replace `{csv: ...}` tables by their rows; return problems and the tables that failed to load."""
    problems: list[Problem] = []
    failed: set[str] = set()
    for key in CSV_TABLES:
        spec = data.get(key)
        if not isinstance(spec, dict):
            continue
        file_, line = smap.lookup((key,), yaml_file)
        unknown = set(spec) - {"csv", "defaults"}
        if "csv" not in spec or unknown:
            problems.append(Problem(file_, line, key, "expected a list, or {csv: FILE, defaults: {...}}"))
            data[key] = []
            failed.add(key)
            continue
        path = (base / str(spec["csv"])).resolve()
        if not path.is_file():
            problems.append(Problem(file_, line, f"{key}.csv", f"file not found: {path}"))
            data[key] = []
            failed.add(key)
            continue
        defaults = spec.get("defaults") or {}
        data[key] = read_csv_table(path, (key,), smap, defaults, problems)
    return problems, failed


def json_schema() -> dict[str, Any]:
    """JSON Schema of a scenario.yaml as the loader reads it (`microdc schema`).

    The model's own schema describes the scenario after loading; the file may also give each table
    (sites, demand, cloud_regions) as `{csv: FILE, defaults: {...}}`, so those accept either form.
    """
    schema = Scenario.model_json_schema()
    defs = schema.get("$defs", {})
    props = schema["properties"]
    for key in CSV_TABLES:
        inline = dict(props[key])
        description = inline.pop("description", "")
        item_ref = inline["items"]["$ref"]
        item = defs[item_ref.rsplit("/", 1)[-1]]
        table = {
            "type": "object",
            "title": f"{key} from a CSV file",
            "description": f"{key} as a CSV table: one row per item, field names as header",
            "properties": {
                "csv": {
                    "type": "string",
                    "description": "path of the CSV file, relative to the scenario file; empty cells take "
                    "the defaults",
                },
                "defaults": {
                    "type": "object",
                    "description": "values for fields the CSV leaves out or leaves empty",
                    "properties": dict(item["properties"]),
                    "additionalProperties": False,
                },
            },
            "required": ["csv"],
            "additionalProperties": False,
        }
        inline["description"] = f"{key} inline, one entry per item"
        props[key] = {"description": description, "anyOf": [inline, table]}
    return schema


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling; see `microdc schema`)"
    msg = str(err.get("msg", "invalid value"))
    if "input" in err and kind not in ("model_type", "dict_type", "list_type"):
        return f"{msg} (got {err['input']!r})"
    return msg


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _user_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The error location as the user wrote it: pydantic inserts union labels into it (the tag of a
    tagged union, as in `profiles.day.diurnal.timezone`, or a member type such as `str`), which name
    no key of the file."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(part, str):
            if isinstance(node, dict) and part not in node and node.get("kind") == part:
                continue  # a discriminated union's tag
            if node is not None and not isinstance(node, dict):
                continue  # a union member label (a list or scalar value has no keys)
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


#: A site's ``climate`` value that asks for the nearest weather series (as does leaving it out).
NEAREST = "nearest"


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _nearest_climates(data: dict[str, Any]) -> None:
    """Sites without a climate (or with ``climate: nearest``) take the weather series nearest to them by
    great-circle distance, among the series that give ``lat`` and ``lon``. Where no series has
    coordinates the site is left alone, and validation names the missing climate."""
    weather = (data.get("timeseries") or {}).get("weather") or {}
    if not isinstance(weather, dict):
        return
    placed = [
        (str(key), _number(src.get("lat")), _number(src.get("lon")))
        for key, src in weather.items()
        if isinstance(src, dict)
    ]
    placed = [(k, la, lo) for k, la, lo in placed if la is not None and lo is not None]
    sites = data.get("sites")
    if not placed or not isinstance(sites, list):
        return
    from microdc.physics.geo import great_circle_km

    keys = [k for k, _, _ in placed]
    w_lat = np.array([la for _, la, _ in placed], dtype=np.float64)
    w_lon = np.array([lo for _, _, lo in placed], dtype=np.float64)
    for site in sites:
        if not isinstance(site, dict) or site.get("climate") not in (None, "", NEAREST):
            continue
        lat, lon = _number(site.get("lat")), _number(site.get("lon"))
        if lat is None or lon is None:
            continue  # validation names the bad coordinates
        km = great_circle_km(lat, lon, w_lat, w_lon)
        site["climate"] = keys[int(np.argmin(km))]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario; raise ScenarioError listing every problem found."""
    yaml_path = Path(path)
    if yaml_path.is_dir():
        yaml_path = yaml_path / "scenario.yaml"
    if not yaml_path.is_file():
        raise ScenarioError([Problem(str(yaml_path), None, "", "scenario file not found")])
    smap = SourceMap()
    file_ = str(yaml_path)
    try:
        data = load_yaml_with_lines(yaml_path, smap)
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(exc.file, exc.line, "", exc.message)]) from None
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(file_, 1, "", "expected a mapping of scenario sections at the top level")]
        )

    base = yaml_path.parent.resolve()
    problems, failed_tables = _expand_tables(data, base, file_, smap)
    _nearest_climates(data)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _user_loc(data, tuple(err["loc"]))
            if loc and loc[0] in failed_tables and len(loc) == 1:
                continue  # already reported: the table's file could not be read
            where, line = smap.lookup(loc, file_)
            problems.append(Problem(where, line, _field_path(loc), _describe(dict(err))))
        raise ScenarioError(problems) from None
    scenario._base_dir = base
    for loc, message in cross_reference_problems(scenario):
        where, line = smap.lookup(loc, file_)
        problems.append(Problem(where, line, _field_path(loc), message))
    if problems:
        raise ScenarioError(problems)
    return scenario
