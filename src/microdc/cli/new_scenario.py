"""`microdc new`: a working scenario folder from a user's table of sites and table of users or traffic.

Everything the tables do not say (module and server catalog, services and their SLOs, load profiles,
data-class policies, prices, weather and carbon series, cloud regions) comes from a built-in example
(`--from-example`, Melbourne by default), which the user then edits. Each row of the demand table
becomes one demand source per service of the example, with the example's mix of devices per service,
its rate per device, profile and data class. Bad input is reported as `file:line [column]: expected`.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import yaml

from microdc.examples import EXAMPLES_DIR
from microdc.model import Problem, ScenarioError, load_scenario
from microdc.model.jurisdiction import CODE_PATTERN

LAT_NAMES = ("lat", "latitude", "y", "lat_dd", "latitude_dd")
LON_NAMES = ("lon", "lng", "long", "longitude", "x", "lon_dd", "longitude_dd")
ID_NAMES = ("id", "site_id", "cell_id", "station_id", "code")
NAME_NAMES = ("name", "site_name", "title", "description")
WEIGHT_NAMES = ("devices", "users", "subscribers", "population", "weight", "count", "traffic")
SITE_FIELDS = (
    "security_tier",
    "grid_power_kw",
    "annual_cost",
    "grid_zone",
    "climate",
    "energy_price_per_kwh",
)
BBOX_PAD_DEG = 0.01


@dataclass
class Columns:
    """Which column holds what (None: detect it by its usual names, or do without)."""

    lat: str | None = None
    lon: str | None = None
    id: str | None = None
    name: str | None = None
    weight: str | None = None
    jurisdiction: str | None = None


@dataclass
class Table:
    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (line, row)


def read_table(path: Path) -> Table:
    """A CSV with a header; each row keeps its line number for error messages."""
    if not path.is_file():
        raise ScenarioError([Problem(str(path), None, "", "file not found")])
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(4096)
            fh.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(fh, dialect)
            header = [h.strip() for h in next(reader, [])]
            if not header or not any(header):
                raise ScenarioError([Problem(str(path), 1, "", "empty file; expected a header row")])
            table = Table(path, header)
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ScenarioError(
                        [
                            Problem(
                                str(path), reader.line_num, "", f"{len(row)} fields, header has {len(header)}"
                            )
                        ]
                    )
                table.rows.append((reader.line_num, {h: c.strip() for h, c in zip(header, row, strict=True)}))
    except UnicodeDecodeError as exc:
        raise ScenarioError([Problem(str(path), None, "", f"not UTF-8 text: {exc}")]) from None
    if not table.rows:
        raise ScenarioError([Problem(str(path), 2, "", "no data rows after the header")])
    return table


def pick_column(table: Table, given: str | None, usual: Sequence[str], flag: str, what: str) -> str | None:
    """The column named by a flag (it must exist), else the first with a usual name (any case)."""
    if given is not None:
        if given not in table.header:
            raise ScenarioError(
                [
                    Problem(
                        str(table.path),
                        1,
                        given,
                        f"no column {given!r} for {what} (given by {flag}); "
                        f"columns: {', '.join(table.header)}",
                    )
                ]
            )
        return given
    lower = {h.lower(): h for h in table.header}
    return next((lower[u] for u in usual if u in lower), None)


def require_column(table: Table, given: str | None, usual: Sequence[str], flag: str, what: str) -> str:
    col = pick_column(table, given, usual, flag, what)
    if col is None:
        raise ScenarioError(
            [
                Problem(
                    str(table.path),
                    1,
                    "",
                    f"no column for {what}: none of {', '.join(usual)}; name it with {flag} "
                    f"(columns: {', '.join(table.header)})",
                )
            ]
        )
    return col


def _number(table: Table, line: int, col: str, cell: str, problems: list[Problem]) -> float | None:
    try:
        value = float(cell.replace(",", ".") if cell.count(",") == 1 and "." not in cell else cell)
    except ValueError:
        problems.append(Problem(str(table.path), line, col, f"expected a number, found {cell!r}"))
        return None
    if not math.isfinite(value):
        problems.append(Problem(str(table.path), line, col, f"expected a finite number, found {cell!r}"))
        return None
    return value


def coordinates(table: Table, cols: Columns, problems: list[Problem]) -> list[tuple[int, float, float]]:
    """(line, lat, lon) of every row whose coordinates are numbers in range; the others become problems."""
    lat_c = require_column(table, cols.lat, LAT_NAMES, "--lat-col", "latitude")
    lon_c = require_column(table, cols.lon, LON_NAMES, "--lon-col", "longitude")
    out = []
    for line, row in table.rows:
        lat = _number(table, line, lat_c, row[lat_c], problems)
        lon = _number(table, line, lon_c, row[lon_c], problems)
        if lat is None or lon is None:
            continue
        bad = False
        if not -90 <= lat <= 90:
            hint = " (latitude and longitude swapped? see --lat-col/--lon-col)" if -180 <= lat <= 180 else ""
            problems.append(Problem(str(table.path), line, lat_c, f"latitude {lat:g} outside -90..90{hint}"))
            bad = True
        if not -180 <= lon <= 180:
            problems.append(Problem(str(table.path), line, lon_c, f"longitude {lon:g} outside -180..180"))
            bad = True
        if not bad:
            out.append((line, lat, lon))
    return out


def safe_id(raw: str, fallback: str) -> str:
    """A scenario id (letters, digits, _ . : -) from any text."""
    text = re.sub(r"[^A-Za-z0-9_.:-]+", "-", raw).strip("-_.:")[:100]
    return text or fallback


def _unique(ids: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for i in ids:
        seen[i] += 1
        out.append(i if seen[i] == 1 else f"{i}-{seen[i]}")
    return out


@dataclass(frozen=True)
class ServiceMix:
    """What one device group of the example looks like for one service."""

    service: str
    share: float  # of all devices at a place
    rate_per_device_rps: float
    profile: str
    data_class: str
    data_gb_per_device_day: float


def service_mix(template: Path) -> list[ServiceMix]:
    """The example's devices per service, as shares, with each service's usual rate, profile, class."""
    s = load_scenario(template)
    devices: Counter[str] = Counter()
    per: dict[str, list[Any]] = {}
    for d in s.demand:
        devices[d.service] += d.devices
        per.setdefault(d.service, []).append(d)
    total = sum(devices.values())
    mix = []
    for svc, ds in per.items():
        n = sum(d.devices for d in ds)
        mix.append(
            ServiceMix(
                service=svc,
                share=devices[svc] / total,
                rate_per_device_rps=round(sum(d.mean_rate_rps for d in ds) / n, 6),
                profile=Counter(d.profile for d in ds).most_common(1)[0][0],
                data_class=Counter(d.data_class for d in ds).most_common(1)[0][0],
                data_gb_per_device_day=round(sum(d.data_gb_per_day for d in ds) / n, 6),
            )
        )
    return mix


def _bbox(points: list[tuple[float, float]]) -> list[float]:
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    return [
        round(max(min(lats) - BBOX_PAD_DEG, -90.0), 4),
        round(max(min(lons) - BBOX_PAD_DEG, -180.0), 4),
        round(min(max(lats) + BBOX_PAD_DEG, 90.0), 4),
        round(min(max(lons) + BBOX_PAD_DEG, 180.0), 4),
    ]


def _find(nodes: list[dict[str, Any]], code: str) -> list[dict[str, Any]] | None:
    """The path of jurisdiction dicts from a root down to `code`."""
    for node in nodes:
        if node.get("code") == code:
            return [node]
        below = _find(node.get("children") or [], code)
        if below is not None:
            return [node, *below]
    return None


def place_jurisdictions(
    tree: list[dict[str, Any]], points: dict[str, list[tuple[float, float]]], infer_bbox: bool
) -> None:
    """Add the tables' jurisdiction codes the template lacks as new roots; with `infer_bbox`, give each the
    box of its rows (padded) and widen every box above it to hold them."""
    for code, pts in points.items():
        path = _find(tree, code)
        if path is None:
            node: dict[str, Any] = {"code": code, "name": code}
            tree.append(node)
            path = [node]
        if not infer_bbox:
            continue
        box = _bbox(pts)
        for node in path:
            old = node.get("bbox")
            if old is not None:  # widen a real box just enough; never shrink it
                node["bbox"] = [
                    min(old[0], box[0]),
                    min(old[1], box[1]),
                    max(old[2], box[2]),
                    max(old[3], box[3]),
                ]
            elif node is path[-1]:
                node["bbox"] = box


def _site_defaults(template: Path) -> dict[str, Any]:
    """Typical values of the example's sites for what a table of places does not say."""
    s = load_scenario(template)
    return {
        "security_tier": Counter(x.security_tier for x in s.sites).most_common(1)[0][0],
        "grid_power_kw": median(x.grid_power_kw for x in s.sites),
        "annual_cost": median(x.annual_cost for x in s.sites),
        "grid_zone": Counter(x.grid_zone for x in s.sites).most_common(1)[0][0],
        "climate": Counter(x.climate for x in s.sites).most_common(1)[0][0],
    }


