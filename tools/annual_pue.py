"""Annual PUE of a reference micro data center in three climates.

Reference MDC: 20 kW of IT capacity (sum of server peak power), servers idling at
40 % of peak (SPECpower-style curve, Fan et al. 2007), utilization following a diurnal
cycle in local time between 25 % and 65 % (mean 45 %), UPS sized to the IT capacity,
default facility parameters of ``microdc.physics.cooling``.

    python tools/annual_pue.py --epw-dir /path/to/weather-epw [--melbourne PATH]

Melbourne uses Open-Meteo 2023 hourly weather (default
``src/microdc/examples/melbourne/data/weather-AU-VIC-2023.csv``); Phoenix and Seattle
use EnergyPlus TMYx files ``USA_AZ_Phoenix-Sky.Harbor.epw`` and
``USA_WA_Seattle-Tacoma.epw`` re-stamped onto 2023. Each site is run with free-air
cooling (DX backup) and with plain DX; the sanity anchors are ≈1.1 for a cool site
with free cooling and ≤1.6 for a hot site on DX.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from microdc.model.timeseries import TimeSeriesGapWarning, load_epw, load_openmeteo_csv
from microdc.physics.cooling import CoolingParams, annual_pue, facility_power_w, mechanical_share
from microdc.physics.power import server_power_specpower_w

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MELBOURNE = ROOT / "src" / "microdc" / "examples" / "melbourne" / "data" / "weather-AU-VIC-2023.csv"
IT_CAPACITY_W = 20_000.0
IDLE_FRACTION = 0.40
YEAR = 2023


def utilization(index_utc: pd.DatetimeIndex, tz: str) -> np.ndarray:
    """Diurnal utilization in local time: mean 0.45, peak 0.65 at 15:00, trough 0.25 at 03:00."""
    local_hour = index_utc.tz_convert(tz).hour.to_numpy(dtype=np.float64)
    return 0.45 + 0.20 * np.cos(2.0 * np.pi * (local_hour - 15.0) / 24.0)


def run_site(name: str, weather: pd.DataFrame, tz: str) -> list[dict[str, object]]:
    u = utilization(pd.DatetimeIndex(weather.index), tz)
    it_w = server_power_specpower_w(u, IDLE_FRACTION * IT_CAPACITY_W, IT_CAPACITY_W)
    temp_c = weather["temperature_c"].to_numpy(dtype=np.float64)
    rows: list[dict[str, object]] = []
    for kind in ("free_air", "dx"):
        cooling = CoolingParams.for_kind(kind)
        fp = facility_power_w(it_w, temp_c, it_capacity_w=IT_CAPACITY_W, cooling=cooling)
        share = mechanical_share(temp_c, cooling)
        rows.append(
            {
                "site": name,
                "cooling": kind,
                "hours": len(temp_c),
                "mean_temp_c": float(temp_c.mean()),
                "it_mwh": float(fp.it_w.sum()) / 1e6,
                "facility_mwh": float(fp.total_w.sum()) / 1e6,
                "annual_pue": annual_pue(fp.total_w, fp.it_w),
                "max_hourly_pue": float(np.nanmax(fp.pue)),
                "free_cooling_hours_pct": float(np.mean(share == 0.0) * 100.0),
                "cooling_share_pct": float(fp.cooling_w.sum() / fp.it_w.sum() * 100.0),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--melbourne",
        type=Path,
        default=DEFAULT_MELBOURNE,
        help="Open-Meteo hourly CSV for Melbourne (AU-VIC) 2023",
    )
    ap.add_argument(
        "--epw-dir",
        type=Path,
        default=None,
        help="folder holding USA_AZ_Phoenix-Sky.Harbor.epw and USA_WA_Seattle-Tacoma.epw",
    )
    args = ap.parse_args()

    rows: list[dict[str, object]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TimeSeriesGapWarning)
        if args.melbourne.is_file():
            mel = load_openmeteo_csv(args.melbourne, "Australia/Melbourne")
            rows += run_site("Melbourne (Open-Meteo 2023)", mel, "Australia/Melbourne")
        else:
            print(f"skipping Melbourne: {args.melbourne} not found (pass --melbourne)")
        if args.epw_dir is not None:
            for name, fname, tz in (
                ("Seattle (TMYx)", "USA_WA_Seattle-Tacoma.epw", "Etc/GMT+8"),
                ("Phoenix (TMYx)", "USA_AZ_Phoenix-Sky.Harbor.epw", "Etc/GMT+7"),
            ):
                rows += run_site(name, load_epw(args.epw_dir / fname, YEAR), tz)
        else:
            print("skipping Phoenix and Seattle: pass --epw-dir")
    for w in caught:
        print(f"note: {w.message}")
    if not rows:
        raise SystemExit("no weather data given")
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(
            f"Reference MDC: {IT_CAPACITY_W / 1000:.0f} kW IT capacity, idle {IDLE_FRACTION:.0%} of peak, "
            "utilization 25-65 % diurnal (mean 45 %)"
        )
        print(table.to_string(index=False))
    for r in rows:
        pue_value = float(r["annual_pue"])  # type: ignore[arg-type]
        if r["cooling"] == "free_air" and "Seattle" in str(r["site"]):
            print(f"anchor cool/free cooling ≈1.1: {r['site']} {pue_value:.3f}")
        if r["cooling"] == "dx" and "Phoenix" in str(r["site"]):
            print(
                f"anchor hot/DX ≤1.6: {r['site']} {pue_value:.3f} -> {'ok' if pue_value <= 1.6 else 'FAIL'}"
            )


if __name__ == "__main__":
    main()
