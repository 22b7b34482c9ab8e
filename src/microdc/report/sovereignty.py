"""Sovereignty section: where each data class from each jurisdiction was processed and stored."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from microdc.model import Scenario
from microdc.model.policies import Where
from microdc.placement.plan import Plan


@dataclass(frozen=True)
class SovereigntyRow:
    alternative: str
    data_class: str
    origin: str
    rule: str  # what the policy allows, in words
    processed_in: str  # jurisdictions with their share of the requests, largest first
    stored_in: str
    unserved: str  # share of the requests not served, or ""
    violations: int


def _where(w: Where | None) -> str:
    if w is None:
        return "same as processing"
    if isinstance(w, str):
        return {"origin": "origin only", "any": "anywhere"}.get(w, w)
    return ", ".join(w)


def _shares(totals: dict[str, float], whole: float) -> str:
    if whole <= 0 or not totals:
        return "—"
    items = sorted(totals.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / whole:.0f}%" for k, v in items)


def sovereignty_rows(s: Scenario, plan: Plan, violations: list[dict[str, Any]]) -> list[SovereigntyRow]:
    """One row per (data class, origin jurisdiction) with demand; shares are of mean requests."""
    jur = {x.id: x.jurisdiction for x in s.sites} | {r.id: r.jurisdiction for r in s.cloud_regions}
    demand = {d.id: d for d in s.demand}
    asked: dict[tuple[str, str], float] = defaultdict(float)
    for src in s.demand:
        asked[(src.data_class, src.jurisdiction)] += src.mean_rate_rps
    processed: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for a in plan.primary():
        d = demand.get(a.demand)
        if d is not None and a.target in jur:
            processed[(d.data_class, d.jurisdiction)][jur[a.target]] += d.mean_rate_rps * a.fraction
    unserved: dict[tuple[str, str], float] = defaultdict(float)
    for u in plan.unserved:
        d = demand.get(u.demand)
        if d is not None:
            unserved[(d.data_class, d.jurisdiction)] += d.mean_rate_rps * u.fraction
    bad: dict[tuple[str, str], int] = defaultdict(int)
    for v in violations:
        if "data_class" in v:
            bad[(v["data_class"], v["origin"])] += 1
    rows = []
    for key in sorted(asked):
        cls, origin = key
        pol = s.policy_for(cls)
        where = processed.get(key, {})
        stored = dict(where)
        rows.append(
            SovereigntyRow(
                alternative=plan.alternative,
                data_class=cls,
                origin=origin,
                rule=f"process: {_where(pol.process_in)}; store: {_where(pol.store_in)}"
                + ("; aggregates may leave" if pol.aggregates_may_leave else ""),
                processed_in=_shares(where, asked[key]),
                stored_in=_shares(stored, asked[key]),
                unserved=f"{100 * unserved[key] / asked[key]:.0f}%" if unserved.get(key, 0.0) > 0 else "",
                violations=bad.get(key, 0),
            )
        )
    return rows


def unserved_reasons(plan: Plan) -> list[str]:
    """Distinct reasons an alternative leaves demand unserved, with how many sources each covers."""
    counts: dict[str, int] = defaultdict(int)
    for u in plan.unserved:
        for r in u.reasons:
            counts[r] += 1
    return [
        f"{r} ({n} demand source{'s' if n != 1 else ''})"
        for r, n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
