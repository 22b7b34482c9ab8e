"""Reader for Beasley's OR-Library capacitated warehouse location files (cap41…cap134, capa/b/c).

They are the standard public test set for the fleet planner's core solver: if the planner reproduces
the published optima we know the MILP and the Lagrangian bound are right.

Format (whitespace separated, numbers may wrap over lines)::

    m n
    capacity_1 fixed_1          (m lines; capa/b/c have the literal word ``capacity`` here)
    ...
    demand_1                     (then for each of the n customers)
    cost_1_1 ... cost_1_m       (cost of serving ALL of the customer's demand from each facility)

Errors name the file and line (``OrlibFormatError``, a ValueError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from microdc.placement.facility import FacilityProblem


class OrlibFormatError(ValueError):
    """A malformed OR-Library file; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class OrlibInstance:
    """One capacitated warehouse location instance as read from disk (m facilities, n customers)."""

    name: str
    capacity: NDArray[np.float64]  # (m,), NaN where the file says the literal word "capacity"
    fixed_cost: NDArray[np.float64]  # (m,)
    demand: NDArray[np.float64]  # (n,)
    cost: NDArray[np.float64]  # (m, n): cost of serving all of customer j's demand from facility i

    @property
    def symbolic_capacity(self) -> bool:
        """True for capa/capb/capc, whose capacity must be supplied (the file says ``capacity``)."""
        return bool(np.isnan(self.capacity).any())

    @property
    def n_facilities(self) -> int:
        return int(self.fixed_cost.shape[0])

    @property
    def n_customers(self) -> int:
        return int(self.demand.shape[0])

    def to_problem(self, capacity: float | None = None, *, uncapacitated: bool = False) -> FacilityProblem:
        """The multi-source CFLP: usage = demand, assign_cost = cost (already for the whole demand).

        ``capacity`` replaces the word ``capacity`` of capa/b/c (it is an error for numeric files, so a
        typo cannot silently change a published instance); ``uncapacitated`` ignores capacities.
        """
        if uncapacitated:
            cap = np.full(self.n_facilities, np.inf)
        elif self.symbolic_capacity:
            if capacity is None:
                raise ValueError(f"{self.name} has symbolic capacities: pass capacity= (e.g. 8000)")
            if not capacity > 0:
                raise ValueError(f"capacity must be > 0, got {capacity}")
            cap = np.where(np.isnan(self.capacity), float(capacity), self.capacity)
        else:
            if capacity is not None:
                raise ValueError(f"{self.name} has numeric capacities; capacity= only applies to capa/b/c")
            cap = self.capacity
        return FacilityProblem.build(
            fixed_cost=self.fixed_cost,
            capacity=cap,
            usage=self.demand,
            assign_cost=self.cost,
        )


def _tokens(text: str) -> tuple[list[str], list[int]]:
    toks: list[str] = []
    lines: list[int] = []
    for i, line in enumerate(text.splitlines(), start=1):
        for t in line.split():
            toks.append(t)
            lines.append(i)
    return toks, lines


def read_orlib_cap(path: str | Path) -> OrlibInstance:
    """Read one OR-Library capacitated warehouse location file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise OrlibFormatError(f"{path}: cannot read file ({exc.strerror})") from exc
    toks, lines = _tokens(text)
    pos = 0
    last_line = len(text.splitlines())

    def take(what: str, *, symbolic_ok: bool = False, integer: bool = False) -> float:
        nonlocal pos
        if pos >= len(toks):
            raise OrlibFormatError(f"{path}:{last_line}: file ends early, expected {what}")
        tok, ln = toks[pos], lines[pos]
        pos += 1
        if symbolic_ok and tok.lower() == "capacity":
            return float("nan")
        try:
            val = float(tok)
        except ValueError:
            raise OrlibFormatError(f"{path}:{ln}: expected {what}, found {tok!r}") from None
        if not np.isfinite(val):
            raise OrlibFormatError(f"{path}:{ln}: {what} must be finite, found {tok!r}")
        if integer and (val != int(val) or val <= 0):
            raise OrlibFormatError(f"{path}:{ln}: {what} must be a positive integer, found {tok!r}")
        if val < 0:
            raise OrlibFormatError(f"{path}:{ln}: {what} must be >= 0, found {tok!r}")
        return val

    m = int(take("the number of facilities m", integer=True))
    n = int(take("the number of customers n", integer=True))
    capacity = np.empty(m)
    fixed = np.empty(m)
    for i in range(m):
        capacity[i] = take(f"the capacity of facility {i + 1}", symbolic_ok=True)
        fixed[i] = take(f"the fixed cost of facility {i + 1}")
    demand = np.empty(n)
    cost = np.empty((m, n))
    for j in range(n):
        demand[j] = take(f"the demand of customer {j + 1}")
        for i in range(m):
            cost[i, j] = take(f"cost {i + 1} of {m} for customer {j + 1}")
    if pos < len(toks):
        raise OrlibFormatError(
            f"{path}:{lines[pos]}: unexpected extra data {toks[pos]!r} after {m} facilities and {n} customers"
        )
    return OrlibInstance(name=path.stem, capacity=capacity, fixed_cost=fixed, demand=demand, cost=cost)


_OPT_LINE = re.compile(r"^\s*(?P<name>cap\w+)?\s+(?P<value>[0-9.]+)\s*(?:\(capacity\s+(?P<cap>\d+)\))?\s*$")


def read_orlib_optima(path: str | Path) -> dict[tuple[str, int | None], float]:
    """Published optima from ``capopt.txt``: key (instance, capacity) with capacity None for numeric files."""
    path = Path(path)
    out: dict[tuple[str, int | None], float] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        mt = _OPT_LINE.match(line)
        if not mt:
            continue
        name = mt.group("name") or current
        if name is None:
            continue
        current = name
        cap = mt.group("cap")
        out[(name, None if cap is None else int(cap))] = float(mt.group("value"))
    return out
