"""What a sweep varies: `--vary PATH=VALUES` parsed, checked against the scenario, and combined into points.

A PATH is dotted into the scenario as written in its YAML: mapping keys by name, list entries by their
``id`` (``services.ar-guidance.slo.p95_ms``) or by index, ``*`` for every entry of a list
(``sites.*.grid_power_kw``). ``demand.scale`` is a multiplier on every demand source's request rate.
VALUES is ``a,b,c`` (numbers or words) or ``lo:hi:n`` (n evenly spaced numbers from lo to hi).

Points are the full grid of every parameter's values, or a seeded random sample of K grid points
(``--sample K``) without repeats. Each point has a stable id (a hash of its values), so a resumed
sweep recognises the points it has already run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from microdc.model import Scenario
from microdc.model.scenario import cross_reference_problems

Value = float | int | str | bool
DEMAND_SCALE = "demand.scale"
MAX_RANGE_POINTS = 10_000


class SweepParamError(ValueError):
    """A --vary parameter or value the scenario cannot take; the message names the parameter."""


@dataclass(frozen=True)
class Param:
    path: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Point:
    index: int  # position in the full grid (stable whatever the sample)
    values: tuple[tuple[str, Value], ...]  # (path, value) in --vary order

    @property
    def id(self) -> str:
        text = json.dumps([[p, v] for p, v in self.values], sort_keys=False, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def as_dict(self) -> dict[str, Value]:
        return dict(self.values)


def _scalar(text: str) -> Value:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        x = float(t)
    except ValueError:
        return t
    return x


def parse_vary(text: str) -> Param:
    """`PATH=a,b,c` or `PATH=lo:hi:n` → Param; a malformed one raises SweepParamError saying why."""
    if "=" not in text:
        raise SweepParamError(
            f"--vary {text!r}: expected PATH=VALUES, e.g. economics.carbon_price_per_tonne=0,50"
        )
    path, _, raw = text.partition("=")
    path = path.strip()
    if not path or any(not part for part in path.split(".")):
        raise SweepParamError(
            f"--vary {text!r}: empty parameter path; expected a dotted path like demand.scale"
        )
    raw = raw.strip()
    if not raw:
        raise SweepParamError(f"--vary {path}: no values; expected a,b,c or lo:hi:n")
    if ":" in raw and "," not in raw:
        bits = raw.split(":")
        if len(bits) != 3:
            raise SweepParamError(f"--vary {path}={raw}: a range is lo:hi:n (e.g. 0.5:2:7)")
        try:
            lo, hi = float(bits[0]), float(bits[1])
            n = int(bits[2])
        except ValueError:
            raise SweepParamError(
                f"--vary {path}={raw}: a range is lo:hi:n with numbers lo, hi and a whole count n"
            ) from None
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SweepParamError(f"--vary {path}={raw}: lo and hi must be finite numbers")
        if not 1 <= n <= MAX_RANGE_POINTS:
            raise SweepParamError(f"--vary {path}={raw}: n must lie in 1..{MAX_RANGE_POINTS}, not {n}")
        if n == 1:
            return Param(path, (lo,))
        step = (hi - lo) / (n - 1)
        return Param(path, tuple(round(lo + i * step, 12) for i in range(n)))
    items = [x for x in raw.split(",")]
    if any(not x.strip() for x in items):
        raise SweepParamError(f"--vary {path}={raw}: an empty value in the list; expected a,b,c")
    values = tuple(_scalar(x) for x in items)
    if len(set(map(repr, values))) != len(values):
        raise SweepParamError(f"--vary {path}={raw}: a value appears twice")
    return Param(path, values)


def _describe_list(node: list[Any]) -> str:
    ids = [str(x.get("id")) for x in node if isinstance(x, dict) and "id" in x]
    shown = ", ".join(ids[:8]) + (f" … ({len(ids)} in all)" if len(ids) > 8 else "")
    return (
        f"an id ({shown}), an index 0..{len(node) - 1} or *" if ids else f"an index 0..{len(node) - 1} or *"
    )


def _set(node: Any, parts: list[str], value: Value, path: str, done: list[str]) -> None:
    """Set `value` at `parts` below `node` (in place); `done` is the part of the path walked so far."""
    key, rest = parts[0], parts[1:]
    where = ".".join(done) or "the scenario"
    if isinstance(node, dict):
        if key not in node:
            known = ", ".join(sorted(map(str, node))) or "nothing"
            raise SweepParamError(f"--vary {path}: {where} has no field {key!r} (it has: {known})")
        if rest:
            _set(node[key], rest, value, path, [*done, key])
        else:
            if isinstance(node[key], dict | list):
                raise SweepParamError(
                    f"--vary {path}: {'.'.join([*done, key])} is a section, not a value; name a field in it"
                )
            node[key] = value
        return
    if isinstance(node, list):
        if key == "*":
            targets = list(range(len(node)))
        else:
            targets = [i for i, x in enumerate(node) if isinstance(x, dict) and x.get("id") == key]
            if not targets and key.isdigit() and int(key) < len(node):
                targets = [int(key)]
            if not targets:
                raise SweepParamError(
                    f"--vary {path}: {where} has no entry {key!r}; expected {_describe_list(node)}"
                )
        for i in targets:
            if rest:
                _set(node[i], rest, value, path, [*done, key])
            else:
                raise SweepParamError(f"--vary {path}: {where}.{key} is a list entry, not a value")
        return
    raise SweepParamError(f"--vary {path}: {where} is a value ({node!r}), it has no field {key!r}")


def _named(data: Any, loc: tuple[Any, ...]) -> str:
    """A pydantic error location with list indices shown as the entries' ids (services.vision.slo)."""
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            item = node[part]
            out.append(str(item["id"]) if isinstance(item, dict) and "id" in item else str(part))
            node = item
        else:
            out.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(out)


