"""Time the plan's expected year (placement.expected): the hourly evaluation every plan now carries.

    python benchmarks/expected_year.py [--repeat 5]

Plans each built-in example once, then evaluates its expected year ``--repeat`` times with the weather
already loaded (as the planner does) and prints the mean wall time per evaluation.
"""

from __future__ import annotations

import argparse
import time

from microdc.examples import resolve_scenario
from microdc.model import load_scenario
from microdc.placement.expected import expected_year
from microdc.placement.planner import plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for name in ("eu-sovereign", "melbourne"):
        s = load_scenario(resolve_scenario(name))
        p, pp, _ = plan(s)
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            expected_year(s, p, pp.series)
        dt = (time.perf_counter() - t0) / args.repeat
        n = len(p.primary())
        print(f"{name}: {len(p.sites)} built sites, {n} primary assignments: {dt:.3f} s per expected year")


if __name__ == "__main__":
    main()
