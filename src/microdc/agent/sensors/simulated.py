"""A simulated site driven by the digital twin's physics, so a whole fleet can run on one machine.

Per poll, at simulated time ``t`` (wall clock × ``time_scale`` from the start; readings carry the wall
clock, since the control plane refuses timestamps from the future):

* utilization: the scenario's first diurnal load profile (`microdc.model.profiles`) or a day-shaped
  sine, 0.05–0.95;
* IT power: servers × `physics.server_power_specpower_w(u, idle, peak)` (Fan–Weber–Barroso curve);
* outdoor temperature: the scenario's weather for the site's climate (`microdc.model.series`), or
  ``outdoor_c``, or a day-shaped sine;
* facility power: `physics.facility_power_w` with the module's cooling preset (`physics.site_power`);
* inlet temperature: the setpoint while cooling works; during an injected cooling failure, the lumped
  thermal model `physics.inlet_temperature_c`, stepped from poll to poll at that interval's IT power;
* UPS: on mains (state 0) with runtime `physics.ups_runtime_s(stored energy, facility load)`; during an
  injected grid outage on battery (state 1), the stored energy draining at the facility load;
* door: closed unless a ``door_open`` fault is injected.

Readings: ``<name>.it_power`` (Power W, ACOutput), ``<name>.facility_power`` (Power W, ACUtilityInput),
``<name>.inlet`` (Temperature Cel, Intake), ``<name>.ups.state`` (UPSState), ``<name>.ups.runtime``
(Runtime min), ``<name>.ups.charge`` (Percent %, Battery), ``<name>.door`` (Door).

Faults: `inject("cooling_failure" | "grid_outage" | "door_open", active)`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from microdc.agent.config import AgentConfig, SimulatedSource
from microdc.agent.sensors.base import PollResult
from microdc.physics import (
    CoolingParams,
    ThermalParams,
    facility_power_w,
    inlet_temperature_c,
    server_power_specpower_w,
    ups_runtime_s,
)

FAULTS = ("cooling_failure", "grid_outage", "door_open")


class SimulatedSite:
    def __init__(self, cfg: SimulatedSource, agent: AgentConfig, *, site_id: str, base_dir: Path):
        self.cfg = cfg
        self.name = cfg.name
        self.interval_s = cfg.interval_s
        self.data_class = cfg.data_class
        self.rng = np.random.default_rng(cfg.seed)
        self.cooling = CoolingParams()
        self.capacity_w = cfg.it_capacity_kw * 1000.0
        self.ups_energy_kwh = cfg.ups_energy_kwh
        self.ups_efficiency = 0.95
        self.servers, self.idle_w, self.peak_w = cfg.servers, cfg.idle_w, cfg.peak_w
        self._profile: Any = None
        self._weather: Any = None
        if cfg.scenario:
            self._from_scenario(cfg, site_id, base_dir)
        self.stored_kwh = self.ups_energy_kwh
        self.faults: dict[str, float | None] = dict.fromkeys(FAULTS)  # fault → sim time it started
        self.inlet_c = cfg.setpoint_c
        self._t0_wall: float | None = None
        self._last_sim: float | None = None

    def _from_scenario(self, cfg: SimulatedSource, site_id: str, base_dir: Path) -> None:
        from microdc.model import load_scenario
        from microdc.model.components import DiurnalProfile
        from microdc.model.series import ScenarioSeries
        from microdc.physics.site_power import cooling_params

        path = Path(cfg.scenario or "")
        scenario = load_scenario(path if path.is_absolute() else base_dir / path)
        sid = cfg.site or site_id
        site = next((s for s in scenario.sites if s.id == sid), None)
        module_id = cfg.module or (site.existing[0].module if site and site.existing else None)
        module = scenario.module(module_id) if module_id else scenario.catalog.modules[0]
        server = (
            scenario.server(site.existing[0].server)
            if site and site.existing
            else scenario.catalog.servers[0]
        )
        self.cooling = cooling_params(module)
        self.capacity_w = module.max_it_kw * 1000.0
        self.ups_energy_kwh = module.ups.energy_kwh or self.ups_energy_kwh
        self.ups_efficiency = module.ups.efficiency
        self.idle_w, self.peak_w = server.idle_w, server.peak_w
        fit = max(1, int(self.capacity_w * 0.6 // max(server.peak_w, 1.0)))
        self.servers = site.existing[0].count if site and site.existing else min(cfg.servers, fit)
        self._profile = next((p for p in scenario.profiles.values() if isinstance(p, DiurnalProfile)), None)
        if site is not None and cfg.outdoor_c is None:
            series = ScenarioSeries(scenario)
            climate = site.climate

            def weather(ts: datetime) -> float:
                idx = pd.DatetimeIndex([pd.Timestamp(ts)])
                return float(series.outdoor_c(climate, idx)[0])

            self._weather = weather

    # --- the model --------------------------------------------------------------------------------

    def inject(self, fault: str, active: bool = True) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use {', '.join(FAULTS)}")
        if active and self.faults[fault] is None:
            self.faults[fault] = self._last_sim if self._last_sim is not None else 0.0
        elif not active:
            self.faults[fault] = None
            if fault == "grid_outage":
                self.stored_kwh = self.ups_energy_kwh  # recharged (instantly: a simplification)

    def _utilization(self, sim: datetime) -> float:
        if self._profile is not None:
            from microdc.model.profiles import factors

            f = float(factors(self._profile, pd.DatetimeIndex([pd.Timestamp(sim)]))[0])
            u = 0.35 * f
        else:
            hour = sim.hour + sim.minute / 60
            u = 0.45 + 0.3 * math.sin(2 * math.pi * (hour - 9) / 24)
        return float(np.clip(u * (1 + self.cfg.noise * self.rng.standard_normal()), 0.05, 0.95))

    def _outdoor(self, sim: datetime) -> float:
        if self.cfg.outdoor_c is not None:
            return self.cfg.outdoor_c
        if self._weather is not None:
            return float(self._weather(sim))
        hour = sim.hour + sim.minute / 60
        return 12.0 + 6.0 * math.sin(2 * math.pi * (hour - 9) / 24)

    def step(self, now: datetime) -> dict[str, float]:
        """Advance the twin to wall time `now`; the physical state as numbers (also used by tests)."""
        wall = now.timestamp()
        if self._t0_wall is None:
            self._t0_wall = wall
        sim_s = (wall - self._t0_wall) * self.cfg.time_scale
        dt = 0.0 if self._last_sim is None else max(0.0, sim_s - self._last_sim)
        self._last_sim = sim_s
        sim = datetime.fromtimestamp(self._t0_wall + sim_s, UTC)
        u = self._utilization(sim)
        it_w = float(server_power_specpower_w(u, self.idle_w, self.peak_w)) * self.servers
        outdoor = self._outdoor(sim)
        fp = facility_power_w(it_w, outdoor, it_capacity_w=self.capacity_w, cooling=self.cooling)
        facility_w = float(fp.total_w)
        if self.faults["cooling_failure"] is not None:
            # the lumped thermal model, stepped exactly for the power held over each interval
            facility_w -= float(fp.cooling_w)
            self.inlet_c = float(inlet_temperature_c(dt, it_w, self.inlet_c, outdoor, ThermalParams()))
        else:
            self.inlet_c = self.cfg.setpoint_c + self.rng.normal(0.0, self.cfg.noise)
        on_battery = self.faults["grid_outage"] is not None
        if on_battery:
            drained = facility_w * dt / (3.6e6 * self.ups_efficiency)
            self.stored_kwh = max(0.0, self.stored_kwh - drained)
        runtime_s = float(ups_runtime_s(self.stored_kwh, facility_w, self.ups_efficiency))
        return {
            "utilization": u,
            "it_w": it_w,
            "facility_w": facility_w,
            "outdoor_c": outdoor,
            "inlet_c": self.inlet_c,
            "ups_state": 1.0 if on_battery else 0.0,
            "runtime_min": min(runtime_s / 60.0, 10_000.0),
            "charge_pct": 100.0 * self.stored_kwh / self.ups_energy_kwh,
            "door": 1.0 if self.faults["door_open"] is not None else 0.0,
        }

    async def poll(self, now: datetime) -> PollResult:
        s = self.step(now)
        out = PollResult()
        p = self.name
        out.add(f"{p}.it_power", "Power", "W", "ACOutput", now, round(s["it_w"], 1))
        out.add(f"{p}.facility_power", "Power", "W", "ACUtilityInput", now, round(s["facility_w"], 1))
        out.add(f"{p}.inlet", "Temperature", "Cel", "Intake", now, round(s["inlet_c"], 2))
        if self.cfg.ups:
            out.add(f"{p}.ups.state", "UPSState", "1", "PowerSupply", now, s["ups_state"])
            out.add(f"{p}.ups.runtime", "Runtime", "min", "Battery", now, round(s["runtime_min"], 1))
            out.add(f"{p}.ups.charge", "Percent", "%", "Battery", now, round(s["charge_pct"], 1))
        if self.cfg.door:
            out.add(f"{p}.door", "Door", "1", "Door", now, s["door"])
        return out

    async def close(self) -> None:
        return None