def apply(base: Scenario, assignments: dict[str, Value]) -> Scenario:
    """The scenario with these parameter values, validated like a loaded one (errors name the parameter)."""
    data = base.model_dump(mode="python")
    for path, value in assignments.items():
        if path == DEMAND_SCALE:
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise SweepParamError(
                    f"--vary {path}={value}: expected a positive number (a rate multiplier)"
                )
            for d in data["demand"]:
                d["rate_per_device_rps"] = d["rate_per_device_rps"] * float(value)
            continue
        _set(data, path.split("."), value, path, [])
    label = ", ".join(f"{p}={v}" for p, v in assignments.items())
    try:
        s = Scenario.model_validate(data)
    except ValidationError as exc:
        reasons = "; ".join(f"{_named(data, e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise SweepParamError(f"--vary {label}: the scenario does not accept it ({reasons})") from None
    s._base_dir = base.base_dir
    problems = [f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in cross_reference_problems(s)]
    if problems:
        raise SweepParamError(f"--vary {label}: {'; '.join(problems[:5])}")
    return s


def check(base: Scenario, params: list[Param]) -> None:
    """Try every value of every parameter on its own before running anything: a bad one fails fast."""
    seen: set[str] = set()
    for p in params:
        if p.path in seen:
            raise SweepParamError(f"--vary {p.path} is given twice; list all its values in one --vary")
        seen.add(p.path)
        for v in p.values:
            apply(base, {p.path: v})


def grid_size(params: list[Param]) -> int:
    return math.prod(len(p.values) for p in params) if params else 1


def _point(params: list[Param], index: int) -> Point:
    values = []
    rem = index
    for p in reversed(params):  # the last parameter varies fastest, like itertools.product
        rem, k = divmod(rem, len(p.values))
        values.append((p.path, p.values[k]))
    return Point(index, tuple(reversed(values)))


def points(params: list[Param], sample: int | None = None, seed: int = 0) -> list[Point]:
    """Every grid point, or `sample` of them drawn without repeats with the seed (in grid order)."""
    n = grid_size(params)
    if sample is None or sample >= n:
        return [_point(params, i) for i in range(n)]
    if sample < 1:
        raise SweepParamError(f"--sample must be at least 1, not {sample}")
    chosen = sorted(random.Random(seed).sample(range(n), sample))
    return [_point(params, i) for i in chosen]


def grid(params: list[Param]) -> list[dict[str, Value]]:
    """The full grid as dicts (for people and tests)."""
    return [
        dict(zip([p.path for p in params], combo, strict=True))
        for combo in itertools.product(*[p.values for p in params])
    ]
