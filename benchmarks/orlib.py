"""Solve one OR-Library capacitated warehouse location instance and print one JSON line.

    python benchmarks/orlib.py cap41
    python benchmarks/orlib.py capa --capacity 8000 --time-limit 60
    python benchmarks/orlib.py capa --capacity 14000 --plain      # HiGHS alone, textbook formulation
    python benchmarks/orlib.py capa --capacity 14000 --plain-weak --time-limit 600   # ... weak one
    python benchmarks/orlib.py cap131 --uncapacitated

INSTANCE is a name from benchmarks/data/orlib-cap/instances (cap41 … cap134, capa) or a path.
Output keys: instance, capacity, objective, lower_bound, gap, seconds, cpu_seconds, open_facilities,
n_open, status, method, nodes, and optimum / rel_error when capopt.txt knows the optimum. ``seconds``
is the wall-clock solve time (model build + solve, not reading the file); ``cpu_seconds`` the CPU time
of the process (all threads), which is less sensitive to other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "orlib-cap"


def resolve_instance(name: str, data: Path = DATA) -> Path:
    p = Path(name)
    if p.suffix == ".txt" and p.exists():
        return p
    cand = data / "instances" / f"{name}.txt"
    if cand.exists():
        return cand
    raise SystemExit(f"unknown instance {name!r}: neither a file nor {cand}")


def run(
    instance: str,
    *,
    capacity: float | None = None,
    uncapacitated: bool = False,
    time_limit: float | None = None,
    threads: int | None = None,
    plain: bool = False,
    plain_weak: bool = False,
    mip_rel_gap: float = 1e-9,
    data: Path = DATA,
) -> dict[str, object]:
    """Solve and return the JSON record (also used by run_orlib_all.py)."""
    from microdc.placement.milp import solve_milp
    from microdc.placement.orlib import read_orlib_cap, read_orlib_optima

    path = resolve_instance(instance, data)
    inst = read_orlib_cap(path)
    problem = inst.to_problem(capacity, uncapacitated=uncapacitated)
    t0 = time.perf_counter()
    c0 = time.process_time()
    sol = solve_milp(
        problem,
        time_limit_s=time_limit,
        threads=threads,
        mip_rel_gap=mip_rel_gap,
        formulation="weak" if plain_weak else "textbook" if plain else "strong",
    )
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    rec: dict[str, object] = {
        "instance": inst.name,
        "capacity": capacity,
        "uncapacitated": uncapacitated,
        "objective": sol.objective,
        "lower_bound": sol.lower_bound,
        "gap": sol.gap,
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "open_facilities": sol.open_facilities,
        "n_open": len(sol.open_facilities),
        "status": sol.status,
        "method": sol.method,
        "time_limit": time_limit,
        "nodes": sol.nodes,
    }
    opt_file = data / "capopt.txt"
    if not uncapacitated and opt_file.exists():
        optima = read_orlib_optima(opt_file)
        key = (inst.name, None if capacity is None else int(capacity))
        if key in optima:
            rec["optimum"] = optima[key]
            rec["rel_error"] = abs(sol.objective - optima[key]) / abs(optima[key])
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instance")
    ap.add_argument("--capacity", type=float, default=None, help="replaces the word 'capacity' (capa/b/c)")
    ap.add_argument("--uncapacitated", action="store_true", help="ignore all capacities")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--plain", action="store_true", help="HiGHS alone on the textbook formulation (with x <= y rows)"
    )
    ap.add_argument(
        "--plain-weak", action="store_true", help="HiGHS alone on the weak (aggregated capacity) formulation"
    )
    ap.add_argument("--mip-rel-gap", type=float, default=1e-9)
    ap.add_argument("--data", type=Path, default=DATA, help="directory with instances/ and capopt.txt")
    a = ap.parse_args(argv)
    cap = a.capacity
    if cap is not None and float(cap).is_integer():
        cap = int(cap)
    rec = run(
        a.instance,
        capacity=cap,
        uncapacitated=a.uncapacitated,
        time_limit=a.time_limit,
        threads=a.threads,
        plain=a.plain,
        plain_weak=a.plain_weak,
        mip_rel_gap=a.mip_rel_gap,
        data=a.data,
    )
    sys.stdout.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
