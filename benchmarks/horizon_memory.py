"""Calibrate the per-site horizon MILP's memory estimate (placement.horizon_milp.BYTES_PER_NONZERO).

    PYTHONPATH=src /usr/bin/time -v python benchmarks/horizon_memory.py --facilities 200 --customers 1000

Stacks `--periods` random facility problems (random costs, so no two demand rows merge; all pairs
allowed, three resources, no backup) the way `build_horizon_model` stacks the periods, hands the model
to HiGHS and runs it for `--time-limit` seconds. It prints the estimated and the real nonzeros and the
peak RSS before the model was built and at the end: their difference over the estimated nonzeros is the
bytes per nonzero the guard uses.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp

from microdc.placement import milp
from microdc.placement.facility import FacilityProblem
from microdc.placement.horizon_milp import per_site_model_size


def _peak_bytes() -> float:
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024.0  # Linux: kB


def problem(n_f: int, n_c: int, rng: np.random.Generator) -> FacilityProblem:
    usage = rng.uniform(1, 10, (n_c, 3))
    cap = np.tile(usage.sum(axis=0) / (0.3 * n_f), (n_f, 1))  # about a third of the sites needed
    return FacilityProblem.build(
        fixed_cost=rng.uniform(50, 150, n_f),
        capacity=cap,
        usage=usage,
        assign_cost=rng.uniform(0, 10, (n_f, n_c)),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--facilities", type=int, default=200)
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--periods", type=int, default=5)
    ap.add_argument("--time-limit", type=float, default=30.0)
    a = ap.parse_args()
    rng = np.random.default_rng(7)
    probs = [problem(a.facilities, a.customers, rng) for _ in range(a.periods)]
    est = per_site_model_size(probs)
    before = _peak_bytes()
    t0 = time.perf_counter()
    models = [milp.build_model(p) for p in probs]
    matrix = sp.csr_array(sp.block_diag([m.matrix for m in models], format="csr"))
    cat = np.concatenate
    integrality = np.zeros(matrix.shape[1], np.int32)
    off = 0
    for m in models:
        integrality[off + m.y0 : off + m.y0 + m.facilities.shape[0]] = 1
        off += m.num_col
    h = milp._new_highs(False, 1, a.time_limit)
    status = milp.pass_model(
        h,
        matrix,
        cat([m.col_cost for m in models]),
        cat([m.col_lower for m in models]),
        cat([m.col_upper for m in models]),
        cat([m.row_lower for m in models]),
        cat([m.row_upper for m in models]),
        integrality,
    )
    milp._check(status, "passModel")
    milp._run(h, "run")
    after = _peak_bytes()
    print(
        f"{a.periods} periods of {a.facilities} x {a.customers}: estimate {est.columns:,} columns, "
        f"{est.nonzeros:,} nonzeros; real {matrix.shape[1]:,} columns, {matrix.nnz:,} nonzeros; "
        f"HiGHS {h.getModelStatus()} after {time.perf_counter() - t0:.1f} s; peak RSS {before / 1e6:,.0f} MB "
        f"before, {after / 1e6:,.0f} MB after: {(after - before) / est.nonzeros:.0f} bytes per estimated "
        f"nonzero"
    )


if __name__ == "__main__":
    main()
