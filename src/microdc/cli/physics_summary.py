"""A physics summary of a scenario: what latency, PUE and carbon its places and climates imply."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from microdc.cli.common import console
from microdc.model import Scenario
from microdc.model.series import ScenarioSeries
from microdc.physics.geo import distance_matrix_km
from microdc.physics.latency import LatencyModel
from microdc.physics.site_power import annual_pue
from microdc.placement.problem import device_rtt_ms, size_demand


def print_physics_summary(s: Scenario) -> None:
    series = ScenarioSeries(s)
    model = LatencyModel(access_ms=s.network.access_ms)
    d_lat = np.array([d.lat for d in s.demand])
    d_lon = np.array([d.lon for d in s.demand])
    to_site = distance_matrix_km(
        d_lat, d_lon, np.array([x.lat for x in s.sites]), np.array([x.lon for x in s.sites])
    )
    nearest_site = device_rtt_ms("site", to_site.min(axis=1), s.network, model)
    lat = Table(title="Network round trip from each demand source (ms)")
    for col in ("to", "min", "median", "max"):
        lat.add_column(col, justify="right" if col != "to" else "left")
    lat.add_row("nearest candidate MDC", *(f"{f(nearest_site):.1f}" for f in (np.min, np.median, np.max)))
    if s.cloud_regions:
        to_cloud = distance_matrix_km(
            d_lat,
            d_lon,
            np.array([r.lat for r in s.cloud_regions]),
            np.array([r.lon for r in s.cloud_regions]),
        )
        rtt = device_rtt_ms("cloud", to_cloud, s.network, model)
        for k, r in enumerate(s.cloud_regions):
            lat.add_row(f"cloud {r.id}", *(f"{f(rtt[:, k]):.1f}" for f in (np.min, np.median, np.max)))
    console.print(lat)

    pue = Table(title=f"Annual PUE of each module at half load, weather from {s.start.year}")
    pue.add_column("climate")
    for m in s.catalog.modules:
        pue.add_column(f"{m.id} ({m.cooling.kind.value})", justify="right")
    for climate in sorted({x.climate for x in s.sites}):
        temps = series.year_outdoor_c(climate)
        dew = series.year_dew_point_c(climate)
        cells = [
            f"{annual_pue(m.max_it_kw * 500.0, temps, m, m.max_it_kw * 1000.0, dew_point_c=dew):.3f}"
            for m in s.catalog.modules
        ]
        humidity = "dry bulb only: no humidity data" if dew is None else f"mean dew point {dew.mean():.1f} °C"
        pue.add_row(f"{climate} (mean {temps.mean():.1f} °C, max {temps.max():.1f} °C, {humidity})", *cells)
    console.print(pue)

    carbon = Table(title="Grid carbon intensity (gCO2eq/kWh)")
    carbon.add_column("zone")
    carbon.add_column("mean", justify="right")
    for zone in s.timeseries.carbon:
        carbon.add_row(zone, f"{series.mean_intensity(zone):.0f}")
    console.print(carbon)
    size = size_demand(s)
    console.print(
        f"Demand: {size.mean_rps.sum():,.0f} req/s on average, {size.peak_rps.sum():,.0f} at peak → "
        f"{size.cores_peak.sum():,.0f} cores and {size.memory_gb.sum():,.0f} GB "
        "at the services' target utilization."
    )
    if s.workloads:
        console.print(
            f"Workloads: {len(s.workloads)} declared ({', '.join(w.id for w in s.workloads)}); "
            "`microdc sites import` creates or updates them in the control plane."
        )
