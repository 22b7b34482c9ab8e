"""One entry point from the planner to the facility-location solvers, with a progress adapter."""

from __future__ import annotations

from collections.abc import Callable

from microdc.placement.facility import FacilityProblem, Solution
from microdc.placement.milp import ProgressEvent, solve_milp


def solve_facility(
    problem: FacilityProblem,
    *,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    progress: Callable[[str, float, float, float], None] | None = None,
) -> Solution:
    def hook(e: ProgressEvent) -> None:
        if progress is not None:
            progress(e.phase, e.seconds, e.objective, e.bound)

    return solve_milp(problem, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, threads=threads, progress=hook)
