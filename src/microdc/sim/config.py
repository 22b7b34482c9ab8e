"""Simulation settings (everything a run needs besides the scenario, the plan and the faults)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from microdc.placement.online import PlacerConfig

Mode = Literal["fluid", "requests"]
ProgressCallback = Callable[[int, int], None]  # steps done, steps total


class SimConfigError(ValueError):
    """A bad simulation setting (bad step, days, mode...)."""


def parse_step(text: str) -> int:
    """'5min', '1h', '60s', '30' (seconds) → whole seconds > 0 (at most one day)."""
    raw = text.strip()
    try:
        td = pd.Timedelta(int(raw), unit="s") if raw.isdigit() else pd.Timedelta(raw)
    except (ValueError, TypeError):
        raise SimConfigError(f"bad step {text!r}; expected e.g. 1min, 5min, 1h or 60s") from None
    secs = td.total_seconds()
    if pd.isna(td) or secs <= 0 or secs != int(secs):
        raise SimConfigError(f"bad step {text!r}; it must be a positive whole number of seconds")
    if secs > 86400:
        raise SimConfigError(f"step {text!r} is longer than a day")
    return int(secs)


@dataclass(frozen=True)
class SimConfig:
    """How to run.

    start: first step (UTC; default the scenario's start date at 00:00 UTC).
    noise_cv: extra multiplicative per-step noise on each source's rate (seeded), on top of the
      Poisson sampling noise of a step's request count (fluid mode; request mode realizes it).
    sampling_noise: fluid mode adds that Poisson noise; off (with noise_cv 0) every step carries exactly
      its mean load, as the plan's expected year does (docs/fidelity.md).
    max_utilization: a queue's M/M/c latency is taken at most at this utilization; arrivals beyond it
      are served with the servers flat out, and what they cannot serve waits in a fluid backlog.
    throttle_speed: a throttled site's cores run at this share of their speed (and dynamic power).
    setpoint_inlet_c / throttle_inlet_c / shutdown_inlet_c: inlet air held by working cooling; ASHRAE
      A1 allowable maximum (throttle); the limit at which servers shut down.
    uplink_gbps: backhaul bandwidth that drains an MDC's sync backlog.
    max_atoms / atom_tolerance_ms: latency mixture resolution (see sim.latency).
    request_timeout_s: a request waiting longer than this is dropped (unserved): request mode per
      request, fluid mode from the backlog (at most servers × timeout requests wait).
    block_steps: steps computed together between events (None: as many as keep each (steps × …) array
      of a block within ``block_elements`` numbers). Results are identical for every block size.
    """

    start: pd.Timestamp | None = None
    days: float = 1.0
    step_s: int = 300
    seed: int = 0
    mode: Mode = "fluid"
    noise_cv: float = 0.05
    sampling_noise: bool = True
    max_utilization: float = 0.98
    throttle_speed: float = 0.5
    setpoint_inlet_c: float = 24.0
    throttle_inlet_c: float = 32.0
    shutdown_inlet_c: float = 40.0
    uplink_gbps: float = 1.0
    power_curve: Literal["linear", "specpower"] = "linear"
    max_atoms: int = 4
    atom_tolerance_ms: float = 0.05
    latency_grid_points: int = 48
    request_timeout_s: float = 30.0
    rows_per_group: int = 1_000_000
    block_steps: int | None = None
    block_elements: int = 2_000_000
    placer: PlacerConfig = field(default_factory=PlacerConfig)
    progress: ProgressCallback | None = None

    def __post_init__(self) -> None:
        if not self.days > 0:
            raise SimConfigError("days must be > 0")
        if not 0 < self.step_s <= 86400:
            raise SimConfigError("step must lie in (0 s, 1 day]")
        if self.mode not in ("fluid", "requests"):
            raise SimConfigError(f"unknown mode {self.mode!r}; expected fluid or requests")
        if not 0 < self.max_utilization < 1:
            raise SimConfigError("max_utilization must lie in (0, 1)")
        if not 0 < self.throttle_speed <= 1:
            raise SimConfigError("throttle_speed must lie in (0, 1]")
        if not self.setpoint_inlet_c < self.throttle_inlet_c < self.shutdown_inlet_c:
            raise SimConfigError("need setpoint_inlet_c < throttle_inlet_c < shutdown_inlet_c")
        if self.block_steps is not None and self.block_steps < 1:
            raise SimConfigError("block_steps must be >= 1 (or None: chosen from the fleet size)")
        if self.block_elements < 1:
            raise SimConfigError("block_elements must be >= 1")
        if self.noise_cv < 0 or self.uplink_gbps <= 0 or self.max_atoms < 1:
            raise SimConfigError("noise_cv must be >= 0, uplink_gbps > 0 and max_atoms >= 1")
