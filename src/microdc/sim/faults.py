"""Fault schedules: from a faults.yaml file (validated with file, line and field) and at random from
MTBF/MTTR per component (seeded).

    faults:
      - {kind: site_outage, site: optus-10003026, time: 2023-01-01T06:00:00Z, duration: 2h}
      - {kind: uplink_cut, site: optus-10003027, time: "2023-01-01 09:30", until: "2023-01-01 12:00"}
      - {kind: break_in, site: optus-10003028, time: 2023-01-01T10:00:00Z}     # lasts to the end
    random:                     # optional: faults drawn per built site and component
      seed: 7                   # optional; default: the run's --seed
      sites: [optus-10003026]   # optional; default: every built site
      site_outage:     {mtbf_hours: 8760, mttr_hours: 4}
      uplink_cut:      {mtbf_hours: 4380, mttr_hours: 2}
      cooling_failure: {mtbf_hours: 17520, mttr_hours: 6}
      grid_outage:     {mtbf_hours: 2000, mttr_hours: 1}
      break_in:        {mtbf_hours: 87600, mttr_hours: 24}

Times are ISO 8601; a time without a zone is UTC. ``duration`` is like ``90min``, ``2h``, ``1d``;
``until`` an end time; with neither the fault lasts to the end of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microdc.model.errors import Problem, ScenarioError
from microdc.model.yaml_source import Loc, SourceMap, YamlSyntaxError, load_yaml_with_lines


class FaultKind(StrEnum):
    SITE_OUTAGE = "site_outage"  # the whole site is down
    UPLINK_CUT = "uplink_cut"  # backhaul cut: serves what it runs, takes no new work, sync backs up
    COOLING_FAILURE = "cooling_failure"  # inlet heats up: throttle at 32 °C, shut down at the limit
    GRID_OUTAGE = "grid_outage"  # on UPS until the battery is empty, then down
    BREAK_IN = "break_in"  # physical intrusion: untrusted (tier 1) until re-attested


KINDS = tuple(k.value for k in FaultKind)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    site: str
    start: pd.Timestamp
    end: pd.Timestamp | None  # None: until the end of the run
    source: str  # "faults.yaml:12" or "random"

    def active(self, t: pd.Timestamp) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


@dataclass(frozen=True)
class RandomFaults:
    rates: dict[FaultKind, tuple[float, float]]  # kind -> (mtbf_hours, mttr_hours)
    seed: int | None
    sites: tuple[str, ...] | None


@dataclass(frozen=True)
class FaultSpec:
    faults: tuple[Fault, ...]
    random: RandomFaults | None = None


def _timestamp(value: Any) -> pd.Timestamp:
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        raise ValueError("not a time")
    t = pd.Timestamp(value)
    if pd.isna(t):
        raise ValueError("not a time")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _duration(value: Any) -> pd.Timedelta:
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        raise ValueError("not a duration")
    d = pd.Timedelta(str(value))
    if pd.isna(d) or d <= pd.Timedelta(0):
        raise ValueError("not a positive duration")
    return d


def load_faults(
    path: str | Path, built_sites: list[str], scenario_sites: set[str] | None = None
) -> FaultSpec:
    """Read and validate a faults file; raise ScenarioError listing every problem with file and line."""
    p = Path(path)
    file_ = str(p)
    if not p.is_file():
        raise ScenarioError([Problem(file_, None, "", "faults file not found")])
    smap = SourceMap()
    try:
        data = load_yaml_with_lines(p, smap)
    except YamlSyntaxError as exc:
        raise ScenarioError([Problem(exc.file, exc.line, "", exc.message)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(file_, None, "", f"cannot read: {exc}")]) from None
    problems: list[Problem] = []

    def bad(loc: Loc, field: str, message: str) -> None:
        where, line = smap.lookup(loc, file_)
        problems.append(Problem(where, line, field, message))

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([Problem(file_, 1, "", "expected a mapping with 'faults' and/or 'random'")])
    for key in data:
        if key not in ("faults", "random"):
            bad((key,), str(key), "unknown section; expected 'faults' and/or 'random'")
    built = set(built_sites)
    known = scenario_sites or set()
    shown = ", ".join(built_sites[:8]) + (", ..." if len(built_sites) > 8 else "")

    def check_site(loc: Loc, field: str, site: Any) -> bool:
        if not isinstance(site, str) or not site:
            bad(loc, field, "expected a site id")
            return False
        if site not in built:
            if site in known:
                bad(
                    loc,
                    field,
                    f"site {site!r} is in the scenario but not built by the plan; built sites: {shown}",
                )
            else:
                bad(loc, field, f"unknown site {site!r}; built sites: {shown}")
            return False
        return True

    faults: list[Fault] = []
    items = data.get("faults", []) or []
    if not isinstance(items, list):
        bad(("faults",), "faults", "expected a list of faults")
        items = []
    for i, item in enumerate(items):
        loc: Loc = ("faults", i)
        if not isinstance(item, dict):
            bad(
                loc,
                f"faults.{i}",
                "expected a mapping with kind, site, time and optionally duration or until",
            )
            continue
        ok = True
        for key in item:
            if key not in ("kind", "site", "time", "duration", "until"):
                bad(
                    (*loc, key),
                    f"faults.{i}.{key}",
                    "unknown field; expected kind, site, time, duration or until",
                )
                ok = False
        kind = item.get("kind")
        if kind not in KINDS:
            bad(
                (*loc, "kind"),
                f"faults.{i}.kind",
                f"unknown fault kind {kind!r}; expected one of: {', '.join(KINDS)}",
            )
            ok = False
        ok = check_site((*loc, "site"), f"faults.{i}.site", item.get("site")) and ok
        start: pd.Timestamp | None = None
        if "time" not in item:
            bad(loc, f"faults.{i}.time", "missing required field 'time'")
            ok = False
        else:
            try:
                start = _timestamp(item["time"])
            except (ValueError, TypeError):
                bad(
                    (*loc, "time"),
                    f"faults.{i}.time",
                    f"bad time {item['time']!r}; expected ISO 8601 like 2023-01-01T06:00:00Z",
                )
                ok = False
        end: pd.Timestamp | None = None
        if "duration" in item and "until" in item:
            bad((*loc, "until"), f"faults.{i}.until", "give either duration or until, not both")
            ok = False
        elif "duration" in item:
            try:
                end = None if start is None else start + _duration(item["duration"])
            except (ValueError, TypeError):
                bad(
                    (*loc, "duration"),
                    f"faults.{i}.duration",
                    f"bad duration {item['duration']!r}; expected e.g. 90min, 2h or 1d",
                )
                ok = False
        elif "until" in item:
            try:
                end = _timestamp(item["until"])
            except (ValueError, TypeError):
                bad(
                    (*loc, "until"),
                    f"faults.{i}.until",
                    f"bad time {item['until']!r}; expected ISO 8601 like 2023-01-01T08:00:00Z",
                )
                ok = False
            if end is not None and start is not None and end <= start:
                bad((*loc, "until"), f"faults.{i}.until", "must be after time")
                ok = False
        if ok and start is not None:
            where, line = smap.lookup(loc, file_)
            faults.append(
                Fault(FaultKind(str(kind)), str(item["site"]), start, end, f"{Path(where).name}:{line}")
            )

    random: RandomFaults | None = None
    spec = data.get("random")
    if spec is not None:
        if not isinstance(spec, dict):
            bad(("random",), "random", "expected a mapping of component: {mtbf_hours, mttr_hours}")
        else:
            rates: dict[FaultKind, tuple[float, float]] = {}
            seed: int | None = None
            sites: tuple[str, ...] | None = None
            for key, value in spec.items():
                loc = ("random", key)
                if key == "seed":
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        bad(loc, "random.seed", "expected an integer >= 0")
                    else:
                        seed = value
                elif key == "sites":
                    if not isinstance(value, list):
                        bad(loc, "random.sites", "expected a list of site ids")
                    else:
                        good = [check_site((*loc, j), f"random.sites.{j}", v) for j, v in enumerate(value)]
                        if all(good):
                            sites = tuple(str(v) for v in value)
                elif key in KINDS:
                    if not isinstance(value, dict) or set(value) != {"mtbf_hours", "mttr_hours"}:
                        bad(loc, f"random.{key}", "expected {mtbf_hours: H, mttr_hours: H}")
                        continue
                    try:
                        mtbf, mttr = float(value["mtbf_hours"]), float(value["mttr_hours"])
                    except (TypeError, ValueError):
                        bad(loc, f"random.{key}", "mtbf_hours and mttr_hours must be numbers")
                        continue
                    if not (mtbf > 0 and mttr > 0 and np.isfinite(mtbf) and np.isfinite(mttr)):
                        bad(loc, f"random.{key}", "mtbf_hours and mttr_hours must be > 0")
                        continue
                    rates[FaultKind(key)] = (mtbf, mttr)
                else:
                    bad(
                        loc,
                        f"random.{key}",
                        f"unknown entry {key!r}; expected seed, sites or one of: {', '.join(KINDS)}",
                    )
            random = RandomFaults(rates, seed, sites)
    if problems:
        raise ScenarioError(problems)
    return FaultSpec(tuple(faults), random)


def draw_random_faults(
    spec: RandomFaults,
    built_sites: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    rng: np.random.Generator,
) -> list[Fault]:
    """Alternating up (Exp(MTBF)) and down (Exp(MTTR)) periods per site and component, from ``start``."""
    out: list[Fault] = []
    sites = list(spec.sites) if spec.sites is not None else built_sites
    horizon_h = (end - start) / pd.Timedelta(hours=1)
    for kind in FaultKind:  # fixed order: the draw sequence does not depend on dict order
        if kind not in spec.rates:
            continue
        mtbf, mttr = spec.rates[kind]
        for site in sites:
            t = 0.0
            while True:
                t += float(rng.exponential(mtbf))
                if t >= horizon_h:
                    break
                dur = float(rng.exponential(mttr))
                a = start + pd.Timedelta(hours=t)
                out.append(
                    Fault(kind, site, a.round("s"), (a + pd.Timedelta(hours=dur)).round("s"), "random")
                )
                t += dur
    out.sort(key=lambda f: (f.start, f.site, f.kind.value))
    return out
