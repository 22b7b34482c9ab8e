"""Annual PUE per climate: a reference micro data center, and every catalog module at half load.

    python tools/annual_pue.py --epw-dir /path/to/weather-epw --tmy2 /path/to/12839.tm2

Two tables, both with outdoor humidity (the ASHRAE envelope of ``physics.cooling``):

1. Reference MDC: 20 kW of IT capacity (sum of server peak power), servers idling at 40 % of
   peak (SPECpower-style curve, Fan et al. 2007), utilization following a diurnal cycle in
   local time between 25 % and 65 % (mean 45 %), UPS sized to the IT capacity, default facility
   parameters; free-air cooling (DX backup) and plain DX.
2. Every module of the built-in examples' catalogs (plus the ``liquid`` preset, which no example
   uses) at a constant half load, through ``physics.site_power.annual_pue``, the very function
   the planner, the twin's cross-check and check-plan call. Printed as Markdown for
   ``docs/physics.md``, with the free-air modules also without humidity (the old dry-bulb rule),
   and the sanity anchors checked at the end.

Climates, each a real hourly year:

* Seattle (cool), Phoenix (hot, dry): EnergyPlus TMYx ``USA_WA_Seattle-Tacoma.epw`` and
  ``USA_AZ_Phoenix-Sky.Harbor.epw`` in ``--epw-dir`` (climate.onebuilding.org, as shipped in
  HewlettPackard/dc-rl);
* Melbourne (temperate), Sydney (warm, humid summers): Open-Meteo 2023 hourly, shipped with the
  melbourne example (``--melbourne``, ``--sydney``);
* Miami (hot, humid): the NREL TMY2 typical year of Miami (WBAN 12839), the file
  ``pvlib/data/12839.tm2`` that the pvlib package ships (``pip download pvlib==0.16.1
  --no-deps`` and unzip, or ``pip install pvlib``); ``--tmy2``.

All are re-stamped onto 2023 in UTC. A climate whose file is not given is skipped (and said so).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from microdc.model import load_scenario
from microdc.model.components import Cooling, CoolingKind, Module, Ups
from microdc.model.timeseries import TimeSeriesGapWarning, dew_point_of, load_epw, load_openmeteo_csv
from microdc.physics.cooling import CoolingParams, annual_pue, facility_power_w, mechanical_share
from microdc.physics.power import server_power_specpower_w
from microdc.physics.site_power import annual_pue as module_annual_pue
from microdc.physics.site_power import cooling_params, module_rating_w, ups_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "src" / "microdc" / "examples"
DEFAULT_MELBOURNE = EXAMPLES / "melbourne" / "data" / "weather-AU-VIC-2023.csv"
DEFAULT_SYDNEY = EXAMPLES / "melbourne" / "data" / "weather-AU-NSW-2023.csv"
EU_DATA = EXAMPLES / "eu-sovereign" / "data"
IT_CAPACITY_W = 20_000.0
IDLE_FRACTION = 0.40
YEAR = 2023

#: Sanity anchors (annual PUE at half load): (climate, cooling kind, low, high).
ANCHORS = (
    ("Seattle", "free_air", 1.05, 1.20, "cool climate, free air"),
    ("Melbourne", "dx", 1.25, 1.40, "temperate, DX"),
    ("Miami", "dx", 1.45, 1.70, "hot humid, DX"),
)


@dataclass(frozen=True)
class Climate:
    name: str
    kind: str  # cool, temperate, ...
    weather: pd.DataFrame  # temperature_c and humidity columns, hourly UTC 2023
    tz: str

    @property
    def temp_c(self) -> np.ndarray:
        return self.weather["temperature_c"].to_numpy(dtype=np.float64)

    @property
    def dew_point_c(self) -> np.ndarray | None:
        return dew_point_of(self.weather)


def load_tmy2(path: Path, year: int) -> pd.DataFrame:
    """An NREL TMY2 file (fixed columns: dry bulb, dew point in tenths of °C, RH in %) through
    ``load_epw``: written as a minimal EPW (same local-standard-time hour-ending convention) so
    the tested re-stamping and UTC wrap apply."""
    lines = path.read_text(encoding="latin-1").splitlines()
    head = lines[0].split()
    tz_h = float(head[3])
    rows = [
        f"LOCATION,{head[1]},{head[2]},USA,TMY2,{head[0]},0,0,{tz_h},0",
        *(f"HEADER {k}" for k in range(2, 8)),
        "DATA PERIODS,1,1,Data,Sunday,1/1,12/31",
    ]
    for ln in lines[1:]:
        if not ln.strip():
            continue
        month, day, hour = int(ln[3:5]), int(ln[5:7]), int(ln[7:9])
        db, dp, rh = int(ln[67:71]) / 10.0, int(ln[73:77]) / 10.0, int(ln[79:82])
        rows.append(f"1999,{month},{day},{hour},0,x,{db:.1f},{dp:.1f},{rh}")
    with tempfile.TemporaryDirectory() as tmp:
        epw = Path(tmp) / (path.stem + ".epw")
        epw.write_text("\n".join(rows) + "\n", encoding="latin-1")
        return load_epw(epw, year)


def utilization(index_utc: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Diurnal utilization in local time: mean 0.45, peak 0.65 at 15:00, trough 0.25 at 03:00."""
    local_hour = index_utc.tz_convert(tz).hour.to_numpy(dtype=np.float64)
    return 0.45 + 0.20 * np.cos(2.0 * np.pi * (local_hour - 15.0) / 24.0)


