"""Offline basemap: decode once, then crop and thin to a map's view (figures in docs/benchmarks.md, "Maps").

    python benchmarks/basemap.py [--repeat 5]

Times the first decode of the shipped Natural Earth layers in a fresh process, and `basemap_traces`
for a city (Melbourne's CBD), a state (Victoria), a country (Germany) and a continent (Europe) view,
with the number of points and the bytes the traces add to a report or a dashboard page.
"""

from __future__ import annotations

import argparse
import json
import time

VIEWS = {
    "city (Melbourne CBD)": (-37.83, 144.94, -37.80, 144.99),
    "state (Victoria)": (-39.2, 140.9, -33.9, 150.0),
    "country (Germany)": (47.2, 5.8, 55.1, 15.1),
    "continent (Europe)": (34.0, -11.0, 71.5, 35.0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    from microdc.report.basemap import basemap_traces, load_basemap

    t = time.perf_counter()
    load_basemap()
    print(f"decode all layers (first call): {1000 * (time.perf_counter() - t):.0f} ms")
    print("| view | best of repeats | points | JSON |")
    print("|---|---:|---:|---:|")
    for name, v in VIEWS.items():
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            traces = basemap_traces(v)
            best = min(best, time.perf_counter() - t)
        points = sum(sum(x is not None for x in tr["x"]) for tr in traces)
        size = len(json.dumps(traces))
        print(f"| {name} | {1000 * best:.0f} ms | {points:,} | {size / 1000:,.0f} kB |")


if __name__ == "__main__":
    main()
