"""Build the built-in example scenarios from the public datasets (run by maintainers, not at run time).

    python tools/build_examples.py --data PATH/TO/shared/data

Inputs are copied unchanged where possible; derived tables (sites.csv, demand.csv) are written by this
script so that every number can be traced back to its source.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import pandas as pd

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "microdc" / "examples"

# Melbourne: per user location, how many devices of each service it stands for.
MELB_SERVICES = {
    # service: (data_class, devices per user point, rate per device req/s, profile)
    "video-analytics": ("personal", 4, 5.0, "city-day"),
    "ar-guidance": ("personal", 20, 10.0, "city-day"),
    "iot-telemetry": ("public", 50, 1.0, "flat"),
}
CELL_DEG = 0.0015  # ≈ 130 m × 165 m cells at Melbourne's latitude


def site_class(name: str) -> tuple[int, float, float]:
    """(security tier, grid kW, annual cost AUD) from what the site is: street cell, rooftop, exchange."""
    low = name.lower()
    if "ucell" in low or "minicell" in low:
        return 1, 8.0, 6_000.0
    if "cmts" in low or "optus centre" in low or "exchange" in low:
        return 3, 60.0, 30_000.0
    return 2, 25.0, 15_000.0


def build_melbourne(data: Path) -> None:
    out = EXAMPLES / "melbourne"
    (out / "data").mkdir(parents=True, exist_ok=True)
    sites = pd.read_csv(data / "eua-melbourne" / "site-optus-melbCBD.csv")
    rows = []
    for _, s in sites.iterrows():
        tier, grid_kw, cost = site_class(str(s["NAME"]))
        rows.append(
            {
                "id": f"optus-{s['SITE_ID']}",
                "name": str(s["NAME"]).strip(),
                "lat": s["LATITUDE"],
                "lon": s["LONGITUDE"],
                "security_tier": tier,
                "grid_power_kw": grid_kw,
                "annual_cost": cost,
            }
        )
    pd.DataFrame(rows).to_csv(out / "sites.csv", index=False)

    users = pd.read_csv(data / "eua-melbourne" / "users-melbcbd-generated.csv")
    cell_lat = (users["Latitude"] / CELL_DEG).round().astype(int)
    cell_lon = (users["Longitude"] / CELL_DEG).round().astype(int)
    groups = users.groupby([cell_lat, cell_lon])
    demand = []
    for cell, (_key, g) in enumerate(sorted(groups, key=lambda kv: kv[0])):
        lat, lon, n_users = g["Latitude"].mean(), g["Longitude"].mean(), len(g)
        for service, (data_class, per_user, rate, profile) in MELB_SERVICES.items():
            demand.append(
                {
                    "id": f"{service}-{cell:03d}",
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "devices": n_users * per_user,
                    "data_class": data_class,
                    "service": service,
                    "rate_per_device_rps": rate,
                    "profile": profile,
                    "data_gb_per_day": round(
                        n_users * per_user * (2.0 if service == "video-analytics" else 0.01), 3
                    ),
                }
            )
    pd.DataFrame(demand).to_csv(out / "demand.csv", index=False)
    shutil.copy(data / "eua-melbourne" / "LICENSE", out / "data" / "LICENSE-EUA")
    shutil.copy(
        data / "grid-carbon-electricitymaps-2023" / "AU-VIC_2023_hourly.csv",
        out / "data" / "carbon-AU-VIC-2023.csv",
    )
    shutil.copy(
        data / "grid-carbon-electricitymaps-2023" / "AU-NSW_2023_hourly.csv",
        out / "data" / "carbon-AU-NSW-2023.csv",
    )
    shutil.copy(
        data / "weather-openmeteo-2023" / "AU-VIC_2023_hourly.csv", out / "data" / "weather-AU-VIC-2023.csv"
    )
    shutil.copy(
        data / "weather-openmeteo-2023" / "AU-NSW_2023_hourly.csv", out / "data" / "weather-AU-NSW-2023.csv"
    )
    print(f"melbourne: {len(rows)} sites, {len(users)} users → {len(demand)} demand sources")


# EU: real city coordinates (WonderProxy server list) and cloud regions (dgl/cloud-regions, AWS).
EU_CITIES = {
    # id: (name, jurisdiction, security tier, grid kW, annual cost EUR)
    "Munich": ("DE", 2, 30.0, 22_000.0),
    "Frankfurt": ("DE", 3, 60.0, 30_000.0),
    "Hamburg": ("DE", 2, 30.0, 20_000.0),
    "Paris": ("FR", 3, 60.0, 30_000.0),
    "Lyon": ("FR", 2, 30.0, 18_000.0),
    "Amsterdam": ("NL", 3, 60.0, 27_000.0),
    "Brussels": ("BE", 2, 30.0, 20_000.0),
    "Vienna": ("AT", 2, 30.0, 19_000.0),
    "Zurich": ("CH", 3, 60.0, 35_000.0),
    "Geneva": ("CH", 2, 30.0, 30_000.0),
}


def build_eu(data: Path) -> None:
    out = EXAMPLES / "eu-sovereign"
    (out / "data").mkdir(parents=True, exist_ok=True)
    servers = pd.read_csv(data / "latency-wonderproxy" / "servers-2020-07-19.csv", usecols=range(11))
    coords = {r["name"]: (r["latitude"], r["longitude"]) for _, r in servers.iterrows()}
    with (out / "sites.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            [
                "id",
                "name",
                "lat",
                "lon",
                "jurisdiction",
                "security_tier",
                "grid_power_kw",
                "annual_cost",
                "grid_zone",
            ]
        )
        for city, (code, tier, kw, cost) in EU_CITIES.items():
            lat, lon = coords[city]
            for k, (dlat, dlon) in enumerate(((0.0, 0.0), (0.03, -0.04))):
                w.writerow(
                    [
                        f"{city.lower()}-{k + 1}",
                        f"{city} MDC {k + 1}",
                        round(lat + dlat, 4),
                        round(lon + dlon, 4),
                        code,
                        tier if k == 0 else max(2, tier - 1),
                        kw if k == 0 else kw / 2,
                        cost if k == 0 else round(cost * 0.7),
                        code,
                    ]
                )
    demand = []
    for city, (code, _tier, _kw, _cost) in EU_CITIES.items():
        lat, lon = coords[city]
        for service, data_class, devices, rate in (
            ("patient-monitoring", "health", 400, 0.5),
            ("retail-vision", "personal", 300, 4.0),
            ("open-data", "public", 2000, 0.2),
        ):
            if data_class == "health" and code == "CH":
                continue  # the health rule names the EU; Swiss patients' data is out of this example's scope
            demand.append(
                {
                    "id": f"{service}-{city.lower()}",
                    "lat": lat,
                    "lon": lon,
                    "devices": devices,
                    "jurisdiction": code,
                    "data_class": data_class,
                    "service": service,
                    "rate_per_device_rps": rate,
                    "profile": "business-day" if service == "retail-vision" else "flat",
                    "data_gb_per_day": round(devices * 0.05, 2),
                }
            )
    pd.DataFrame(demand).to_csv(out / "demand.csv", index=False)
    # The weather files (data/amsterdam-iwec.epw, data/piedmont-pvgis-tmy.epw) come from the pvlib 0.10.5
    # wheel's pvlib/data folder (NLD_Amsterdam062400_IWEC.epw, tmy_45.000_8.000_2005_2016.epw), copied
    # unchanged; see the example's data/README.md.
    print(f"eu-sovereign: {2 * len(EU_CITIES)} sites, {len(demand)} demand sources")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True, help="folder with the public datasets")
    args = ap.parse_args()
    build_melbourne(args.data)
    build_eu(args.data)


if __name__ == "__main__":
    main()
