"""What a report is made of: the scenario, and for each alternative its plan and simulated outputs.

The same structure is written to and read back from a run directory:

    DIR/plan.json                       microdc's plan
    DIR/comparison.json                 one entry per alternative (see `comparison.py`)
    DIR/<alternative>/plan.json         that alternative's plan
    DIR/<alternative>/timeseries.parquet, service_latency.parquet, events.json, summary.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Plan, read_plan

CLOUD_PREFIX = "cloud:"


@dataclass
class AlternativeRun:
    """One alternative (microdc's plan or a baseline) and what the simulator made of it."""

    name: str
    plan: Plan
    timeseries: pd.DataFrame
    latency: pd.DataFrame
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def site_rows(self) -> pd.DataFrame:
        """Timeseries rows of micro data centers only (not cloud regions)."""
        return self.timeseries[~self.timeseries["site"].astype(str).str.startswith(CLOUD_PREFIX)]


@dataclass
class RunResult:
    """Everything `microdc run` produced; `alternatives[0]` is microdc's own plan."""

    scenario: Scenario
    alternatives: list[AlternativeRun]
    comparison: list[dict[str, Any]]
    days: float
    step_minutes: float
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    def alternative(self, name: str) -> AlternativeRun:
        return next(a for a in self.alternatives if a.name == name)

    @property
    def ours(self) -> AlternativeRun:
        return self.alternatives[0]


def write_alternative(alt: AlternativeRun, directory: Path) -> None:
    """Write one alternative's files under `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    alt.plan.write(directory / "plan.json")
    alt.timeseries.to_parquet(directory / "timeseries.parquet", index=False)
    alt.latency.to_parquet(directory / "service_latency.parquet", index=False)
    (directory / "events.json").write_text(json.dumps(alt.events, indent=2, default=str), encoding="utf-8")
    (directory / "summary.json").write_text(json.dumps(alt.summary, indent=2, default=str), encoding="utf-8")


def read_alternative(directory: Path, name: str | None = None) -> AlternativeRun:
    """Read what `write_alternative` (or the simulator) wrote in `directory`."""
    plan = read_plan(directory / "plan.json")

    def _json(fname: str, default: Any) -> Any:
        p = directory / fname
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else default

    events = _json("events.json", [])
    if isinstance(events, dict):  # tolerate {"events": [...]}
        events = events.get("events", [])
    return AlternativeRun(
        name=name or plan.alternative,
        plan=plan,
        timeseries=pd.read_parquet(directory / "timeseries.parquet"),
        latency=pd.read_parquet(directory / "service_latency.parquet"),
        events=list(events),
        summary=dict(_json("summary.json", {})),
    )


def load_run(directory: Path, scenario: Scenario) -> RunResult:
    """Read a run directory back (to re-render its report without simulating again)."""
    comparison = json.loads((directory / "comparison.json").read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = comparison["alternatives"]
    alts = [read_alternative(directory / e["alternative"], e["alternative"]) for e in entries]
    return RunResult(
        scenario=scenario,
        alternatives=alts,
        comparison=entries,
        days=float(comparison.get("days", 0.0)),
        step_minutes=float(comparison.get("step_minutes", 0.0)),
        seconds=dict(comparison.get("seconds", {})),
    )