def reference_rows(c: Climate) -> list[dict[str, object]]:
    u = utilization(pd.DatetimeIndex(c.weather.index), c.tz)
    it_w = server_power_specpower_w(u, IDLE_FRACTION * IT_CAPACITY_W, IT_CAPACITY_W)
    rows: list[dict[str, object]] = []
    for kind in ("free_air", "dx"):
        cooling = CoolingParams.for_kind(kind)
        fp = facility_power_w(
            it_w, c.temp_c, it_capacity_w=IT_CAPACITY_W, dew_point_c=c.dew_point_c, cooling=cooling
        )
        share = mechanical_share(c.temp_c, cooling, c.dew_point_c)
        rows.append(
            {
                "site": c.name,
                "cooling": kind,
                "mean_temp_c": float(c.temp_c.mean()),
                "mean_dew_point_c": float(np.mean(c.dew_point_c)) if c.dew_point_c is not None else np.nan,
                "it_mwh": float(fp.it_w.sum()) / 1e6,
                "annual_pue": annual_pue(fp.total_w, fp.it_w),
                "max_hourly_pue": float(np.nanmax(fp.pue)),
                "free_cooling_hours_pct": float(np.mean(share == 0.0) * 100.0),
            }
        )
    return rows


def catalog_modules() -> list[Module]:
    """The modules of every built-in example (by id), then the liquid preset, which none uses."""
    seen: dict[str, Module] = {}
    for scenario in sorted(EXAMPLES.glob("*/scenario.yaml")):
        for m in load_scenario(scenario).catalog.modules:
            seen.setdefault(m.id, m)
    if not any(m.cooling.kind is CoolingKind.LIQUID for m in seen.values()):
        seen["liquid (preset)"] = Module(
            id="liquid-preset",
            rack_units=42,
            max_it_kw=20.0,
            cooling=Cooling(kind=CoolingKind.LIQUID),
            ups=Ups(energy_kwh=10.0),
            capex=0.0,
            lifetime_years=10.0,
        )
    return list(seen.values())


def half_load(c: Climate, m: Module, humidity: bool = True) -> tuple[float, float]:
    """(annual PUE at half of the module's IT envelope, share of hours on full economizer, %)."""
    cap_w = m.max_it_kw * 1000.0
    dew = c.dew_point_c if humidity else None
    pue = module_annual_pue(0.5 * cap_w, c.temp_c, m, it_capacity_w=cap_w, dew_point_c=dew)
    free = float(np.mean(mechanical_share(c.temp_c, cooling_params(m), dew) == 0.0) * 100.0)
    return pue, free


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def module_tables(climates: list[Climate], modules: list[Module]) -> tuple[str, str, list[str]]:
    """Markdown tables for docs/physics.md (every module; the humidity effect on free air) and the
    anchor verdicts."""
    head = ["climate", "mean °C", "mean dew point °C"] + [
        f"`{m.id}` ({m.cooling.kind.value})" for m in modules
    ]
    rows: list[list[str]] = []
    effect: list[list[str]] = []
    verdicts: list[str] = []
    free_air = [m for m in modules if m.cooling.kind is CoolingKind.FREE_AIR]
    for c in climates:
        dew = c.dew_point_c
        row = [
            f"{c.name} ({c.kind})",
            f"{c.temp_c.mean():.1f}",
            f"{np.mean(dew):.1f}" if dew is not None else "—",
        ]
        for m in modules:
            pue, free = half_load(c, m)
            row.append(f"**{pue:.3f}** ({free:.0f} %)" if cooling_params(m).economizer else f"**{pue:.3f}**")
            for name, kind, lo, hi, label in ANCHORS:
                if c.name.startswith(name) and m.cooling.kind.value == kind:
                    ok = "ok" if lo <= pue <= hi else "FAIL"
                    verdicts.append(f"anchor {label} {lo}-{hi}: {m.id} in {c.name} {pue:.3f} -> {ok}")
        rows.append(row)
        if free_air:
            m = free_air[0]
            pue, free = half_load(c, m)
            dry, dry_free = half_load(c, m, humidity=False)
            a1, a1_free = half_load(c, m.model_copy(update={"ashrae_class": "A1"}))
            mech = no_economizer_pue(c, m)
            effect.append(
                [
                    c.name,
                    f"{dry:.3f} ({dry_free:.0f} %)",
                    f"**{pue:.3f}** ({free:.0f} %)",
                    f"{a1:.3f} ({a1_free:.0f} %)",
                    f"{mech:.3f}",
                ]
            )
            if c.kind == "hot, humid" and dew is not None:
                share = mechanical_share(c.temp_c, cooling_params(m), dew)
                wet = dew > cooling_params(m).envelope.dew_point_max_c
                credited = int(np.sum(wet & (share == 0.0)))
                verdicts.append(
                    f"anchor free air in a hot humid climate, no better than its mechanical fallback allows: "
                    f"{m.id} in {c.name} {pue:.3f} vs {mech:.3f} with the economizer shut; "
                    f"{int(wet.sum())} h wetter than the envelope, {credited} of them credited as "
                    "free cooling "
                    f"-> {'ok' if credited == 0 and pue <= mech + 1e-9 else 'FAIL'}"
                )
    effect_head = [
        "climate",
        "dry bulb only (old rule)",
        "with humidity, `recommended` (default)",
        "with humidity, `A1` allowable",
        "economizer shut",
    ]
    return _markdown(head, rows), _markdown(effect_head, effect), verdicts


