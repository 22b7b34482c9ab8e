"""--vary parsing, dotted paths into a scenario, and the grid or sample of points."""

from __future__ import annotations

from pathlib import Path

import pytest

from microdc.model import load_scenario
from microdc.sweep.params import Param, SweepParamError, apply, check, grid, parse_vary, points


def test_lists_and_ranges() -> None:
    assert parse_vary("economics.carbon_price_per_tonne=0,50,100") == Param(
        "economics.carbon_price_per_tonne", (0, 50, 100)
    )
    assert parse_vary("demand.scale=0.5:2:7").values == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
    assert parse_vary("policies.redundancy.n_plus=0,1").values == (0, 1)
    assert parse_vary("services.x.name=a,b").values == ("a", "b")
    assert parse_vary("x=true,false").values == (True, False)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("demand.scale", "expected PATH=VALUES"),
        ("=1,2", "empty parameter path"),
        ("a..b=1", "empty parameter path"),
        ("demand.scale=", "no values"),
        ("demand.scale=1:2", "lo:hi:n"),
        ("demand.scale=a:2:3", "numbers lo, hi and a whole count n"),
        ("demand.scale=1:2:0", "n must lie in"),
        ("demand.scale=1,,2", "empty value"),
        ("demand.scale=1,1", "appears twice"),
    ],
)
def test_malformed_vary_says_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(SweepParamError, match=says):
        parse_vary(text)


def test_paths_reach_fields_by_id_index_and_star(tiny_dir: Path) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    t = apply(
        s,
        {
            "services.vision.slo.p95_ms": 25,
            "sites.*.grid_power_kw": 99,
            "sites.0.annual_cost": 1,
            "economics.carbon_price_per_tonne": 120,
            "policies.redundancy.n_plus": 1,
            "demand.scale": 2.0,
        },
    )
    assert t.service("vision").slo.p95_ms == 25
    assert {x.grid_power_kw for x in t.sites} == {99}
    assert t.sites[0].annual_cost == 1 and t.sites[1].annual_cost == s.sites[1].annual_cost
    assert t.economics.carbon_price_per_tonne == 120
    assert t.policies.redundancy.n_plus == 1
    assert [d.rate_per_device_rps for d in t.demand] == [2 * d.rate_per_device_rps for d in s.demand]
    assert t.base_dir == s.base_dir
    assert s.service("vision").slo.p95_ms == 40  # the base scenario is untouched


@pytest.mark.parametrize(
    ("path", "value", "says"),
    [
        ("foo.bar", 1, "the scenario has no field 'foo'"),
        ("services.nope.slo.p95_ms", 1, "services has no entry 'nope'; expected an id (vision, batch)"),
        ("services.vision.slo.p95_ms", -1, "services.vision.slo.p95_ms: Input should be greater than 0"),
        ("economics", 1, "economics is a section, not a value"),
        ("economics.carbon_price_per_tonne.x", 1, "is a value"),
        ("demand.scale", 0, "expected a positive number"),
        ("demand.scale", "big", "expected a positive number"),
        ("sites.berlin.jurisdiction", "XX", "unknown jurisdiction 'XX'"),
        ("policies.redundancy.n_plus", 5, "policies.redundancy.n_plus"),
    ],
)
def test_bad_parameters_name_the_parameter(tiny_dir: Path, path: str, value: object, says: str) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    with pytest.raises(SweepParamError) as err:
        check(s, [Param(path, (value,))])  # type: ignore[arg-type]
    assert str(err.value).startswith(f"--vary {path}")
    assert says in str(err.value)


def test_the_same_parameter_twice_is_refused(tiny_dir: Path) -> None:
    s = load_scenario(tiny_dir / "scenario.yaml")
    with pytest.raises(SweepParamError, match="given twice"):
        check(s, [parse_vary("demand.scale=1,2"), parse_vary("demand.scale=3")])


def test_grid_and_seeded_sample() -> None:
    ps = [parse_vary("a=1,2,3"), parse_vary("b=x,y")]
    full = points(ps)
    assert [p.as_dict() for p in full] == grid(ps)
    assert len(full) == 6 and full[1].as_dict() == {"a": 1, "b": "y"}
    assert len({p.id for p in full}) == 6
    some = points(ps, sample=3, seed=5)
    assert len(some) == 3 and some == points(ps, sample=3, seed=5)
    assert {p.id for p in some} <= {p.id for p in full}
    assert [p.index for p in some] == sorted(p.index for p in some)
    assert points(ps, sample=100) == full
    with pytest.raises(SweepParamError, match="at least 1"):
        points(ps, sample=0)
    big = [parse_vary(f"p{i}=0:1:100") for i in range(6)]  # 10^12 points: sampling never lists them
    assert len(points(big, sample=4, seed=1)) == 4
