"""Re-runs tools/calibrate_latency.py's fit: the model defaults must be what it produces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microdc.physics.latency import LatencyModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_defaults_reproduced_by_calibration_script() -> None:
    spec = importlib.util.spec_from_file_location(
        "calibrate_latency", ROOT / "tools" / "calibrate_latency.py"
    )
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pairs = pd.read_csv(tool.DEFAULT_CSV)
    d = pairs["gc_km"].to_numpy(dtype=np.float64)
    y = pairs["rtt_avg_ms"].to_numpy(dtype=np.float64)
    held = tool.split_by_source(pairs["src_id"].to_numpy(dtype=np.int64))
    fitted = tool.fit(d[~held], y[~held])
    default = LatencyModel()
    assert fitted.base_ms == pytest.approx(default.base_ms, rel=1e-3)
    assert fitted.extra_inflation == pytest.approx(default.extra_inflation, rel=1e-3)
    assert fitted.inflation_scale_km == pytest.approx(default.inflation_scale_km, rel=1e-3)
    assert (
        tool.mdape_pct(fitted.rtt_ms(d[held]), y[held])
        < 19.0
        < tool.mdape_pct(tool.baseline_ms(d[held]), y[held])
    )
