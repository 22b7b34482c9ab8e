"""How the plan depends on the device access round trip (`network.access_ms`): replan each example at
2, 5, 10, 20 and 30 ms and print the planner's p95 per service, the share of demand it can serve within
its SLO, the sites it builds and the expected annual cost.

    python tools/access_sensitivity.py [--values 2 5 10 20 30]

Plans with --allow-unserved, so demand that no target can serve within its SLO at that access round
trip is priced as unserved instead of failing the plan. Two shares of requests: "servable" has at least
one legal target (sovereignty, tier) that meets its SLO; "served" is what the plan serves (it may leave
servable demand unserved where serving costs more than the scenario's unserved penalty).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from microdc.model import Scenario, load_scenario
from microdc.placement.planner import PlannerOptions, PlanningError, plan

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "microdc" / "examples"


def with_access(s: Scenario, access_ms: float) -> Scenario:
    return s.model_copy(update={"network": s.network.model_copy(update={"access_ms": access_ms})})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", nargs="*", type=float, default=[2.0, 5.0, 10.0, 20.0, 30.0])
    ap.add_argument("--examples", nargs="*", default=["eu-sovereign", "melbourne"])
    args = ap.parse_args()
    for name in args.examples:
        base = load_scenario(EXAMPLES / name / "scenario.yaml")
        services = [v.id for v in base.services]
        print(f"\n**{name}** (scenario's own access_ms: {base.network.access_ms:g} ms)\n")
        head = " | ".join(f"p95 {v} (SLO)" for v in services)
        print(f"| access RTT | {head} | servable within SLO | served | sites | expected cost / year |")
        print("|---:|" + "---:|" * (len(services) + 4))
        rps = {d.id: d.mean_rate_rps for d in base.demand}
        total = sum(rps.values())
        for ms in args.values:
            s = with_access(base, ms)
            try:
                p, pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
            except PlanningError as exc:
                print(f"| {ms:g} ms | no plan: {exc.reasons[0]} |")
                continue
            lost = sum(u.fraction * rps[u.demand] for u in p.unserved)
            ok = pp.facility.allowed.any(axis=0)
            servable = sum(rps[d.id] for d, k in zip(s.demand, ok, strict=True) if k) / total
            cells = []
            for v in services:
                lat = p.latency[v]
                slo = lat.slo_p95_ms if lat.slo_p95_ms is not None else lat.slo_p99_ms
                got = "—" if lat.p95_ms is None else f"{lat.p95_ms:.1f}"
                cells.append(f"{got} ({slo:g})" if slo is not None else got)
            cost = p.expected.costs["total"] if p.expected else p.objective
            print(
                f"| {ms:g} ms | {' | '.join(cells)} | {servable:.1%} | {1 - lost / total:.1%} | "
                f"{len(p.sites)} | {cost:,.0f} {p.currency} |"
            )


if __name__ == "__main__":
    main()
