"""Evidence for the default metro radius: measured round trips between nearby servers, by distance band.

    python tools/metro_radius.py

Reads WonderNetwork's city-server pings (benchmarks/data/latency-wonderproxy/pairs_calibration.csv) and
prints, per distance band up to 300 km, the number of pairs, the median measured RTT, the metro-fibre
model's RTT at the band's median distance (2 × the straight-fibre bound, no access), and the median excess
of measured over that model. Where the excess jumps to the calibrated Internet model's fixed cost
(``LatencyModel.base_ms``, 6.3 ms), paths stop staying on one metro network.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from microdc.physics.latency import METRO_INFLATION, fibre_bound_rtt_ms

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "latency-wonderproxy" / "pairs_calibration.csv"
BANDS = (0, 25, 50, 80, 100, 150, 300)


def main() -> None:
    df = pd.read_csv(DATA, usecols=["gc_km", "rtt_avg_ms"])
    print("| band | pairs | median measured RTT | metro-fibre model at median km | median measured − model |")
    print("|---|---:|---:|---:|---:|")
    for lo, hi in itertools.pairwise(BANDS):
        b = df[(df.gc_km >= lo) & (df.gc_km < hi)]
        model = METRO_INFLATION * fibre_bound_rtt_ms(b.gc_km.to_numpy())
        excess = np.median(b.rtt_avg_ms.to_numpy() - model)
        print(
            f"| {lo}–{hi} km | {len(b)} | {b.rtt_avg_ms.median():.2f} ms | "
            f"{float(np.median(model)):.2f} ms | {excess:.2f} ms |"
        )


if __name__ == "__main__":
    main()
