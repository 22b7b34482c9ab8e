"""Fit microdc's latency model to WonderNetwork's measured round-trip times.

Reproduces the defaults of ``microdc.physics.latency.LatencyModel`` and the figures in
``docs/physics.md``::

    python tools/calibrate_latency.py [--csv PATH] [--png docs/img/latency_calibration.png]

Method: pairs are split 50/50 by *source server* (seeded permutation), so no test pair
shares its source with a training pair. The three parameters are fitted on the
training half with Nelder-Mead (multi-start, seeded) minimising the mean over six
distance bands (0-100, 100-300, 300-1,000, 1,000-3,000, 3,000-10,000, >10,000 km) of
each band's median absolute percentage error. Weighting bands equally keeps the
short metro distances that matter for edge sites from being swamped by the many
intercontinental pairs. Error is reported as the median absolute percentage error
(MdAPE) against ``rtt_avg_ms`` on the held-out half and on all pairs, next to the
straight-line baseline 26.3 ms + 0.0171 ms/km.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize

from microdc.physics.latency import FIBRE_RTT_MS_PER_KM, LatencyModel

FloatArray = npt.NDArray[np.float64]
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "data" / "latency-wonderproxy" / "pairs_calibration.csv"
DEFAULT_PNG = ROOT / "docs" / "img" / "latency_calibration.png"
SEED = 20200719
BAND_EDGES_KM = np.array([0.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0, np.inf])


def baseline_ms(d_km: FloatArray) -> FloatArray:
    """The straight line quoted with the data set."""
    return 26.3 + 0.0171 * d_km


def mdape_pct(pred: FloatArray, meas: FloatArray) -> float:
    return float(np.median(np.abs(pred - meas) / meas) * 100.0)


def model_from(theta: FloatArray, access_ms: float = 10.0) -> LatencyModel:
    base, extra, scale = np.exp(theta)
    return LatencyModel(
        base_ms=float(base),
        extra_inflation=float(extra),
        inflation_scale_km=float(scale),
        access_ms=access_ms,
    )


def band_objective(
    theta: FloatArray, d_km: FloatArray, meas: FloatArray, band: npt.NDArray[np.int64]
) -> float:
    pred = model_from(theta).rtt_ms(d_km)
    ape = np.abs(pred - meas) / meas
    return float(np.mean([np.median(ape[band == k]) for k in np.unique(band)]))


def split_by_source(src_id: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True for held-out pairs: those whose source server is in the held-out half."""
    rng = np.random.default_rng(SEED)
    servers = np.unique(src_id)
    held = rng.permutation(servers)[: servers.size // 2]
    return np.isin(src_id, held)


def fit(d_km: FloatArray, meas: FloatArray) -> LatencyModel:
    band = np.digitize(d_km, BAND_EDGES_KM) - 1
    rng = np.random.default_rng(SEED)
    theta0 = np.log([5.0, 1.0, 5000.0])
    best = None
    for start in range(12):
        guess = theta0 + (rng.normal(0.0, 0.7, theta0.size) if start else 0.0)
        res = minimize(
            band_objective,
            guess,
            args=(d_km, meas, band),
            method="Nelder-Mead",
            options={"maxiter": 20000, "xatol": 1e-9, "fatol": 1e-12},
        )
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    return model_from(best.x)


def band_table(
    model: LatencyModel, d_km: FloatArray, meas: FloatArray
) -> list[tuple[str, int, float, float]]:
    rows = []
    band = np.digitize(d_km, BAND_EDGES_KM) - 1
    for k in range(BAND_EDGES_KM.size - 1):
        s = band == k
        hi = "" if np.isinf(BAND_EDGES_KM[k + 1]) else f"{BAND_EDGES_KM[k + 1]:,.0f}"
        label = f"{BAND_EDGES_KM[k]:,.0f}–{hi} km" if hi else f"> {BAND_EDGES_KM[k]:,.0f} km"
        rows.append(
            (
                label,
                int(s.sum()),
                mdape_pct(model.rtt_ms(d_km[s]), meas[s]),
                mdape_pct(baseline_ms(d_km[s]), meas[s]),
            )
        )
    return rows


def plot(model: LatencyModel, d_km: FloatArray, meas: FloatArray, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    ax.scatter(d_km, meas, s=2, alpha=0.25, color="tab:gray", label="measured average RTT (WonderNetwork)")
    grid = np.logspace(0, np.log10(20100.0), 400)
    ax.plot(grid, model.rtt_ms(grid), color="tab:blue", lw=2, label="microdc LatencyModel")
    ax.plot(
        grid, baseline_ms(grid), color="tab:orange", lw=1.5, ls="--", label="straight line 26.3 + 0.0171·d"
    )
    ax.plot(
        grid, FIBRE_RTT_MS_PER_KM * grid, color="tab:red", lw=1.5, ls=":", label="fibre bound 2d / (c/1.468)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(3, 21000)
    ax.set_ylim(0.3, 700)
    ax.set_xlabel("great-circle distance (km)")
    ax.set_ylabel("round-trip time (ms)")
    ax.set_title("Latency model calibration: 21,607 server pairs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--png", type=Path, default=DEFAULT_PNG)
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()

    pairs = pd.read_csv(args.csv)
    d_km = pairs["gc_km"].to_numpy(dtype=np.float64)
    meas = pairs["rtt_avg_ms"].to_numpy(dtype=np.float64)
    held = split_by_source(pairs["src_id"].to_numpy(dtype=np.int64))
    train = ~held

    model = fit(d_km[train], meas[train])
    print(
        f"pairs: {d_km.size} (train {int(train.sum())}, held-out {int(held.sum())}; split by source server, "
        f"seed {SEED})"
    )
    print(
        f"fitted: base_ms={model.base_ms:.4f} extra_inflation={model.extra_inflation:.4f} "
        f"inflation_scale_km={model.inflation_scale_km:.0f}"
    )
    print("MdAPE vs rtt_avg_ms        model   straight line")
    for label, mask in (("train", train), ("held-out", held), ("all pairs", np.ones_like(held))):
        print(
            f"  {label:<22} {mdape_pct(model.rtt_ms(d_km[mask]), meas[mask]):6.2f}%   "
            f"{mdape_pct(baseline_ms(d_km[mask]), meas[mask]):6.2f}%"
        )
    print("per distance band (all pairs): band, pairs, model MdAPE, straight-line MdAPE")
    for label, n, m, b in band_table(model, d_km, meas):
        print(f"  {label:<18} {n:6d} {m:7.1f}% {b:7.1f}%")
    below = int(np.sum(meas < FIBRE_RTT_MS_PER_KM * d_km))
    print(f"measured pairs below the fibre bound (bad coordinates or clocks): {below}")
    if not args.no_plot:
        plot(model, d_km, meas, args.png)
        print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
