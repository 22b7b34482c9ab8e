"""The twin's storage report (docs/storage.md): retained raw data per built site against its servers'
storage, the cloud's share priced per GB-month, and the sites whose storage is exceeded."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sim.twin import assign, built, hand_plan, write_twin_with

from microdc.model import Scenario, load_scenario
from microdc.sim import SimConfig, simulate

CFG = SimConfig(days=1 / 24, step_s=600, seed=1)  # 6 steps of 10 min
STEPS = 6


@pytest.fixture
def twin(tmp_path: Path) -> Scenario:
    # 0.5 TB per server; personal data kept 30 days, public 10 days.
    edits = {
        "memory_gb: 256, idle_w: 100": "memory_gb: 256, storage_tb: 0.5, idle_w: 100",
        "min_security_tier: 2}": "min_security_tier: 2, retention_days: 30}",
        "public: {process_in: any}": "public: {process_in: any, retention_days: 10}",
    }
    return load_scenario(write_twin_with(tmp_path / "twin", edits, n_plus=0))


def test_storage_use_per_site_by_hand(twin: Scenario) -> None:
    # cams-berlin 40 GB/day × 30 days = 1.2 TB, half at each German site; cams-paris 30 × 30 = 0.9 TB;
    # sensors-lyon 5 GB/day × 10 days = 50 GB in the US cloud region.
    p = hand_plan(
        [built("berlin"), built("hamburg"), built("paris")],
        [
            assign("cams-berlin", "berlin", fraction=0.5),
            assign("cams-berlin", "hamburg", fraction=0.5),
            assign("cams-paris", "paris"),
            assign("sensors-lyon", "us-east", kind="cloud"),
        ],
    )
    summary = simulate(twin, p, CFG).summary
    sites = summary["storage"]["sites"]
    assert sites["berlin"] == {"capacity_tb": 1.0, "used_tb_mean": 0.6, "used_tb_max": 0.6}
    assert sites["hamburg"]["used_tb_max"] == pytest.approx(0.6)
    assert sites["paris"] == {"capacity_tb": 1.0, "used_tb_mean": 0.9, "used_tb_max": 0.9}
    assert summary["storage"]["cloud_tb_mean"] == pytest.approx(0.05)
    assert summary["storage_violations"] == {"site_steps": 0, "worst_excess_tb": 0.0, "sites": []}
    # 50 GB for an hour at 0.023 per GB-month (the region's default price): 50 × 0.023 × 12 / 8760.
    assert summary["cost"]["lines"]["cloud_storage"] == pytest.approx(50 * 0.023 * 12 / 8760, abs=0.006)


def test_storage_over_a_site_is_counted(twin: Scenario) -> None:
    p = hand_plan(
        [built("berlin"), built("paris")],
        [
            assign("cams-berlin", "berlin"),
            assign("cams-paris", "paris"),
            assign("sensors-lyon", "us-east", kind="cloud"),
        ],
    )
    got = simulate(twin, p, CFG).summary
    assert got["storage"]["sites"]["berlin"]["used_tb_max"] == pytest.approx(1.2)
    assert got["storage_violations"] == {
        "site_steps": STEPS,
        "worst_excess_tb": pytest.approx(0.2),
        "sites": ["berlin"],
    }
