"""The plain-language summary at the top of the report, computed from the comparison entries."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from microdc.report.style import fmt, money, pct


@dataclass(frozen=True)
class SummaryLine:
    topic: str
    text: str


def reference(entries: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The baseline microdc is set against: cloud-only when there is one, else the first baseline."""
    others = list(entries[1:])
    return next((e for e in others if e["alternative"] == "cloud-only"), others[0] if others else None)


def _change(ours: float | None, theirs: float | None) -> str:
    """'23% less' / '5% more' / 'the same', of ours relative to theirs."""
    if ours is None or theirs is None or not math.isfinite(ours) or not math.isfinite(theirs) or theirs == 0:
        return "n/a"
    r = (ours - theirs) / abs(theirs)
    if abs(r) < 0.005:
        return "about the same as"
    return f"{100 * abs(r):.0f}% {'less' if r < 0 else 'more'} than"


def _latency_line(ours: dict[str, Any], ref: dict[str, Any]) -> SummaryLine:
    parts = []
    for svc, lat in ours["latency"].items():
        theirs = ref["latency"].get(svc, {})
        a, b = lat.get("p95_ms"), theirs.get("p95_ms")
        slo = lat.get("slo_p95_ms") or lat.get("slo_p99_ms")
        if a is None:
            piece = f"{svc}: not served by microdc"
        elif b is None:
            piece = f"{svc} {fmt(a)} ms ({ref['alternative']} does not serve it)"
        else:
            piece = f"{svc} {fmt(a)} ms vs {fmt(b)} ms"
            if b > a * 1.05:
                piece += f" ({b / a:.1f}× faster)"
            elif a > b * 1.05:
                piece += f" ({a / b:.1f}× slower)"
            else:
                piece += " (on par)"
        if slo:
            piece += f", SLO {slo:g} ms"
        parts.append(piece)
    ok_ours = None if ours.get("slo_violation_rate") is None else 1 - ours["slo_violation_rate"]
    ok_ref = None if ref.get("slo_violation_rate") is None else 1 - ref["slo_violation_rate"]
    text = (
        f"p95 response time over the run, microdc vs {ref['alternative']}: "
        + "; ".join(parts)
        + f". {pct(ok_ours)} of the requests offered to microdc's fleet were answered within their SLO "
        f"({pct(ok_ref)} for {ref['alternative']})."
    )
    return SummaryLine("Latency", text)


def _coverage_note(ref: dict[str, Any]) -> str:
    share = ref.get("unserved_planned_fraction", 0.0)
    if share > 0:
        return (
            f" Note: {ref['alternative']} serves only {pct(1 - share)} of the demand, "
            "so its figures are smaller."
        )
    return ""


def summarize(entries: Sequence[dict[str, Any]], days: float) -> list[SummaryLine]:
    if not entries:
        return []
    ours = entries[0]
    ref = reference(entries)
    cur = ours["currency"]
    lines: list[SummaryLine] = []
    built = (
        f"microdc builds {ours['sites_built']} micro data center(s) with {fmt(ours['it_kw_built'])} kW of IT"
    )
    if ref is None:
        lines.append(SummaryLine("Plan", built + "."))
        return lines
    lines.append(
        SummaryLine(
            "Plan",
            built + f" and is compared with {', '.join(e['alternative'] for e in entries[1:])}"
            f" over the same {fmt(days, 0)} simulated day(s), weather, grid carbon, load and faults.",
        )
    )
    lines.append(_latency_line(ours, ref))
    lines.append(
        SummaryLine(
            "Energy and carbon",
            (
                f"microdc uses {fmt(ours['energy_kwh'], 0)} kWh (fleet PUE {fmt(ours['pue'], 2)}), "
                f"{_change(ours['energy_kwh'], ref['energy_kwh'])} {ref['alternative']} "
                f"({fmt(ref['energy_kwh'], 0)} kWh){_transport_note(ours, ref)}, and emits "
                f"{fmt(ours['carbon_kg'], 0)} kg CO₂e, "
                f"{_change(ours['carbon_kg'], ref['carbon_kg'])} "
                f"{ref['alternative']} ({fmt(ref['carbon_kg'], 0)} kg)." + _coverage_note(ref)
            ),
        )
    )
    lines.append(
        SummaryLine(
            "Cost",
            (
                f"microdc costs {money(ours['cost_per_year'], cur)} per year, "
                f"{_change(ours['cost_per_year'], ref['cost_per_year'])} {ref['alternative']} "
                f"({money(ref['cost_per_year'], cur)}); by part: "
                + ", ".join(f"{k} {money(v, cur)}" for k, v in ours["cost_breakdown"].items() if v > 0.5)
                + "."
                + _coverage_note(ref)
            ),
        )
    )
    sov = [
        f"microdc's plan has {ours['sovereignty_violations']} sovereignty violation(s)"
        + (" in plan and simulation" if ours["sovereignty_violations"] == 0 else "")
    ]
    for e in entries[1:]:
        if e["unserved_planned_fraction"] > 0:
            sov.append(
                f"{e['alternative']} cannot legally serve {pct(e['unserved_planned_fraction'])} of the "
                "demand (its figures above cover only the demand it serves)"
            )
        if e["sovereignty_violations"]:
            sov.append(f"{e['alternative']} breaks {e['sovereignty_violations']} sovereignty rule(s)")
    lines.append(SummaryLine("Sovereignty", "; ".join(sov) + "."))
    return lines


def _transport_note(ours: dict[str, Any], ref: dict[str, Any]) -> str:
    """The network's share: carrying each alternative's traffic costs energy too (docs/fidelity.md)."""
    a, b = ours.get("transport_energy_kwh"), ref.get("transport_energy_kwh")
    if a is None or b is None:
        return ""
    return f"; carrying its traffic takes {fmt(a, 0)} kWh of network energy against {fmt(b, 0)} kWh"
