"""Faults section: a timeline of what failed, what was re-placed and what was degraded.

Reads the simulator's outputs (docs/simulator.md): the fault list of `summary.json` (kind, site, start,
end, and how many workload pieces each displaced, re-placed, degraded or left unserved) gives the bars;
each record of `events.json` (time, kind, phase, site, and the pieces displaced / replaced / degraded /
unserved / restored) gives a marker and a table row. `exposure` measures how much of the one fault
schedule each alternative faced (faults and fault-hours at the sites it built, demand carried there).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from microdc.model import Scenario
from microdc.placement.plan import Plan
from microdc.report.style import Figure, axis, layout
from microdc.sim.faults import Fault

KIND_COLOURS = {
    "site_outage": "#c23b3b",
    "grid_outage": "#8c2d04",
    "cooling_failure": "#e6842a",
    "throttle": "#f0b323",
    "shutdown": "#7a0177",
    "battery_empty": "#7a0177",
    "uplink_cut": "#5470c6",
    "break_in": "#333333",
}
OUTCOME_COLOURS = {
    "re-placed": "#1b7f5b",
    "degraded": "#e6842a",
    "unserved": "#c23b3b",
    "restored": "#5470c6",
    "no effect": "#999999",
}


@dataclass(frozen=True)
class FaultSpan:
    kind: str
    site: str
    start: pd.Timestamp
    end: pd.Timestamp | None  # None: lasted to the end of the run
    displaced: int
    re_placed: int
    degraded: int
    unserved: int
    unserved_requests: float


@dataclass(frozen=True)
class FaultEvent:
    time: pd.Timestamp
    kind: str
    phase: str
    site: str
    outcome: str  # re-placed / degraded / unserved / restored / no effect
    detail: str


def _ts(x: Any) -> pd.Timestamp | None:
    if x is None or x == "":
        return None
    try:
        t = pd.Timestamp(x)
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t
    return t.round("s")


def parse_spans(summary: dict[str, Any]) -> list[FaultSpan]:
    out = []
    for f in summary.get("faults", []) or []:
        start = _ts(f.get("start"))
        if start is None:
            continue
        out.append(
            FaultSpan(
                kind=str(f.get("kind", "fault")),
                site=str(f.get("site", "?")),
                start=start,
                end=_ts(f.get("end")),
                displaced=int(f.get("displaced") or 0),
                re_placed=int(f.get("re_placed") or 0),
                degraded=int(f.get("degraded") or 0),
                unserved=int(f.get("unserved") or 0),
                unserved_requests=float(f.get("unserved_requests_while_active") or 0.0),
            )
        )
    return sorted(out, key=lambda f: (f.start, f.site))


def _where(mapping: dict[str, Any]) -> str:
    counts = Counter(str(v) for v in mapping.values())
    return ", ".join(f"{n}→{k}" if n > 1 else f"→{k}" for k, n in counts.most_common(4))


def parse_events(events: Sequence[dict[str, Any]]) -> list[FaultEvent]:
    out = []
    for e in events:
        t = _ts(e.get("time"))
        if t is None:
            continue
        displaced = list(e.get("displaced") or [])
        replaced = dict(e.get("replaced") or {})
        degraded = dict(e.get("degraded") or {})
        unserved = dict(e.get("unserved") or {})
        restored = list(e.get("restored") or [])
        parts = []
        if displaced:
            parts.append(f"{len(displaced)} piece(s) displaced")
        if replaced:
            parts.append(f"{len(replaced)} re-placed ({_where(replaced)})")
        if degraded:
            parts.append(f"{len(degraded)} degraded ({next(iter(degraded.values()))})")
        if unserved:
            parts.append(f"{len(unserved)} left unserved ({next(iter(unserved.values()))})")
        if restored:
            parts.append(f"{len(restored)} moved back home")
        outcome = (
            "unserved"
            if unserved
            else "degraded"
            if degraded
            else "re-placed"
            if replaced
            else "restored"
            if restored
            else "no effect"
        )
        out.append(
            FaultEvent(
                t,
                str(e.get("kind", "event")),
                str(e.get("phase", "")),
                str(e.get("site", "?")),
                outcome,
                "; ".join(parts) or "no workload affected",
            )
        )
    return sorted(out, key=lambda x: x.time)


def fault_timeline(
    spans: Sequence[FaultSpan],
    events: Sequence[FaultEvent],
    run_end: pd.Timestamp | None,
    title: str = "Faults and responses",
    run_start: pd.Timestamp | None = None,
) -> Figure:
    """Bars: faults while active (one row per site). Markers: what each event did to the workload."""
    data: list[dict[str, Any]] = []
    for kind in dict.fromkeys(f.kind for f in spans):
        xs: list[str | None] = []
        ys: list[str | None] = []
        texts: list[str] = []
        for f in (f for f in spans if f.kind == kind):
            end = f.end or run_end or f.start
            xs += [f.start.isoformat(), end.isoformat(), None]
            ys += [f.site, f.site, None]
            info = (
                f"{kind} at {f.site}: {f.displaced} displaced, {f.re_placed} re-placed, "
                f"{f.degraded} degraded, {f.unserved} unserved"
            )
            texts += [info, info, ""]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": kind.replace("_", " "),
                "x": xs,
                "y": ys,
                "text": texts,
                "hoverinfo": "text",
                "line": {"color": KIND_COLOURS.get(kind, "#777777"), "width": 12},
            }
        )
    for outcome in dict.fromkeys(e.outcome for e in events):
        evs = [e for e in events if e.outcome == outcome]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"event: {outcome}",
                "x": [e.time.isoformat() for e in evs],
                "y": [e.site for e in evs],
                "text": [f"{e.kind} {e.phase}: {e.detail}" for e in evs],
                "hoverinfo": "text+x",
                "marker": {
                    "color": OUTCOME_COLOURS.get(outcome, "#555"),
                    "size": 10,
                    "symbol": "diamond",
                    "line": {"color": "#fff", "width": 1},
                },
            }
        )
    rows = len({f.site for f in spans} | {e.site for e in events})
    return {
        "data": data,
        "layout": layout(
            title,
            xaxis=axis(
                "time (UTC)",
                **(
                    {"range": [run_start.isoformat(), run_end.isoformat()]}
                    if run_start is not None and run_end is not None
                    else {}
                ),
            ),
            yaxis=axis("", type="category", automargin=True),
            height=max(280, 120 + 34 * rows),
        ),
    }


def exposure(
    s: Scenario,
    plan: Plan,
    faults: Sequence[Fault],
    start: pd.Timestamp,
    end: pd.Timestamp,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """How much of one fault schedule an alternative faced: the faults at sites it built, their hours
    within the run, and the demand those sites carried (mean req/s × fault hours, primary share).

    The same schedule applies to every alternative, so these numbers compare like with like; the
    simulator's summary adds the requests actually lost while faults were active."""
    built = {b.site for b in plan.sites}
    mean_rps = {d.id: d.mean_rate_rps for d in s.demand}
    site_rps: dict[str, float] = {}
    for a in plan.assignments:
        if a.kind == "site" and a.role == "primary":
            site_rps[a.target] = site_rps.get(a.target, 0.0) + a.fraction * mean_rps.get(a.demand, 0.0)
    hours = 0.0
    demand_hours = 0.0
    by_kind: dict[str, float] = {}
    sites_hit: set[str] = set()
    count = 0
    for f in faults:
        if f.site not in built:
            continue
        t0 = max(f.start, start)
        t1 = min(f.end if f.end is not None else end, end)
        h = max((t1 - t0) / pd.Timedelta(hours=1), 0.0)
        if h <= 0:
            continue
        count += 1
        sites_hit.add(f.site)
        hours += h
        by_kind[f.kind.value] = by_kind.get(f.kind.value, 0.0) + h
        demand_hours += h * site_rps.get(f.site, 0.0)
    lost = sum(
        float(x.get("unserved_requests_while_active") or 0.0) for x in (summary or {}).get("faults", [])
    )
    return {
        "faults": count,
        "sites_hit": len(sites_hit),
        "sites_built": len(built),
        "fault_hours": round(hours, 3),
        "fault_hours_by_kind": {k: round(v, 3) for k, v in sorted(by_kind.items())},
        "demand_affected_rps_hours": round(demand_hours, 3),
        "requests_lost_while_faulted": round(lost, 1),
    }