def no_economizer_pue(c: Climate, m: Module) -> float:
    """Half-load PUE of the module's own mechanical fallback: same plant, economizer shut all year."""
    cap_w = float(module_rating_w(m))
    params = replace(cooling_params(m), economizer=False)
    fp = facility_power_w(
        np.full_like(c.temp_c, 0.5 * cap_w), c.temp_c, it_capacity_w=cap_w, cooling=params, ups=ups_params(m)
    )
    return float(fp.total_w.sum() / fp.it_w.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--melbourne", type=Path, default=DEFAULT_MELBOURNE, help="Open-Meteo CSV, Melbourne 2023"
    )
    ap.add_argument("--sydney", type=Path, default=DEFAULT_SYDNEY, help="Open-Meteo CSV, Sydney 2023")
    ap.add_argument(
        "--epw-dir", type=Path, default=None, help="folder with the Seattle and Phoenix TMYx EPW files"
    )
    ap.add_argument("--tmy2", type=Path, default=None, help="NREL TMY2 file of Miami (pvlib/data/12839.tm2)")
    args = ap.parse_args()

    climates: list[Climate] = []
    skipped: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TimeSeriesGapWarning)
        if args.epw_dir is not None and (args.epw_dir / "USA_WA_Seattle-Tacoma.epw").is_file():
            seattle = load_epw(args.epw_dir / "USA_WA_Seattle-Tacoma.epw", YEAR)
            climates.append(Climate("Seattle TMYx", "cool", seattle, "Etc/GMT+8"))
        else:
            skipped.append("Seattle (pass --epw-dir)")
        for name, kind, path, tz in (
            ("Melbourne 2023", "temperate", args.melbourne, "Australia/Melbourne"),
            ("Sydney 2023", "warm, humid summers", args.sydney, "Australia/Sydney"),
        ):
            if path.is_file():
                climates.append(Climate(name, kind, load_openmeteo_csv(path, tz, utc_offset_hours=10.0), tz))
            else:
                skipped.append(f"{name} ({path} not found)")
        for name, kind, path, tz in (
            ("Amsterdam IWEC", "cool, maritime (Europe)", EU_DATA / "amsterdam-iwec.epw", "Etc/GMT-1"),
            (
                "Piedmont PVGIS TMY",
                "temperate, sub-alpine (Europe)",
                EU_DATA / "piedmont-pvgis-tmy.epw",
                "Etc/GMT-1",
            ),
        ):
            climates.append(Climate(name, kind, load_epw(path, YEAR), tz))
        if args.epw_dir is not None and (args.epw_dir / "USA_AZ_Phoenix-Sky.Harbor.epw").is_file():
            phoenix = load_epw(args.epw_dir / "USA_AZ_Phoenix-Sky.Harbor.epw", YEAR)
            climates.append(Climate("Phoenix TMYx", "hot, dry", phoenix, "Etc/GMT+7"))
        else:
            skipped.append("Phoenix (pass --epw-dir)")
        if args.tmy2 is not None and args.tmy2.is_file():
            climates.append(Climate("Miami TMY2", "hot, humid", load_tmy2(args.tmy2, YEAR), "Etc/GMT+5"))
        else:
            skipped.append("Miami (pass --tmy2)")
    for w in caught:
        print(f"note: {w.message}")
    for s in skipped:
        print(f"skipping {s}")
    if not climates:
        raise SystemExit("no weather data given")

    rows = [r for c in climates for r in reference_rows(c)]
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(
            f"\nReference MDC: {IT_CAPACITY_W / 1000:.0f} kW IT capacity, idle {IDLE_FRACTION:.0%} of peak, "
            "utilization 25-65 % diurnal (mean 45 %)"
        )
        print(pd.DataFrame(rows).to_string(index=False))
    table, effect, verdicts = module_tables(climates, catalog_modules())
    print("\nAnnual PUE of every catalog module at half load, (% of hours on full economizer):\n")
    print(table)
    print("\nA free-air module (the first in the catalogs) at half load, (% of hours on full economizer):\n")
    print(effect)
    print()
    for v in verdicts:
        print(v)


if __name__ == "__main__":
    main()
