"""Wall time of `microdc run melbourne` (the main job, end to end, as a user runs it).

    python benchmarks/run_melbourne.py                      # the defaults: 14 days at 15-minute steps
    python benchmarks/run_melbourne.py --days 365 --step 1h # a full year at hourly steps
    python benchmarks/run_melbourne.py --repeat 3

Each repeat runs the real command in a fresh process (imports included) and reads the per-stage
seconds that `microdc run` records in comparison.json. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(out: Path, days: str | None, step: str | None, extra: list[str]) -> dict[str, float]:
    cmd = [sys.executable, "-m", "microdc.cli.main", "run", "melbourne", "-o", str(out)]
    if days is not None:
        cmd += ["--days", days]
    if step is not None:
        cmd += ["--step", step]
    t0 = time.perf_counter()
    proc = subprocess.run([*cmd, *extra], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"microdc run failed with exit code {proc.returncode}")
    doc = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    stages = {k: float(v) for k, v in doc["seconds"].items()}
    stages["wall"] = wall
    stages["report_mb"] = (out / "report.html").stat().st_size / 1e6
    stages["days"] = float(doc["days"])
    stages["step_min"] = float(doc["step_minutes"])
    stages["alternatives"] = float(len(doc["alternatives"]))
    return stages


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", default=None, help="--days passed to microdc run (default: its own)")
    ap.add_argument("--step", default=None, help="--step passed to microdc run (default: its own)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("extra", nargs="*", help="more arguments for microdc run (after --)")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            runs.append(one_run(Path(tmp) / f"run{i}", args.days, args.step, args.extra))
            print(f"run {i + 1}/{args.repeat}: {runs[-1]['wall']:.1f} s", file=sys.stderr)
    keys = ("planning", "simulation", "report", "total", "wall")
    med = {k: statistics.median(r.get(k, float("nan")) for r in runs) for k in keys}
    r0 = runs[0]
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"`microdc run melbourne`: {r0['days']:g} days at {r0['step_min']:g}-minute steps, "
        f"{r0['alternatives']:g} alternatives, report {r0['report_mb']:.1f} MB; "
        f"median of {len(runs)} run(s)\n"
    )
    print("| stage | seconds |")
    print("| --- | ---: |")
    for k in keys:
        label = {"total": "total (in process)", "wall": "wall time (process, imports included)"}.get(k, k)
        print(f"| {label} | {med[k]:.1f} |")


if __name__ == "__main__":
    main()
