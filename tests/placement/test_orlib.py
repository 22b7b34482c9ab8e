"""OR-Library reader and the published optima of small instances (the solver's external yardstick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microdc.placement.milp import solve_milp
from microdc.placement.orlib import OrlibFormatError, read_orlib_cap, read_orlib_optima

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "benchmarks" / "data" / "orlib-cap"
INST = DATA / "instances"


@pytest.fixture(scope="module")
def optima() -> dict[tuple[str, int | None], float]:
    return read_orlib_optima(DATA / "capopt.txt")


def test_read_cap41_shape_and_values() -> None:
    inst = read_orlib_cap(INST / "cap41.txt")
    assert inst.name == "cap41"
    assert (inst.n_facilities, inst.n_customers) == (16, 50)
    assert inst.capacity.shape == (16,) and np.all(inst.capacity == 5000)
    assert inst.fixed_cost[0] == 7500 and inst.fixed_cost[10] == 0  # the 11th warehouse is free
    assert inst.demand[:3].tolist() == [146, 87, 672]
    assert inst.cost.shape == (16, 50)
    # First customer's cost line wraps over three lines in the file.
    assert inst.cost[0, 0] == pytest.approx(6739.725)
    assert inst.cost[15, 0] == pytest.approx(6051.7)
    assert inst.cost[0, 1] == pytest.approx(3204.8625)
    assert not inst.symbolic_capacity


def test_capa_needs_a_capacity() -> None:
    inst = read_orlib_cap(INST / "capa.txt")
    assert inst.symbolic_capacity and (inst.n_facilities, inst.n_customers) == (100, 1000)
    with pytest.raises(ValueError, match="capacity"):
        inst.to_problem()
    p = inst.to_problem(8000)
    assert np.all(p.capacity == 8000)
    assert inst.to_problem(uncapacitated=True).capacity[0, 0] == np.inf
    with pytest.raises(ValueError, match="numeric capacities"):
        read_orlib_cap(INST / "cap41.txt").to_problem(8000)


def test_optima_file(optima: dict[tuple[str, int | None], float]) -> None:
    assert optima[("cap41", None)] == pytest.approx(1040444.375)
    assert optima[("capa", 8000)] == pytest.approx(19240822.449)
    assert optima[("capa", 14000)] == pytest.approx(17160439.012)
    assert optima[("capc", 7250)] == pytest.approx(11505767.394)
    assert sum(1 for k in optima if k[1] is None) == 37


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("2 2\n10 5\n10 x5\n", 3, "fixed cost of facility 2"),
        ("2 2\n10 5\n10 5\n3\n1 2\n4\n1\n", 7, "file ends early"),
        ("2 1\n10 5\n10 5\n3\n1 2 9\n", 5, "unexpected extra data"),
        ("2.5 1\n", 1, "positive integer"),
        ("1 1\n-3 5\n1\n1\n", 2, ">= 0"),
    ],
)
def test_malformed_file_names_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(OrlibFormatError) as err:
        read_orlib_cap(f)
    msg = str(err.value)
    assert msg.startswith(f"{f}:{line}:"), msg
    assert what in msg


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OrlibFormatError, match="cannot read"):
        read_orlib_cap(tmp_path / "nope.txt")


@pytest.mark.parametrize("name", ["cap41", "cap71", "cap101"])
def test_small_instances_reach_published_optimum(
    name: str, optima: dict[tuple[str, int | None], float]
) -> None:
    sol = solve_milp(read_orlib_cap(INST / f"{name}.txt").to_problem())
    opt = optima[(name, None)]
    assert sol.status == "optimal"
    assert abs(sol.objective - opt) / opt < 1e-6
    assert sol.lower_bound <= sol.objective + 1e-6
    assert sol.gap <= 1e-8


def test_lagrangian_pipeline_on_cap71(optima: dict[tuple[str, int | None], float]) -> None:
    """Force the heuristic + fixing + restricted-MILP path on a small instance."""
    sol = solve_milp(read_orlib_cap(INST / "cap71.txt").to_problem(), heuristic=True)
    assert sol.status == "optimal"
    assert abs(sol.objective - optima[("cap71", None)]) / optima[("cap71", None)] < 1e-6


def test_uncapacitated_formulations_agree() -> None:
    p = read_orlib_cap(INST / "cap41.txt").to_problem(uncapacitated=True)
    a = solve_milp(p)
    for form in ("textbook", "weak"):
        b = solve_milp(p, formulation=form)
        assert a.status == b.status == "optimal"
        assert a.objective == pytest.approx(b.objective, rel=1e-9)


def test_benchmark_cli_prints_one_json_line() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "orlib.py"), "cap41"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    rec = json.loads(lines[0])
    for key in ("instance", "objective", "lower_bound", "gap", "seconds", "open_facilities", "optimum"):
        assert key in rec
    assert rec["rel_error"] < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("cap", [14000, 8000])
def test_capa_optimum(cap: int, optima: dict[tuple[str, int | None], float]) -> None:
    sol = solve_milp(read_orlib_cap(INST / "capa.txt").to_problem(cap))
    assert sol.status == "optimal"
    assert abs(sol.objective - optima[("capa", cap)]) / optima[("capa", cap)] < 1e-6
