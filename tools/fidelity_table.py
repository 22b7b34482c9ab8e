"""Plan = twin when nothing fails, on the built-in examples: the table of docs/fidelity.md.

    python tools/fidelity_table.py [--step 3600] [--out docs/fidelity-table.md]

Plans each example (HiGHS, as `microdc plan`), runs the twin over the planning year with no faults,
no demand noise and no Poisson sampling noise, and prints, per example, the plan's expected year beside
the twin's figures (energy by part, PUE, every cost line, p95 per service against the planner's
prediction), with the violations of the 1 % acceptance rule (none expected).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from microdc.model import load_scenario
from microdc.placement.planner import plan
from microdc.sim.fidelity import compare, markdown, run_quiet_year, violations

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "microdc" / "examples"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--step", type=int, default=3600, help="twin step, seconds (default 3600)")
    ap.add_argument("--examples", nargs="*", default=["eu-sovereign", "melbourne"])
    ap.add_argument("--out", type=Path, default=None, help="also write the Markdown here")
    args = ap.parse_args()
    parts: list[str] = []
    for name in args.examples:
        s = load_scenario(EXAMPLES / name / "scenario.yaml")
        t0 = time.perf_counter()
        p, _, _ = plan(s)
        t1 = time.perf_counter()
        summary = run_quiet_year(s, p, step_s=args.step)
        t2 = time.perf_counter()
        rows = compare(p, summary)
        bad = violations(rows)
        parts.append(
            markdown(f"{name}: plan {t1 - t0:.1f} s, twin year at {args.step} s steps {t2 - t1:.1f} s", rows)
        )
        parts.append(
            "\nAcceptance (1 %, twin p95 ≤ planner p95): "
            + ("met" if not bad else "NOT met: " + "; ".join(bad))
            + f"\n\nMILP objective {p.objective:,.2f} vs the plan's expected year "
            f"{p.expected.costs['total'] if p.expected else float('nan'):,.2f} "
            "(the solver's linear energy model against the hourly evaluation)\n"
        )
        print("\n\n".join(parts[-2:]), flush=True)
    text = "\n\n".join(parts)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