@dataclass
class NewScenario:
    """What `microdc new` was asked for."""

    out_dir: Path
    sites: Path
    demand: Path
    example: str = "melbourne"
    site_cols: Columns = field(default_factory=Columns)
    demand_cols: Columns = field(default_factory=Columns)
    jurisdiction: str | None = None
    infer_bbox: bool = False
    devices_per_unit: float = 1.0
    name: str | None = None


def _jurisdictions_of(
    table: Table, col: str | None, default: str, lines: list[int], problems: list[Problem]
) -> list[str]:
    by_line = dict(table.rows)
    out = []
    for line in lines:
        code = by_line[line][col] if col else default
        if not re.match(CODE_PATTERN, code or ""):
            problems.append(
                Problem(
                    str(table.path),
                    line,
                    col or "",
                    f"expected a jurisdiction code such as AU-VIC, found {code!r}",
                )
            )
        out.append(code)
    return out


def build(req: NewScenario) -> Path:
    """Write the scenario folder; raise ScenarioError naming every bad cell. Returns scenario.yaml's path."""
    template = EXAMPLES_DIR / req.example / "scenario.yaml"
    if not template.is_file():
        known = ", ".join(sorted(p.parent.name for p in EXAMPLES_DIR.glob("*/scenario.yaml")))
        raise ScenarioError(
            [Problem(req.example, None, "--from-example", f"unknown example; known: {known}")]
        )
    data = yaml.safe_load(template.read_text(encoding="utf-8"))
    default_code = req.jurisdiction or (data.get("sites", {}).get("defaults", {}) or {}).get("jurisdiction")
    default_code = default_code or data["jurisdictions"][0]["code"]
    problems: list[Problem] = []

    sites = read_table(req.sites)
    demand = read_table(req.demand)
    site_xy = coordinates(sites, req.site_cols, problems)
    demand_xy = coordinates(demand, req.demand_cols, problems)
    s_id = pick_column(sites, req.site_cols.id, ID_NAMES, "--id-col", "site ids")
    s_name = pick_column(sites, req.site_cols.name, NAME_NAMES, "--name-col", "site names")
    s_jur = pick_column(sites, req.site_cols.jurisdiction, (), "--jurisdiction-col", "jurisdictions")
    d_id = pick_column(demand, req.demand_cols.id, ID_NAMES, "--demand-id-col", "demand ids")
    d_weight = pick_column(demand, req.demand_cols.weight, WEIGHT_NAMES, "--weight-col", "devices or users")
    d_jur = pick_column(
        demand, req.demand_cols.jurisdiction, (), "--demand-jurisdiction-col", "jurisdictions"
    )
    site_codes = _jurisdictions_of(sites, s_jur, default_code, [ln for ln, _, _ in site_xy], problems)
    demand_codes = _jurisdictions_of(demand, d_jur, default_code, [ln for ln, _, _ in demand_xy], problems)

    by_line_s = dict(sites.rows)
    by_line_d = dict(demand.rows)
    weights: list[float] = []
    for line, _, _ in demand_xy:
        if d_weight is None:
            weights.append(1.0)
            continue
        w = _number(demand, line, d_weight, by_line_d[line][d_weight], problems)
        if w is not None and w < 0:
            problems.append(Problem(str(demand.path), line, d_weight, f"expected a count >= 0, found {w:g}"))
        weights.append(w if w is not None and w >= 0 else 0.0)
    if problems:
        raise ScenarioError(problems)

    defaults = _site_defaults(template)
    site_rows = []
    ids = _unique(
        [
            safe_id(by_line_s[ln][s_id], f"site-{k:04d}") if s_id else f"site-{k:04d}"
            for k, (ln, _, _) in enumerate(site_xy, 1)
        ]
    )
    passthrough = [c for c in SITE_FIELDS if c in sites.header]
    for sid, (line, lat, lon), code in zip(ids, site_xy, site_codes, strict=True):
        row = {
            "id": sid,
            "name": by_line_s[line][s_name] if s_name else "",
            "lat": lat,
            "lon": lon,
            "jurisdiction": code,
        }
        row.update({c: by_line_s[line][c] for c in passthrough})
        site_rows.append(row)

    mix = service_mix(template)
    demand_rows = []
    place_ids = _unique(
        [
            safe_id(by_line_d[ln][d_id], f"place-{k:04d}") if d_id else f"place-{k:04d}"
            for k, (ln, _, _) in enumerate(demand_xy, 1)
        ]
    )
    for pid, (_, lat, lon), code, w in zip(place_ids, demand_xy, demand_codes, weights, strict=True):
        for m in mix:
            devices = round(w * req.devices_per_unit * m.share)
            if devices < 1:
                continue
            demand_rows.append(
                {
                    "id": f"{m.service}-{pid}"[:128],
                    "lat": lat,
                    "lon": lon,
                    "devices": devices,
                    "jurisdiction": code,
                    "data_class": m.data_class,
                    "service": m.service,
                    "rate_per_device_rps": m.rate_per_device_rps,
                    "profile": m.profile,
                    "data_gb_per_day": round(devices * m.data_gb_per_device_day, 6),
                }
            )
    if not demand_rows:
        raise ScenarioError(
            [
                Problem(
                    str(demand.path),
                    None,
                    d_weight or "",
                    "no row gives at least one device; raise --devices-per-unit",
                )
            ]
        )

    points: dict[str, list[tuple[float, float]]] = {}
    for code, (_, lat, lon) in [
        *zip(site_codes, site_xy, strict=True),
        *zip(demand_codes, demand_xy, strict=True),
    ]:
        points.setdefault(code, []).append((lat, lon))
    place_jurisdictions(data["jurisdictions"], points, req.infer_bbox)

    out = req.out_dir
    out.mkdir(parents=True, exist_ok=True)
    for item in template.parent.iterdir():  # weather, carbon, traces: everything the example reads
        if item.is_dir():
            shutil.copytree(item, out / item.name, dirs_exist_ok=True)
    _write_csv(out / "sites.csv", site_rows)
    _write_csv(out / "demand.csv", demand_rows)
    data["name"] = req.name or safe_id(out.resolve().name, "my-fleet")
    data["description"] = (
        f"Written by `microdc new` from {req.sites.name} ({len(site_rows)} sites) and {req.demand.name} "
        f"({len(demand_xy)} places, {len(demand_rows)} demand sources); everything else from the "
        f"{req.example!r} example: edit it to your fleet."
    )
    data["sites"] = {"csv": "sites.csv", "defaults": defaults}
    data["demand"] = {"csv": "demand.csv"}
    path = out / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    header = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
