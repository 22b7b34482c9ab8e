"""The digital twin: step a plan through time with its demand, weather, grid carbon and faults.

Per step (fluid mode, every quantity an array over sources, pieces, queues or targets; steps between
two events are computed together as a block, see docs/simulator.md):

1. events due at the step start apply (faults start or end; throttles, thermal shutdowns and empty
   batteries found during the previous step); what a fault displaces is re-placed by the online placer;
2. arrival rates: each source's mean × its load profile × seeded noise;
3. routing: the plan's pieces (primary assignments, or where the placer moved them) → per-queue rates,
   a queue being one service at one target; up to ``max_utilization`` of its capacity a queue serves
   what arrives; beyond, its servers run flat out and the rest waits in a fluid backlog carried across
   steps, dropped (unserved) once it would wait longer than ``request_timeout_s``;
4. latency: M/M/c per queue + network RTT per piece, mixed per service (sim.latency);
5. power: servers from utilization; cooling, UPS, distribution and misc from that hour's outdoor
   temperature (physics.site_power); cloud regions from cores used × watts per core × PUE; energy,
   PUE, carbon at that hour's grid intensity; inlet temperature, battery and sync backlog evolve.

Request mode replaces 4 (and the utilization in 5) with a discrete-event simulation of each request
(sim.requests). Everything random comes from one numpy SeedSequence: the same seed gives the same
output, bit for bit.
"""

from __future__ import annotations

import copy
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from microdc.model import Scenario
from microdc.model.profiles import factors
from microdc.model.scenario import FLAT_PROFILE
from microdc.model.series import ScenarioSeries
from microdc.physics import power as server_power
from microdc.physics.queueing import erlang_c
from microdc.physics.site_power import module_power
from microdc.physics.thermal import inlet_temperature_c, time_to_threshold_s
from microdc.placement.ledger import GB_PER_TB, LOAD_LINES, demand_stored_gb
from microdc.placement.online import RESOURCES, Outcome, Placer, WorkloadTable
from microdc.placement.online.network import rtt_pairs_ms
from microdc.placement.plan import Plan
from microdc.policy import PolicyBook, tier_with_trust
from microdc.sim.allocator import keep_block_memory
from microdc.sim.config import SimConfig
from microdc.sim.faults import Fault, FaultKind, FaultSpec, draw_random_faults
from microdc.sim.fleet import HOURS_PER_YEAR, SimFleet, build_fleet, piece_transport, step_cost_lines
from microdc.sim.latency import (
    AccumulatorPart,
    Atoms,
    BlockLatency,
    RunAccumulator,
    ServiceAtoms,
    block_latency,
    build_atoms,
    service_atoms,
)
from microdc.sim.output import OutputWriter, build_summary
from microdc.sim.rows import row_chunks, shared_row
from microdc.sim.rows import rowcount as _rowcount

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Column of the memory a workload reserves in ``WorkloadTable.demand`` (GB).
MEMORY = RESOURCES.index("memory_gb")

#: Site states, in precedence order when several apply (the first that applies is reported).
STATES = ("down", "throttled", "cooling_failure", "grid_outage", "link_down", "untrusted", "up")


@dataclass
class SimResult:
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    out_dir: Path | None
    timeseries: pd.DataFrame | None = None
    service_latency: pd.DataFrame | None = None


@dataclass(order=True)
class _Event:
    time: pd.Timestamp
    seq: int
    action: str = field(compare=False)  # start | end | throttle | shutdown | battery_empty
    site: int = field(compare=False)
    fault: int = field(compare=False)  # index into faults (-1: none)


#: What a replica does not share with the run it was made from (arrays copied, then evolved).
_PER_RUN_STATE = (
    "route",
    "failed",
    "link_cut",
    "cooling_failed",
    "grid_out",
    "untrusted",
    "throttled",
    "shut_thermal",
    "shut_battery",
    "inlet",
    "battery",
    "backlog",
    "last_pue",
    "q_backlog",
    "lost_v",
)


@dataclass
class _Member:
    """One replica in a pass: its simulation (own noise, state and counters) and its outputs."""

    sim: Simulation
    writer: OutputWriter
    acc: AccumulatorPart  # its rows of the pass's shared accumulator


@dataclass
class _FaultImpact:
    displaced: int = 0
    re_placed: int = 0
    degraded: int = 0
    unserved: int = 0
    unserved_requests: float = 0.0


class Simulation:
    """One run. ``run()`` steps through the window and writes the outputs (see docs/simulator.md)."""

    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        config: SimConfig,
        faults: FaultSpec | None = None,
        plan_path: str | Path = "plan.json",
        fleet: SimFleet | None = None,
    ) -> None:
        self.s = scenario
        self.cfg = config
        self.fleet = fleet or build_fleet(scenario, plan, plan_path)
        f = self.fleet
        start = config.start if config.start is not None else pd.Timestamp(scenario.start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        self.start = start
        self.step_s = float(config.step_s)
        self.step_h = self.step_s / 3600.0
        self.n_steps = max(1, math.ceil(config.days * 86400.0 / config.step_s - 1e-9))
        self.times = pd.date_range(start, periods=self.n_steps, freq=pd.Timedelta(seconds=config.step_s))
        self.end = start + pd.Timedelta(seconds=config.step_s * self.n_steps)
        seeds = np.random.SeedSequence(config.seed).spawn(3)
        self.rng_noise = np.random.default_rng(seeds[0])
        self.rng_faults = np.random.default_rng(seeds[1])
        self.rng_requests = np.random.default_rng(seeds[2])

        # Environment on the step grid.
        series = ScenarioSeries(scenario)
        self.outdoor = np.array([series.outdoor_c(c, self.times) for c in f.climates]).reshape(
            len(f.climates), self.n_steps
        )
        dew = [series.dew_point_c(c, self.times) for c in f.climates]  # None: no humidity → NaN
        self.dew_point = np.array([np.full(self.n_steps, np.nan) if d is None else d for d in dew]).reshape(
            len(f.climates), self.n_steps
        )
        self.intensity = np.array([series.intensity(z, self.times) for z in f.zones]).reshape(
            len(f.zones), self.n_steps
        )
        names = [FLAT_PROFILE, *sorted(scenario.profiles)]
        self.profile = np.array(
            [np.ones(self.n_steps)]
            + [factors(scenario.profiles[n], self.times, scenario.base_dir) for n in names[1:]]
        )
        p_index = {n: i for i, n in enumerate(names)}

        # Demand sources and services.
        svc_index = {v.id: i for i, v in enumerate(scenario.services)}
        self.services = [v.id for v in scenario.services]
        d = scenario.demand
        self.d_mean = np.array([x.mean_rate_rps for x in d], dtype=np.float64)
        self.d_profile = np.array([p_index[x.profile] for x in d], dtype=np.int64)
        self.d_service = np.array([svc_index[x.service] for x in d], dtype=np.int64)
        self.d_data_gb_day = np.array([x.data_gb_per_day for x in d], dtype=np.float64)
        self.d_stored_gb = demand_stored_gb(scenario)  # the planner's function (placement.ledger)
        sv = scenario.services
        self.v_cpu = np.array([v.cpu_seconds_per_request for v in sv])
        self.v_util = np.array([v.target_utilization for v in sv])
        self.v_payload_kb = np.array([v.payload_kb for v in sv])
        self.v_response_kb = np.array([v.response_kb for v in sv])
        self.v_slo_bound = np.array(
            [v.slo.p95_ms if v.slo.p95_ms is not None else (v.slo.p99_ms or np.inf) for v in sv],
            dtype=np.float64,
        )
        self.v_slo_p95 = np.array([v.slo.p95_ms or np.inf for v in sv], dtype=np.float64)
        self.min_pool_cores = float(min(v.cores for v in scenario.catalog.servers))
        self.v_slo_p99 = np.array([v.slo.p99_ms or np.inf for v in sv], dtype=np.float64)
        self.v_slo_ms = np.column_stack([self.v_slo_p95, self.v_slo_p99])  # (services × 2)

        # Pieces (the plan's primary assignments).
        pc = f.pieces
        self.p_demand = pc.demand
        self.p_fraction = pc.fraction
        self.p_service = self.d_service[pc.demand]
        self.p_home = pc.home.copy()
        self.route = pc.home.copy()
        self.p_lat = np.array([d[i].lat for i in pc.demand.tolist()], dtype=np.float64)
        self.p_lon = np.array([d[i].lon for i in pc.demand.tolist()], dtype=np.float64)
        self.p_mean = self.d_mean[pc.demand] * pc.fraction
        # one whole piece per source, in source order: piece rates are the source rates (x · 1.0 = x)
        self.p_is_d = bool(
            pc.demand.size == len(d) and (pc.demand == np.arange(len(d))).all() and (pc.fraction == 1.0).all()
        )
        self.p_ids = f.table.ids
        self.table: WorkloadTable = f.table
        # Sources the plan leaves (partly) unserved.
        covered = np.bincount(pc.demand, weights=pc.fraction, minlength=len(d))
        self.d_uncovered = np.clip(1.0 - covered, 0.0, 1.0)
        self.d_uncovered[self.d_uncovered < 1e-9] = 0.0

        # Target state.
        n = len(f.ids)
        self.n_targets = n
        self.failed = np.zeros(n, dtype=np.int64)
        self.link_cut = np.zeros(n, dtype=np.int64)
        self.cooling_failed = np.zeros(n, dtype=np.int64)
        self.grid_out = np.zeros(n, dtype=np.int64)
        self.untrusted = np.zeros(n, dtype=np.int64)
        self.throttled = np.zeros(n, dtype=bool)
        self.shut_thermal = np.zeros(n, dtype=bool)
        self.shut_battery = np.zeros(n, dtype=bool)
        self.inlet = np.where(f.is_cloud, np.nan, config.setpoint_inlet_c)
        self.battery = f.ups_kwh.copy()
        self.backlog = np.zeros(n)
        self.last_pue = f.placer_fleet.pue.copy()
        self.placer = Placer.for_scenario(scenario, config.placer)
        self.policy = PolicyBook(scenario.tree, scenario.policies.data_classes)
        self.module_groups: list[tuple[Any, IntArray]] = []
        seen: dict[str, list[int]] = {}
        for i, m in enumerate(f.modules):
            if m is not None:
                seen.setdefault(m.id, []).append(i)
        for mid, idx in seen.items():
            self.module_groups.append((scenario.module(mid), np.array(idx, dtype=np.int64)))

        # Faults.
        spec = faults or FaultSpec(())
        built = list(f.ids[: f.n_sites])
        listed = list(spec.faults)
        if spec.random is not None:
            rng = self.rng_faults if spec.random.seed is None else np.random.default_rng(spec.random.seed)
            listed += draw_random_faults(spec.random, built, self.start, self.end, rng)
        self.faults: list[Fault] = listed
        self.impact = [_FaultImpact() for _ in listed]
        site_index = {sid: i for i, sid in enumerate(f.ids)}
        self._events: list[_Event] = []
        self._seq = 0
        for i, ft in enumerate(listed):
            s_i = site_index[ft.site]
            self._push(ft.start, "start", s_i, i)
            if ft.end is not None:
                self._push(ft.end, "end", s_i, i)
        self.event_log: list[dict[str, Any]] = []
        self._cause: dict[int, int] = {}  # site -> fault behind its current thermal/battery chain
        self.sovereignty_violations = 0
        self.security_violations = 0
        self.lost_v = np.zeros(len(self.services))  # backlogged requests lost with their queue
        self.q_backlog: FloatArray = np.zeros(0)  # fluid backlog per queue (requests)
        self._q_keys: IntArray = np.zeros(0, dtype=np.int64)  # target × services + service per queue
        self._reroute()

    @staticmethod
    def create(
        scenario: Scenario,
        plan: Plan,
        config: SimConfig,
        faults: FaultSpec | None = None,
        plan_path: str | Path = "plan.json",
    ) -> Simulation:
        """The simulation for ``config.mode`` (fluid, or request-level)."""
        if config.mode == "requests":
            from microdc.sim.requests import RequestSimulation

            return RequestSimulation(scenario, plan, config, faults, plan_path)
        return Simulation(scenario, plan, config, faults, plan_path)

    # ------------------------------------------------------------------------------------ helpers

    def _push(self, time: pd.Timestamp, action: str, site: int, fault: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, _Event(time, self._seq, action, site, fault))

    @property
    def alive(self) -> BoolArray:
        return np.asarray((self.failed == 0) & ~self.shut_thermal & ~self.shut_battery)

    @property
    def accepting(self) -> BoolArray:
        return np.asarray(
            self.alive
            & (self.link_cut == 0)
            & ~self.throttled
            & (self.grid_out == 0)
            & (self.cooling_failed == 0)
        )

    @property
    def trusted(self) -> BoolArray:
        return np.asarray(self.untrusted == 0)

    def state_codes(self) -> IntArray:
        conds = [
            ~self.alive,
            self.throttled,
            self.cooling_failed > 0,
            self.grid_out > 0,
            self.link_cut > 0,
            self.untrusted > 0,
        ]
        code = np.full(self.n_targets, len(STATES) - 1, dtype=np.int64)
        for i in range(len(conds) - 1, -1, -1):
            code = np.where(conds[i], i, code)
        return np.where(self.fleet.is_cloud, len(STATES) - 1, code)

    def _legal(self, rows: IntArray, at: IntArray) -> BoolArray:
        """Independent check (the policy module directly, not the placer): may piece rows[i]'s data be
        processed and stored at target at[i]?"""
        if rows.size == 0:
            return np.zeros(0, dtype=bool)
        if not hasattr(self, "_sov_mask"):
            t = self.table
            key = t.data_class * (int(t.origin.max(initial=0)) + 1) + t.origin
            uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
            classes = [t.classes[i] for i in t.data_class[first].tolist()]
            self._sov_group = inv.ravel().astype(np.int64)
            self._sov_mask = self.policy.sovereignty_mask(
                classes, t.origin[first], self.fleet.placer_fleet.jurisdiction
            )
            del uniq
        return np.asarray(self._sov_mask[self._sov_group[rows], at], dtype=bool)

    def _tier_ok(self, rows: IntArray, at: IntArray) -> BoolArray:
        pf = self.fleet.placer_fleet
        tier = tier_with_trust(pf.tier, self.trusted)
        need = self.policy.min_tier(list(self.table.classes))[self.table.data_class[rows]]
        return np.asarray(need <= tier[at])

    def _reroute(self) -> None:
        """Rebuild queues, servers per queue, RTTs, latency atoms and the legality check after a move."""
        f = self.fleet
        v_n = len(self.services)
        routed = self.route >= 0
        key = np.where(routed, self.route * v_n + self.p_service, -1)
        uniq, inv = np.unique(key[routed], return_inverse=True)
        self.p_queue = np.full(self.route.size, -1, dtype=np.int64)
        self.p_queue[routed] = inv.ravel()
        self.q_target = (uniq // v_n).astype(np.int64)
        self.q_service = (uniq % v_n).astype(np.int64)
        nq = uniq.size
        # The fluid backlog stays with its queue (same target and service) while the target is alive;
        # what waited on a queue that is gone or dead is lost (counted unserved in the next step).
        backlog = np.zeros(nq)
        if self.q_backlog.size:
            pos = np.clip(np.searchsorted(self._q_keys, uniq), 0, self._q_keys.size - 1)
            kept = (self._q_keys[pos] == uniq) & self.alive[self.q_target]
            backlog = np.where(kept, self.q_backlog[pos], 0.0)
            self.lost_v = self.lost_v + np.bincount(self._q_keys % v_n, self.q_backlog, minlength=v_n)
            self.lost_v = self.lost_v - np.bincount(self.q_service, backlog, minlength=v_n)
        self._q_keys = uniq
        self.q_backlog = backlog
        # Servers (cores) per site queue: the site's cores shared in proportion to the peak core needs
        # of what it hosts; at least one each.
        need = np.bincount(self.p_queue[routed], weights=self.table.demand[routed, 0], minlength=nq)
        need = np.maximum(need, 1e-9)
        per_target = np.bincount(self.q_target, weights=need, minlength=self.n_targets)
        share = need / np.maximum(per_target[self.q_target], 1e-300)
        self.q_servers = np.maximum(1.0, np.floor(f.cores[self.q_target] * share))
        self.q_cloud = f.is_cloud[self.q_target]
        rtt = np.full(self.route.size, np.nan)
        if routed.any():
            tr = self.route[routed]
            rtt[routed] = rtt_pairs_ms(
                self.p_lat[routed],
                self.p_lon[routed],
                f.placer_fleet.lat[tr],
                f.placer_fleet.lon[tr],
                f.is_cloud[tr],
                access_ms=self.s.network.access_ms,
                edge_extra_ms=self.s.network.edge_extra_ms,
                metro_radius_km=self.s.network.metro_radius_km,
            )
        self.p_rtt = rtt
        self.atoms: Atoms = build_atoms(
            self.p_queue,
            np.nan_to_num(rtt),
            self.p_mean,
            self.q_service,
            max_atoms=self.cfg.max_atoms,
            tolerance_ms=self.cfg.atom_tolerance_ms,
        )
        self.by_service: ServiceAtoms = service_atoms(self.atoms, len(self.services))
        rows = np.flatnonzero(routed)
        at = self.route[rows]
        self.p_illegal_sov = np.zeros(self.route.size, dtype=bool)
        self.p_illegal_tier = np.zeros(self.route.size, dtype=bool)
        self.p_illegal_sov[rows] = ~self._legal(rows, at)
        self.p_illegal_tier[rows] = ~self._tier_ok(rows, at)
        # Per-step work runs on the routed pieces only, through these index arrays.
        self.r_idx = rows
        self.r_queue = self.p_queue[rows]
        self.r_target = at
        self.r_service = self.p_service[rows]
        self.r_atom = self.atoms.of_piece[rows]
        self.r_gen = self.d_data_gb_day[self.p_demand[rows]] * self.p_fraction[rows] * (self.step_s / 86400.0)
        self.r_illegal_sov = np.flatnonzero(self.p_illegal_sov[rows])
        self.r_illegal_tier = np.flatnonzero(self.p_illegal_tier[rows])
        self.r_memory_gb = self.table.demand[rows, MEMORY]
        # per target: data made per step, and memory reserved, by its pieces when all of them serve
        self.gen_target = _rowcount(at, self.r_gen[None], self.n_targets)[0]
        self.memory_target = _rowcount(at, self.r_memory_gb[None], self.n_targets)[0]
        self.r_kb_both = self.v_payload_kb[self.r_service] + self.v_response_kb[self.r_service]
        self.r_transport_price, self.r_transport_kwh = piece_transport(
            f, self.p_lat[rows], self.p_lon[rows], at
        )
        on_cloud = np.flatnonzero(f.is_cloud[at])
        self.r_cloud = on_cloud
        self.cloud_memory_gb = np.bincount(
            at[on_cloud],
            weights=f.sizes.memory_gb[self.p_demand[rows[on_cloud]]] * self.p_fraction[rows[on_cloud]],
            minlength=self.n_targets,
        )
        # Raw data kept where each piece is served, GB per target (steady state of this routing).
        self.stored_gb = np.bincount(
            at,
            weights=self.d_stored_gb[self.p_demand[rows]] * self.p_fraction[rows],
            minlength=self.n_targets,
        )
        self._on_reroute()

    def _on_reroute(self) -> None:
        """Hook for the request-level mode."""

    def _memory_rows(self, served_r: FloatArray) -> FloatArray:
        """Memory reserved per row and target by the routed pieces serving in that row (rate > 0). A row
        where all of them serve takes the routing's total: a piece's 0.0 adds nothing to a sum's bits."""
        serving = served_r > 0
        rows = np.repeat(self.memory_target[None], served_r.shape[0], axis=0)
        part = np.flatnonzero(~serving.all(axis=1))
        if part.size:
            rows[part] = _rowcount(
                self.r_target, np.where(serving[part], self.r_memory_gb, 0.0), self.n_targets
            )
        return rows

    def _routed(self, per_piece: FloatArray) -> FloatArray:
        """The routed pieces' columns of a (rows × pieces) array (itself when every piece is routed:
        no copy of the largest array of a block)."""
        if self.r_idx.size == per_piece.shape[1]:  # r_idx is then 0, 1, … in order
            return per_piece
        return per_piece[:, self.r_idx]

    # ------------------------------------------------------------------------------------ placement

    def _placer_fleet(self, k: int) -> Any:
        f = self.fleet
        pf = f.placer_fleet
        cap = pf.capacity.copy()
        cap[self.throttled] *= self.cfg.throttle_speed
        routed = self.route >= 0
        used = np.zeros_like(cap)
        for r in range(cap.shape[1]):
            used[:, r] = np.bincount(
                self.route[routed], weights=self.table.demand[routed, r], minlength=self.n_targets
            )
        carbon = np.where(
            f.zone >= 0, self.intensity[np.maximum(f.zone, 0), min(k, self.n_steps - 1)], np.nan
        )
        return pf.with_state(
            alive=self.alive.copy(),
            accepting=self.accepting.copy(),
            trusted=self.trusted.copy(),
            capacity=cap,
            used=used,
            carbon_g_per_kwh=carbon,
            pue=self.last_pue.copy(),
        )

    def _replace(self, rows: IntArray, k: int, record: dict[str, Any], fault: int) -> None:
        """Run the placer on ``rows`` (their usage leaves the fleet first) and apply the result."""
        if rows.size == 0:
            return
        fleet = self._placer_fleet(k)
        cur = self.route[rows]
        # The batch's own usage is not "used by others".
        used = fleet.used.copy()
        has = cur >= 0
        for r in range(used.shape[1]):
            np.subtract.at(used[:, r], cur[has], self.table.demand[rows[has], r])
        fleet = fleet.with_state(used=np.maximum(used, 0.0))
        wl = replace(self.table.take(rows), current=cur.copy(), preferred=self.fleet.pieces.backup[rows])
        res = self.placer.place(wl, fleet)
        new = res.target.copy()
        ids = self.fleet.ids
        moved = np.flatnonzero(res.moved & (res.outcome != Outcome.UNSERVED))
        for i in moved.tolist():
            record["replaced"][self.p_ids[int(rows[i])]] = ids[int(new[i])]
        for i in np.flatnonzero(res.outcome == Outcome.DEGRADED).tolist():
            record["degraded"][self.p_ids[int(rows[i])]] = res.reasons[i]
        lost = np.flatnonzero(res.outcome == Outcome.UNSERVED)
        for i in lost.tolist():
            record["unserved"][self.p_ids[int(rows[i])]] = res.reasons[i]
        if fault >= 0:
            imp = self.impact[fault]
            imp.re_placed += int(moved.size)
            imp.degraded += int((res.outcome == Outcome.DEGRADED).sum())
            imp.unserved += int(lost.size)
        new[res.outcome == Outcome.UNSERVED] = -1
        self.route[rows] = new

    def _record(self, t: pd.Timestamp, kind: str, phase: str, site: int, fault: int) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "time": t.isoformat(),
            "kind": kind,
            "phase": phase,
            "site": self.fleet.ids[site],
            "fault": fault,
            "source": self.faults[fault].source if fault >= 0 else "",
            "displaced": [],
            "replaced": {},
            "degraded": {},
            "unserved": {},
            "restored": [],
        }
        self.event_log.append(rec)
        return rec

    def _displace(self, site: int, k: int, rec: dict[str, Any], fault: int) -> None:
        rows = np.flatnonzero(self.route == site)
        rec["displaced"] = [self.p_ids[int(r)] for r in rows.tolist()]
        if fault >= 0:
            self.impact[fault].displaced += int(rows.size)
        self._replace(rows, k, rec, fault)

    def _restore(self, site: int, k: int, rec: dict[str, Any]) -> None:
        """A site is back: move home the pieces it had (when legal and they fit), retry unserved ones."""
        alive, accepting = self.alive, self.accepting
        if alive[site] and accepting[site]:
            rows = np.flatnonzero((self.p_home == site) & (self.route != site))
            if rows.size:
                at = np.full(rows.size, site, dtype=np.int64)
                ok = self._legal(rows, at) & self._tier_ok(rows, at)
                rows = rows[ok]
                cap = self.fleet.placer_fleet.capacity[site] * (
                    self.cfg.throttle_speed if self.throttled[site] else 1
                )
                here = self.route == site
                free = cap - self.table.demand[here].sum(axis=0)
                need = np.cumsum(self.table.demand[rows], axis=0)
                fits = np.all(need <= free[None, :] + 1e-9, axis=1)
                fits &= np.cumsum(~fits) == 0
                back = rows[fits]
                self.route[back] = site
                rec["restored"] = [self.p_ids[int(r)] for r in back.tolist()]
        pending = np.flatnonzero(self.route < 0)
        if pending.size:
            self._replace(pending, k, rec, -1)

    def _apply_events(self, k: int, t: pd.Timestamp) -> None:
        changed = False
        cfg = self.cfg
        while self._events and self._events[0].time <= t:
            ev = heapq.heappop(self._events)
            s_i, fi = ev.site, ev.fault
            kind = self.faults[fi].kind if fi >= 0 else None
            if ev.action == "start" and kind is not None:
                rec = self._record(ev.time, kind.value, "start", s_i, fi)
                if kind == FaultKind.SITE_OUTAGE:
                    was_alive = bool(self.alive[s_i])
                    self.failed[s_i] += 1
                    if was_alive:
                        self._displace(s_i, k, rec, fi)
                elif kind == FaultKind.UPLINK_CUT:
                    self.link_cut[s_i] += 1
                elif kind == FaultKind.COOLING_FAILURE:
                    self.cooling_failed[s_i] += 1
                    self._cause.setdefault(s_i, fi)
                elif kind == FaultKind.GRID_OUTAGE:
                    if self.grid_out[s_i] == 0:
                        self.battery[s_i] = self.fleet.ups_kwh[s_i]
                    self.grid_out[s_i] += 1
                    self._cause.setdefault(s_i, fi)
                elif kind == FaultKind.BREAK_IN:
                    self.untrusted[s_i] += 1
                    rows = np.flatnonzero(self.route == s_i)
                    bad = rows[~self._tier_ok(rows, np.full(rows.size, s_i, dtype=np.int64))]
                    rec["displaced"] = [self.p_ids[int(r)] for r in bad.tolist()]
                    self.impact[fi].displaced += int(bad.size)
                    self._replace(rows, k, rec, fi)
                changed = True
            elif ev.action == "end" and kind is not None:
                rec = self._record(ev.time, kind.value, "end", s_i, fi)
                if kind == FaultKind.SITE_OUTAGE:
                    self.failed[s_i] -= 1
                elif kind == FaultKind.UPLINK_CUT:
                    self.link_cut[s_i] -= 1
                elif kind == FaultKind.COOLING_FAILURE:
                    self.cooling_failed[s_i] -= 1
                    if self.cooling_failed[s_i] == 0:
                        self.throttled[s_i] = False
                        self.shut_thermal[s_i] = False
                        self.inlet[s_i] = cfg.setpoint_inlet_c
                elif kind == FaultKind.GRID_OUTAGE:
                    self.grid_out[s_i] -= 1
                    if self.grid_out[s_i] == 0:
                        self.shut_battery[s_i] = False
                        self.battery[s_i] = self.fleet.ups_kwh[s_i]
                elif kind == FaultKind.BREAK_IN:
                    self.untrusted[s_i] -= 1
                if self.cooling_failed[s_i] == 0 and self.grid_out[s_i] == 0:
                    self._cause.pop(s_i, None)
                self._restore(s_i, k, rec)
                changed = True
            elif ev.action == "throttle":
                if self.cooling_failed[s_i] > 0 and not self.throttled[s_i] and self.alive[s_i]:
                    rec = self._record(ev.time, "throttle", "start", s_i, fi)
                    self.throttled[s_i] = True
                    rows = np.flatnonzero(self.route == s_i)
                    self._replace(rows, k, rec, fi)
                    changed = True
            elif ev.action in ("shutdown", "battery_empty"):
                thermal = ev.action == "shutdown"
                active = self.cooling_failed[s_i] > 0 if thermal else self.grid_out[s_i] > 0
                if active and self.alive[s_i]:
                    rec = self._record(ev.time, ev.action, "start", s_i, fi)
                    if thermal:
                        self.shut_thermal[s_i] = True
                    else:
                        self.shut_battery[s_i] = True
                    self._displace(s_i, k, rec, fi)
                    changed = True
        if changed:
            self._reroute()

    # ------------------------------------------------------------------------------------ the run

    def rates_block(
        self,
        k0: int,
        k1: int,
        rngs: Sequence[np.random.Generator] = (),
        *,
        out: FloatArray | None = None,
    ) -> FloatArray:
        """Arrival rate per demand source in steps k0..k1-1 (steps × sources, req/s), seeded noise
        included: the same numbers, bit for bit, as drawing them one step at a time. ``rngs``: the
        noise streams of the runs of a pass (default this run's), each drawing its own noise around the
        mean they share; their rows are stacked run by run. ``out``: memory to fill (at least runs ·
        steps · sources numbers), reused by the run block after block rather than paged in anew."""
        rngs = rngs or (self.rng_noise,)
        n = self.d_mean.size
        shape = (len(rngs), k1 - k0, n)  # C order, as the noise is drawn
        z = np.empty(shape) if out is None else out[: math.prod(shape)].reshape(shape)
        for rng, out in zip(rngs, z, strict=True):
            rng.standard_normal(out.shape, out=out)
        # the mean and spread in chunks of steps that stay in cache (the same operations per number):
        # block-sized temporaries would be paged in afresh and streamed through memory pass by pass
        factor = self.profile[:, k0:k1].T
        chunks = row_chunks(k1 - k0, n)
        base, sd, tmp = np.empty((3, chunks[0].stop if chunks else 0, n))
        sampling = self.cfg.mode == "fluid" and self.cfg.sampling_noise
        for sl in chunks:
            m = sl.stop - sl.start
            bj, sj, zj = base[:m], sd[:m], z[:, sl]
            np.take(factor[sl], self.d_profile, axis=1, out=bj)
            np.multiply(self.d_mean, bj, out=bj)
            np.multiply(self.cfg.noise_cv, bj, out=sj)  # the variance (cv · base)² [+ base / Δt], its root
            np.square(sj, out=sj)
            if sampling:
                sj += np.divide(bj, self.step_s, out=tmp[:m])
            np.sqrt(sj, out=sj)
            zj *= sj  # max(base + sd · z, 0)
            zj += bj
            np.maximum(zj, 0.0, out=zj)
        return z.reshape(-1, n)

    def rates(self, k: int) -> FloatArray:
        """Arrival rate per demand source in step k (req/s), seeded noise included."""
        return self.rates_block(k, k + 1)[0]

    def _block_len(self) -> int:
        """Steps per block: the configured number, or as many as keep the largest (steps × …) array
        of a block within ``block_elements`` (so memory per block is bounded whatever the fleet). The
        latency solve cuts its (steps × services × atoms) work into cache-sized chunks of its own
        (sim.latency.SOLVE_ELEMENTS), so a block row costs it only its grid and survival rows."""
        cfg = self.cfg
        if cfg.block_steps is not None:
            return cfg.block_steps
        per_step = max(
            2 * self.d_mean.size,
            3 * self.p_mean.size,
            8 * max(self.q_target.size, 1),
            30 * self.n_targets,
            2 * len(self.services) * (cfg.latency_grid_points + 1),
        )
        return max(1, cfg.block_elements // per_step)

    def _block_end(self, k: int, replicas: int = 1) -> int:
        """End (exclusive) of the block starting at step k: the next event splits it; while a thermal
        or battery chain runs (its next event depends on this step's state) a block is one step."""
        sites = ~self.fleet.is_cloud
        if (sites & (self.cooling_failed > 0)).any() or (sites & (self.grid_out > 0) & self.alive).any():
            return k + 1
        end = min(self.n_steps, k + max(1, self._block_len() // replicas))
        if self._events:
            nxt = int(self.times.searchsorted(self._events[0].time, side="left"))
            end = min(end, max(nxt, k + 1))
        return end

    def run(self, out_dir: Path | None = None, *, keep_frames: bool = False) -> SimResult:
        return self._run_members([self], [out_dir], keep_frames=keep_frames)[0]

    def replica(self, seed: int) -> Simulation:
        """This run with another seed, sharing everything the seed does not change (fleet, series,
        routing); only for runs without faults (whose draws and re-placements depend on the seed)."""
        if self.faults:
            raise ValueError("a replica shares its fault schedule; build one Simulation per seed instead")
        twin = copy.copy(self)
        twin.cfg = replace(self.cfg, seed=seed)
        seeds = np.random.SeedSequence(seed).spawn(3)
        twin.rng_noise, twin.rng_faults, twin.rng_requests = (np.random.default_rng(x) for x in seeds)
        for name in _PER_RUN_STATE:
            setattr(twin, name, getattr(self, name).copy())
        twin.event_log = []
        twin._events = []
        twin._cause = {}
        twin.sovereignty_violations = twin.security_violations = 0
        return twin

    def _run_members(
        self, sims: list[Simulation], out_dirs: list[Path | None], *, keep_frames: bool = False
    ) -> list[SimResult]:
        """Run ``sims`` (this one and its replicas) in one pass: each block's steps of every replica are
        stacked as rows of the same arrays; state, totals and outputs stay per replica."""
        f = self.fleet
        cfg = self.cfg
        keep_block_memory(8 * cfg.block_elements)  # (no page faults for every block's arrays)
        n, v_n = self.n_targets, len(self.services)
        shared = RunAccumulator(v_n, groups=len(sims))
        members = [
            _Member(
                sim,
                OutputWriter(out, list(f.ids), self.services, cfg.rows_per_group, keep_frames=keep_frames),
                shared.member(i),
            )
            for i, (sim, out) in enumerate(zip(sims, out_dirs, strict=True))
        ]
        totals = _Totals(n, v_n, runs=len(members))
        # the demand rates of every block in one buffer (as long as the longest block, _block_end)
        rates = np.empty(
            min(self.n_steps, max(1, self._block_len() // len(sims))) * len(sims) * self.d_mean.size
        )
        k = 0
        while k < self.n_steps:
            t = self.times[k]
            for m in members:
                m.sim._apply_events(k, t)
            end = self._block_end(k, len(members))
            self._run_block(k, end, members, totals, rates)
            k = end
            if cfg.progress is not None:
                cfg.progress(k, self.n_steps)
        results = []
        for i, (m, out_dir) in enumerate(zip(members, out_dirs, strict=True)):
            frames = m.writer.close()
            summary = build_summary(m.sim, totals.member(i), m.sim._latency_totals(m.acc))
            if out_dir is not None:
                m.writer.write_json(out_dir, summary, m.sim.event_log)
            results.append(
                SimResult(
                    summary=summary,
                    events=m.sim.event_log,
                    out_dir=out_dir,
                    timeseries=frames[0] if frames else None,
                    service_latency=frames[1] if frames else None,
                )
            )
        return results

    def _run_block(
        self, k0: int, k1: int, members: list[_Member], totals: _Totals, rates: FloatArray | None = None
    ) -> None:
        """Steps k0..k1-1 with the fleet as it is (no event in between), every quantity an array of
        rows × sources, pieces, queues or targets, a row being one step of one replica."""
        f = self.fleet
        cfg = self.cfg
        n, v_n, b = self.n_targets, len(self.services), k1 - k0
        n_rows = b * len(members)
        sites = ~f.is_cloud
        shared = members[0].acc.acc
        lam_d = self.rates_block(k0, k1, [m.sim.rng_noise for m in members], out=rates)
        # every replica's rows at once: row i of the block is step i % b of replica i // b
        groups = None if len(members) == 1 else np.repeat(np.arange(len(members), dtype=np.int64), b)
        # per-step quantiles only where a time series is written (the summary needs none: SLO checks
        # evaluate S at the SLOs, run-level figures come from the accumulator)
        quantiles = any(m.writer.active for m in members)
        lam_w = lam_d if self.p_is_d else lam_d[:, self.p_demand] * self.p_fraction
        lam_r = self._routed(lam_w)
        nq = self.q_target.size
        lam_q = _rowcount(self.r_queue, lam_r, nq)
        speed = np.where(self.throttled[self.q_target], cfg.throttle_speed, 1.0)
        mu_q = (1.0 / self.v_cpu)[self.q_service] * speed
        servers = np.broadcast_to(self.q_servers, (n_rows, nq))
        if self.q_cloud.any():
            need = lam_q * self.v_cpu[self.q_service] / self.v_util[self.q_service]
            # pooled on at least the smallest server's cores, as the planner's latency assumes
            servers = np.where(self.q_cloud, np.maximum(self.min_pool_cores, np.ceil(need)), servers)
        cap_q = cfg.max_utilization * servers * mu_q
        # a dead site serves nothing, whatever is still routed to it (the placer moves work off it;
        # this keeps the twin honest when it cannot)
        cap_q = np.where(self.alive[self.q_target], cap_q, 0.0)
        if cfg.mode == "fluid":
            full_q = np.where(self.alive[self.q_target], servers * mu_q, 0.0)
            avail_q, wait_ms, grown = self._backlog_block(members, b, lam_q, cap_q, full_q)
        else:  # request mode keeps its own queues
            avail_q, wait_ms, grown = None, None, np.zeros((n_rows, nq))
        served_q, keep_q, busy_q, latency = self._serve_block(
            k0,
            lam_w,
            lam_q,
            mu_q,
            servers,
            cap_q,
            shared,
            avail_q=avail_q,
            wait_ms=wait_ms,
            groups=groups,
            quantiles=quantiles,
        )
        clear = _keeps_all(keep_q)
        served_r = lam_r if clear else lam_r * keep_q[:, self.r_queue]
        served_v = _rowcount(self.r_service, served_r, v_n)
        # every piece routed and served in full: what is offered is what is served (the same sums)
        offered_v = served_v if served_r is lam_w else _rowcount(self.p_service, lam_w, v_n)
        if self.d_uncovered.any():
            offered_v = offered_v + _rowcount(self.d_service, lam_d * self.d_uncovered, v_n)
        # unserved: what the plan leaves uncovered, pieces without a target, and requests that timed
        # out in a backlog (offered − served − backlog growth); lost backlogs count at a block's start
        unserved_v = np.maximum(offered_v - served_v - _rowcount(self.q_service, grown, v_n), 0.0)
        lost = np.stack([m.sim.lost_v for m in members])
        for i in np.flatnonzero(lost.any(axis=1)).tolist():
            unserved_v[i * b] += members[i].sim.lost_v / self.step_s
            members[i].sim.lost_v = np.zeros(v_n)

        # --- per target: load, utilization, power -------------------------------------------------
        alive = self.alive
        busy = _rowcount(self.q_target, busy_q, n)
        util = np.where(sites, np.minimum(busy / np.maximum(f.cores, 1e-9), 1.0), 0.0)
        cloud_need = np.where(
            self.q_cloud, served_q * self.v_cpu[self.q_service] / self.v_util[self.q_service], 0.0
        )
        cloud_cores = _rowcount(self.q_target, cloud_need, n)
        util = np.where(
            f.is_cloud, np.where(cloud_cores > 0, busy / np.maximum(cloud_cores, 1e-9), 0.0), util
        )
        u_eff = util * np.where(self.throttled, cfg.throttle_speed, 1.0)
        if cfg.power_curve == "linear":
            per_server = server_power.server_power_linear_w(u_eff, f.idle_w, f.peak_w)
        else:
            per_server = server_power.server_power_specpower_w(u_eff, f.idle_w, f.peak_w)
        it_w = np.where(sites & alive, per_server * f.n_servers, 0.0)
        it_w = np.where(f.is_cloud, cloud_cores * f.watts_per_core, it_w)
        clim = np.maximum(f.climate, 0)
        outdoor_b = np.where(f.climate >= 0, self.outdoor[clim, k0:k1].T, np.nan)  # (steps × targets)
        dew_point_b = np.where(f.climate >= 0, self.dew_point[clim, k0:k1].T, np.nan)
        cooling, ups, dist, misc = (np.zeros((n_rows, n)) for _ in range(4))
        for module, idx in self.module_groups:
            on = idx[alive[idx]]
            if on.size == 0:
                continue
            # (runs, steps, sites): the weather's terms once per step, not once per replica
            fp = module_power(
                it_w[:, on].reshape(len(members), b, on.size),
                outdoor_b[None, :, on],
                module,
                f.it_capacity_w[on],
                dew_point_b[None, :, on],
            )
            cooling[:, on], ups[:, on] = (a.reshape(n_rows, on.size) for a in (fp.cooling_w, fp.ups_loss_w))
            dist[:, on], misc[:, on] = (
                a.reshape(n_rows, on.size) for a in (fp.distribution_loss_w, fp.misc_w)
            )
        cooling = np.where(self.cooling_failed > 0, 0.0, cooling)
        cooling = np.where(f.is_cloud, it_w * (f.cloud_pue - 1.0), cooling)
        total = it_w + cooling + ups + dist + misc
        with np.errstate(divide="ignore", invalid="ignore"):
            pue = np.where(it_w > 0, total / np.where(it_w > 0, it_w, 1.0), np.nan)
        intensity_b = np.where(f.zone >= 0, self.intensity[np.maximum(f.zone, 0), k0:k1].T, 0.0)
        energy = total * self.step_h / 1000.0
        carbon = (energy.reshape(len(members), b, n) * intensity_b).reshape(n_rows, n)
        made = self.gen_target if clear else _rowcount(self.r_target, self.r_gen * keep_q[:, self.r_queue], n)
        gen = np.broadcast_to(np.where(sites & alive, made, 0.0), (n_rows, n))
        with np.errstate(divide="ignore", invalid="ignore"):
            viol = np.where(offered_v > 0, (latency.over_slo * served_v + unserved_v) / offered_v, 0.0)
        within = latency.within_slo
        if within is None:  # (request mode: from its quantiles)
            within = (latency.p95_ms <= self.v_slo_p95) & (latency.p99_ms <= self.v_slo_p99)
        slo_met = within | (served_v <= 0)
        slo_met &= unserved_v <= 1e-9 * np.maximum(offered_v, 1.0)
        mem_used = self._memory_rows(served_r)
        times = self.times[k0:k1]
        time_ns = np.asarray(times.as_unit("ns").asi8, dtype=np.int64)
        unserved_all = unserved_v.sum(axis=1) * self.step_s
        sims = [m.sim for m in members]
        synced_all, backlog_all = _sync_runs(sims, gen, alive)
        # Hard limits per site (cloud limits are inf): facility power vs the grid connection, IT power
        # vs the module's envelope, memory reserved by the pieces serving there vs the site's.
        totals.grid_cap.add(total, f.grid_power_w)
        totals.module_kw.add(it_w, f.module_it_w)
        totals.memory.add(mem_used, f.memory_gb)
        totals.add_storage(np.stack([m.sim.stored_gb for m in members]) / GB_PER_TB, b, f.storage_tb)
        runs = len(members)
        last_pue, seen = _last_finite(pue, runs)
        last_pue = np.where(seen, last_pue, np.stack([m.sim.last_pue for m in members]))
        inlet = _inlet_rows(sims, k0, k1, it_w, outdoor_b, alive, rows=quantiles)
        sov = _count_per_run(served_r[:, self.r_illegal_sov] > 0, runs)
        tier = _count_per_run(served_r[:, self.r_illegal_tier] > 0, runs)
        for i in np.flatnonzero(sov).tolist():
            sims[i].sovereignty_violations += int(sov[i])
        for i in np.flatnonzero(tier).tolist():
            sims[i].security_violations += int(tier[i])
        lead_state = self.state_codes()  # replicas (no faults) share the lead's fleet state
        for i, m in enumerate(members):
            sl = slice(i * b, (i + 1) * b)
            ms = m.sim
            ms.last_pue = last_pue[i]
            # --- battery, services, checks -------------------------------------------------------
            if b == 1:
                ms._battery(self.times[k0], total[sl][0], alive)
            unserved_req = unserved_all[sl]
            if ms.faults and (unserved_req > 0).any():
                for j, ft in enumerate(ms.faults):
                    act = np.asarray(times >= ft.start) & (unserved_req > 0)
                    if ft.end is not None:
                        act &= np.asarray(times < ft.end)
                    if act.any():
                        imp = ms.impact[j]
                        imp.unserved_requests = float(_running(imp.unserved_requests, unserved_req[act]))
            if not m.writer.active:
                continue
            assert inlet is not None
            m.writer.add_block(
                times=time_ns,
                state=np.broadcast_to(
                    lead_state if ms is self or not ms.faults else ms.state_codes(), (b, n)
                ),
                targets={
                    "load_rps": _rowcount(self.q_target, served_q[sl], n),
                    "utilization": util[sl],
                    "it_w": it_w[sl],
                    "cooling_w": cooling[sl],
                    "ups_loss_w": ups[sl],
                    "distribution_loss_w": dist[sl],
                    "misc_w": misc[sl],
                    "total_w": total[sl],
                    "pue": pue[sl],
                    "outdoor_c": outdoor_b,
                    "inlet_c": inlet[sl],
                    "carbon_intensity_g_per_kwh": intensity_b,
                    "carbon_g": carbon[sl],
                    "energy_kwh": energy[sl],
                    "sync_backlog_gb": backlog_all[sl],
                },
                services={
                    "p50_ms": latency.p50_ms[sl],
                    "p95_ms": latency.p95_ms[sl],
                    "p99_ms": latency.p99_ms[sl],
                    "mean_ms": latency.mean_ms[sl],
                    "served_rps": served_v[sl],
                    "unserved_rps": unserved_v[sl],
                    "slo_violation_fraction": viol[sl],
                },
                slo_met=slo_met[sl],
            )
        totals.add_block(
            self,
            energy=energy,
            parts=(it_w, cooling, ups, dist, misc, total),
            carbon=carbon,
            served_r=served_r,
            unserved_v=unserved_v,
            served_v=served_v,
            synced=synced_all,
            backlog=backlog_all,
            cloud_cores=cloud_cores,
            violated=~slo_met,
        )

    def _latency_totals(self, acc: AccumulatorPart) -> Any:
        """Run-level latency source for the summary (the request mode uses every request instead)."""
        return acc

    def _serve_block(
        self,
        k0: int,
        lam_w: FloatArray,
        lam_q: FloatArray,
        mu_q: FloatArray,
        servers: FloatArray,
        cap_q: FloatArray,
        acc: RunAccumulator,
        *,
        avail_q: FloatArray | None = None,
        wait_ms: FloatArray | None = None,
        groups: IntArray | None = None,
        quantiles: bool = True,
    ) -> tuple[FloatArray, FloatArray, FloatArray, BlockLatency]:
        """Fluid queues over a block: served rate, kept share and busy servers per step and queue, and
        the block's latency. ``avail_q``: the served rate when a backlog decides it (servers flat out;
        the M/M/c part of the latency is then taken at cap_q); ``wait_ms``: the backlog's mean extra
        wait per step and queue (None: none); ``groups``: each row's run in ``acc``; ``quantiles``:
        whether per-step p50/p95/p99 are needed (block_latency)."""
        served_q = np.minimum(lam_q, cap_q) if avail_q is None else avail_q
        with np.errstate(divide="ignore", invalid="ignore"):
            keep_q = np.where(lam_q > 0, served_q / np.where(lam_q > 0, lam_q, 1.0), 1.0)
        in_queue = served_q if avail_q is None else np.minimum(served_q, cap_q)
        pw_q = erlang_c(in_queue, mu_q, shared_row(servers)) if served_q.size else np.zeros(served_q.shape)
        theta_q = servers * mu_q - in_queue
        busy_q = served_q / mu_q
        lam_r = self._routed(lam_w)
        served_r = lam_r if _keeps_all(keep_q) else lam_r * keep_q[:, self.r_queue]
        atom_w = _rowcount(self.r_atom, served_r, self.atoms.size)
        latency = block_latency(
            self.atoms,
            self.by_service,
            atom_w,
            pw_q,
            np.broadcast_to(mu_q, served_q.shape),
            theta_q,
            self.v_slo_bound,
            acc,
            self.step_s,
            grid_points=self.cfg.latency_grid_points,
            queue_wait_ms=wait_ms,
            slo_ms=self.v_slo_ms,
            quantiles=quantiles,
            groups=groups,
        )
        return served_q, keep_q, busy_q, latency

    def _backlog_block(
        self, members: list[_Member], b: int, lam_q: FloatArray, cap_q: FloatArray, full_q: FloatArray
    ) -> tuple[FloatArray | None, FloatArray | None, FloatArray]:
        """The fluid queue of each (target, service) across steps. Below ``cap_q`` (max_utilization of
        the servers) a step serves what arrives; above it the servers run flat out (``full_q``) and what
        they cannot serve waits, q_t = min(max(0, q_{t−1} + a_t − full_t), full · timeout): what would
        wait longer than the request timeout is dropped (unserved), as in request mode. Returns per row
        and queue: the served rate (None: every step below cap_q with nothing waiting, the common case,
        computed as before), the backlog's mean extra wait (ms) and the backlog's growth (rate)."""
        dt = self.step_s
        grown = np.zeros_like(lam_q)
        if not any(m.sim.q_backlog.any() for m in members) and bool((lam_q <= cap_q).all()):
            return None, None, grown
        served = np.minimum(lam_q, cap_q)
        wait = np.zeros_like(lam_q)
        limit = full_q * self.cfg.request_timeout_s  # requests that can wait at most the timeout
        for i, m in enumerate(members):
            q = m.sim.q_backlog
            for j in range(i * b, (i + 1) * b):
                over = (lam_q[j] > cap_q[j]) | (q > 0)
                if not over.any():
                    continue
                avail = lam_q[j] + q / dt
                out = np.where(over, np.minimum(avail, full_q[j]), served[j])
                new = np.where(over, np.minimum((avail - out) * dt, limit[j]), 0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    wait[j] = np.where(full_q[j] > 0, 500.0 * (q + new) / full_q[j], 0.0)
                served[j] = out
                grown[j] = (new - q) / dt
                q = new
            m.sim.q_backlog = q
        return served, wait, grown

    def _thermal_block(
        self, k0: int, k1: int, it_w: FloatArray, outdoor: FloatArray, alive: BoolArray
    ) -> FloatArray:
        """Inlet temperature at the start of each step of the block (steps × targets) while a site warms
        or cools down (step by step: its next state depends on this one's); evolves it."""
        rows = np.empty((k1 - k0, self.n_targets))
        for j in range(k1 - k0):
            rows[j] = self.inlet
            self._thermal(k0 + j, self.times[k0 + j], it_w[j], outdoor[j], alive)
        return rows

    def _thermal(
        self, k: int, t: pd.Timestamp, it_w: FloatArray, outdoor: FloatArray, alive: BoolArray
    ) -> None:
        cfg = self.cfg
        sites = ~self.fleet.is_cloud
        hot = sites & (self.cooling_failed > 0)
        cold_ok = sites & ~hot
        out = np.where(np.isfinite(outdoor), outdoor, cfg.setpoint_inlet_c)
        power = np.where(alive, it_w, 0.0)
        new = self.inlet.copy()
        if hot.any():
            idx = np.flatnonzero(hot)
            t0 = self.inlet[idx]
            new[idx] = inlet_temperature_c(self.step_s, power[idx], t0, out[idx])
            for threshold, action, done in (
                (cfg.throttle_inlet_c, "throttle", self.throttled),
                (cfg.shutdown_inlet_c, "shutdown", self.shut_thermal),
            ):
                cross = idx[(new[idx] >= threshold) & ~done[idx] & alive[idx]]
                if cross.size:
                    secs = time_to_threshold_s(
                        power[cross], self.inlet[cross], out[cross], threshold_c=threshold
                    )
                    for s_i, sec in zip(cross.tolist(), secs.tolist(), strict=True):
                        when = (t + pd.Timedelta(seconds=min(max(sec, 0.0), self.step_s))).ceil("s")
                        self._push(when, action, s_i, self._cause.get(s_i, -1))
        down = cold_ok & ~alive
        if down.any():
            idx = np.flatnonzero(down)
            new[idx] = inlet_temperature_c(self.step_s, 0.0, self.inlet[idx], out[idx])
        up = cold_ok & alive
        new[up] = cfg.setpoint_inlet_c
        self.inlet = np.where(sites, new, np.nan)

    def _battery(self, t: pd.Timestamp, total_w: FloatArray, alive: BoolArray) -> None:
        f = self.fleet
        on_batt = ~f.is_cloud & (self.grid_out > 0) & alive
        if not on_batt.any():
            return
        idx = np.flatnonzero(on_batt)
        eff = f.ups_eff[idx]
        drain = total_w[idx] * self.step_s / (3.6e6 * eff)
        empty = drain >= self.battery[idx]
        for s_i, e_kwh, load, ef in zip(
            idx[empty].tolist(),
            self.battery[idx][empty].tolist(),
            total_w[idx][empty].tolist(),
            eff[empty].tolist(),
            strict=True,
        ):
            sec = e_kwh * 3.6e6 * ef / load if load > 0 else self.step_s
            self._push(
                (t + pd.Timedelta(seconds=min(sec, self.step_s))).ceil("s"),
                "battery_empty",
                s_i,
                self._cause.get(s_i, -1),
            )
        self.battery[idx] = np.maximum(self.battery[idx] - drain, 0.0)


def _sync_runs(
    sims: Sequence[Simulation], gen: FloatArray, alive: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Data synced to the cloud and the backlog left, per step and target, for each run of a pass
    (``gen``: (runs · steps) × targets, run by run): a fluid queue q_t = max(0, q_{t-1} + gen_t − uplink)
    where the link is up, q_t = q_{t-1} + gen_t where not. Evolves each run's backlog. Replicas share
    the lead's link state (they have no faults)."""
    lead = sims[0]
    n_runs = len(sims)
    sites = ~lead.fleet.is_cloud
    cap = lead.cfg.uplink_gbps / 8.0 * lead.step_s
    link_ok = (lead.link_cut == 0) & alive
    g = gen.reshape(n_runs, gen.shape[0] // n_runs, gen.shape[1])
    start = np.stack([s.backlog for s in sims])  # (runs, targets)
    synced = np.zeros_like(g)
    backlog = np.zeros_like(g)
    cut = np.flatnonzero(sites & ~link_ok)
    if cut.size:  # nothing leaves: the backlog is the running sum (along each run's steps)
        stacked = np.concatenate([start[:, None, cut], g[:, :, cut]], axis=1)
        backlog[:, :, cut] = np.cumsum(stacked, axis=1)[:, 1:]
    ok = link_ok & sites
    # where nothing waits and no step makes more than the uplink carries, everything made in a step
    # leaves in it; elsewhere step through the queue (for every run: a clear one gives the same numbers)
    clear = ok & (start == 0) & (g <= cap).all(axis=1)  # (runs, targets)
    np.copyto(synced, g, where=clear[:, None, :])
    busy = np.flatnonzero(ok & ~clear.all(axis=0))
    q = start[:, busy]
    for j in range(g.shape[1] if busy.size else 0):
        pool = q + g[:, j, busy]
        sent = np.minimum(pool, cap)
        q = pool - sent
        synced[:, j, busy] = sent
        backlog[:, j, busy] = q
    for i, s in enumerate(sims):
        s.backlog = backlog[i, -1].copy()
    return synced.reshape(gen.shape), backlog.reshape(gen.shape)


def _keeps_all(keep_q: FloatArray) -> bool:
    """Whether every queue serves all it is offered in every row (kept share exactly 1: a served rate
    is then its arrival rate, x · 1.0 = x, and needs no product)."""
    return bool((keep_q == 1.0).all())


def _inlet_rows(
    sims: Sequence[Simulation],
    k0: int,
    k1: int,
    it_w: FloatArray,
    outdoor: FloatArray,
    alive: BoolArray,
    *,
    rows: bool = True,
) -> FloatArray | None:
    """Inlet temperature at the start of each step of the block, for each run of a pass (rows run by
    run, as ``it_w``; ``outdoor`` steps × targets, the same for every run); evolves each run's. Where
    cooling works at every alive site (all runs of a pass of replicas: they have no faults) cooling holds
    the set point from the block's second step on, for every run at once; a run with a site warming or
    cooling down steps through (``_thermal_block``). ``rows`` False: only the evolution (None back)."""
    lead = sims[0]
    b, n = k1 - k0, lead.n_targets
    sites = ~lead.fleet.is_cloud
    held = np.where(sites, lead.cfg.setpoint_inlet_c, np.nan)
    out = None
    if rows:
        out = np.empty((len(sims), b, n))
        out[:, 0] = np.stack([s.inlet for s in sims])
        out[:, 1:] = held
    cooling_failed = np.stack([s.cooling_failed for s in sims]) > 0
    moving = np.asarray((sites & (cooling_failed | ~alive)).any(axis=1))
    for i, s in enumerate(sims):
        if moving[i]:
            sl = slice(i * b, (i + 1) * b)
            got = s._thermal_block(k0, k1, it_w[sl], outdoor, alive)
            if out is not None:
                out[i] = got
        else:
            s.inlet = held.copy()
    return None if out is None else out.reshape(-1, n)


def _last_finite(rows: FloatArray, runs: int) -> tuple[FloatArray, BoolArray]:
    """Each run's last finite value per column of a block (rows run by run), and whether it has one."""
    per_run = rows.reshape(runs, rows.shape[0] // runs, rows.shape[1])
    finite = np.isfinite(per_run)
    last = per_run.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.take_along_axis(per_run, last[:, None, :], axis=1)[:, 0], np.asarray(finite.any(axis=1))


def _count_per_run(hit: BoolArray, runs: int) -> IntArray:
    """How many entries of each run's rows (a block's rows, run by run) are true."""
    return np.asarray(np.count_nonzero(hit.reshape(runs, -1), axis=1), dtype=np.int64)


def _running_rows(start: FloatArray, rows: FloatArray) -> FloatArray:
    """start + rows[0], then + rows[1], …: every partial sum (steps × …), added in step order."""
    return np.cumsum(np.concatenate([np.asarray(start, dtype=np.float64)[None], rows]), axis=0)[1:]


def _running(start: Any, rows: Any) -> Any:
    """start + rows[0] + rows[1] + …, added in step order (so a total does not depend on how steps are
    grouped into blocks)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape[0] == 0:
        return start
    return _running_rows(start, rows)[-1]


class _Limit:
    """A hard limit per target: steps it was exceeded and the worst excess (units of ``used``), for each
    run of a pass (arrays runs × targets)."""

    def __init__(self, n: int, runs: int = 1) -> None:
        self.steps = np.zeros((runs, n), dtype=np.int64)
        self.worst = np.zeros((runs, n))

    def add(self, used: FloatArray, limit: FloatArray) -> None:
        """``used``: (runs · steps) × targets, run by run; each run's counter gets its own steps."""
        over: BoolArray = np.asarray(used > limit * (1.0 + 1e-9))
        if not over.any():  # (the usual case: nothing to count)
            return
        shape = (self.steps.shape[0], used.shape[0] // self.steps.shape[0], used.shape[1])
        self.steps += over.reshape(shape).sum(axis=1)
        excess = np.where(over, used - limit, -np.inf).reshape(shape).max(axis=1)
        hit = over.reshape(shape).any(axis=1)
        self.worst = np.where(hit, np.maximum(self.worst, excess), self.worst)

    def member(self, i: int) -> _Limit:
        """Run i's counter, arrays over targets (as summary.json reads it)."""
        one = _Limit(self.steps.shape[1])
        one.steps, one.worst = self.steps[i], self.worst[i]
        return one


class _Totals:
    """Run totals, accumulated block by block in step order (for summary.json), for each run of a pass:
    arrays carry a leading run axis (``member(i)`` gives run i's totals as summary.json reads them)."""

    PARTS = ("it", "cooling", "ups_loss", "distribution_loss", "misc", "total")

    def __init__(self, n: int, v_n: int, runs: int = 1) -> None:
        def z(*shape: int, dtype: Any = np.float64) -> Any:
            return np.zeros((runs, *shape), dtype=dtype)

        self.runs = runs
        self.energy_kwh = z(n)
        self.parts_kwh = {k: z(n) for k in self.PARTS}
        self.carbon_g = z(n)
        self.energy_cost = z(n)
        self.cloud_cost = z()
        self.network_cost = z()
        self.lines = {k: z() for k in LOAD_LINES}  # placement.ledger's cost lines, this run
        self.transport_kwh = z()
        self.synced_gb = z()
        self.served_requests = z(v_n)
        self.unserved_requests = z(v_n)
        self.violated_requests = z(v_n)  # requests in steps where the service missed its SLO
        self.steps_violated = z(v_n, dtype=np.int64)
        self.max_backlog_gb = z()
        self.grid_cap = _Limit(n, runs)  # W of facility power over the site's grid_power_kw
        self.module_kw = _Limit(n, runs)  # W of IT power over the module's max_it_kw
        self.memory = _Limit(n, runs)  # GB reserved over the site's memory
        self.storage = _Limit(n, runs)  # TB of retained raw data over the site's storage
        self.stored_tb_steps = z(n)  # TB × steps, for the mean over the run
        self.stored_tb_max = z(n)
        self.steps = 0

    def member(self, i: int) -> _Totals:
        """Run i's totals: arrays over targets or services, plain floats for the scalars."""
        one = _Totals(self.energy_kwh.shape[1], self.served_requests.shape[1])
        for name, value in vars(self).items():
            if isinstance(value, dict):
                value = {k: v[i] if v.ndim > 1 else float(v[i]) for k, v in value.items()}
            elif isinstance(value, _Limit):
                value = value.member(i)
            elif isinstance(value, np.ndarray):
                value = value[i] if value.ndim > 1 else float(value[i])
            setattr(one, name, value)
        one.runs = 1
        return one

    def add_storage(self, stored_tb: FloatArray, steps: int, capacity_tb: FloatArray) -> None:
        """Retained raw data per run and target (runs × targets), constant over a block's ``steps`` (it
        follows the routing)."""
        self.storage.add(np.repeat(stored_tb, steps, axis=0), capacity_tb)
        self.stored_tb_steps = self.stored_tb_steps + stored_tb * steps
        self.stored_tb_max = np.maximum(self.stored_tb_max, stored_tb)
        self.steps += steps

    def add_block(
        self,
        sim: Simulation,
        *,
        energy: FloatArray,
        parts: tuple[FloatArray, ...],
        carbon: FloatArray,
        served_r: FloatArray,
        unserved_v: FloatArray,
        served_v: FloatArray,
        synced: FloatArray,
        backlog: FloatArray,
        cloud_cores: FloatArray,
        violated: BoolArray,
    ) -> None:
        """Add a block's steps to each run's totals: every argument is (runs · steps) × …, run by run
        (the replicas of a pass share one set of numpy calls). Costs are priced by the planner's ledger
        (sim.fleet.step_cost_lines), one step per row; each run's sums are added in step order."""
        h = sim.step_h
        runs = self.runs
        self.energy_kwh = _running_runs(self.energy_kwh, energy, runs)
        for name, w in zip(self.PARTS, parts, strict=True):
            self.parts_kwh[name] = _running_runs(self.parts_kwh[name], w * (h / 1000.0), runs)
        self.carbon_g = _running_runs(self.carbon_g, carbon, runs)
        cost = step_cost_lines(
            sim, energy=energy, carbon=carbon, served_r=served_r, synced=synced, cloud_cores=cloud_cores
        )
        lines = cost.lines
        for name, per_step in lines.items():
            self.lines[name] = _running_runs(self.lines[name], per_step, runs)
        self.energy_cost = _running_runs(self.energy_cost, cost.energy_cost, runs)
        cloud = (
            lines["cloud_compute"] + lines["cloud_memory"] + lines["cloud_egress"] + lines["cloud_storage"]
        )
        self.cloud_cost = _running_runs(self.cloud_cost, cloud, runs)
        network = lines["network_backhaul"] + lines["data_sync"] + lines["site_transport"]
        self.network_cost = _running_runs(self.network_cost, network, runs)
        self.transport_kwh = _running_runs(self.transport_kwh, cost.transport_kwh, runs)
        self.synced_gb = _running_runs(self.synced_gb, synced.sum(axis=1), runs)
        self.served_requests = _running_runs(self.served_requests, served_v * sim.step_s, runs)
        self.unserved_requests = _running_runs(self.unserved_requests, unserved_v * sim.step_s, runs)
        self.violated_requests = _running_runs(
            self.violated_requests, np.where(violated, (served_v + unserved_v) * sim.step_s, 0.0), runs
        )
        shape = (runs, violated.shape[0] // runs, violated.shape[1])
        self.steps_violated += violated.reshape(shape).sum(axis=1)
        peak = backlog.reshape(runs, -1).max(axis=1, initial=0.0)
        self.max_backlog_gb = np.maximum(self.max_backlog_gb, peak)


def _running_runs(starts: FloatArray, rows: Any, n_runs: int) -> FloatArray:
    """For each run i: starts[i] + its rows (rows i·b … i·b + b − 1), added in step order (cumulative
    sums along the step axis: the same additions, bit for bit, as ``_running`` run by run)."""
    rows = np.asarray(rows, dtype=np.float64)
    rows = rows.reshape(n_runs, rows.shape[0] // n_runs, *rows.shape[1:])
    if rows.shape[1] <= RUNNING_LOOP_STEPS:  # a few steps (replicas' blocks): add them one by one
        total = np.array(starts, dtype=np.float64)
        for j in range(rows.shape[1]):
            total += rows[:, j]
        return total
    first = np.asarray(starts, dtype=np.float64)[:, None]
    return np.asarray(np.cumsum(np.concatenate([first, rows], axis=1), axis=1)[:, -1], dtype=np.float64)


#: Up to this many steps per run, _running_runs adds step by step (one small add per step) instead of
#: a cumulative sum over the whole block (which writes every partial sum): the same additions.
RUNNING_LOOP_STEPS = 64


def simulate(
    scenario: Scenario,
    plan: Plan,
    config: SimConfig | None = None,
    *,
    faults: FaultSpec | None = None,
    out_dir: Path | None = None,
    plan_path: str | Path = "plan.json",
    keep_frames: bool = False,
) -> SimResult:
    """Run the digital twin; write DIR/timeseries.parquet, service_latency.parquet, events.json and
    summary.json when ``out_dir`` is given (see docs/simulator.md for the schema)."""
    cfg = config or SimConfig()
    sim = Simulation.create(scenario, plan, cfg, faults, plan_path)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    return sim.run(out_dir, keep_frames=keep_frames)


def simulate_replicas(
    scenario: Scenario,
    plan: Plan,
    config: SimConfig | None = None,
    *,
    seeds: Sequence[int],
    faults: FaultSpec | None = None,
    out_dirs: Sequence[Path | None] | None = None,
    plan_path: str | Path = "plan.json",
    keep_frames: bool = False,
) -> list[SimResult]:
    """One run per seed of the same scenario and plan; result i is what ``simulate`` gives with
    ``seed=seeds[i]`` (bit for bit). Fluid runs without faults share one pass: each block holds every
    replica's steps as rows of the same arrays. With faults (whose random draws, re-placements and
    thermal or battery chains differ per seed), or in request mode, the replicas run one after another
    on one fleet. ``out_dirs[i]``: where replica i writes its files (None: nowhere)."""
    cfg = config or SimConfig()
    dirs: list[Path | None] = list(out_dirs) if out_dirs is not None else [None] * len(seeds)
    if len(dirs) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(dirs)} output directories")
    for d in dirs:
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
    if not seeds:
        return []
    spec = faults or FaultSpec(())
    if cfg.mode == "fluid" and not spec.faults and spec.random is None:
        lead = Simulation(scenario, plan, replace(cfg, seed=seeds[0]), None, plan_path)
        sims = [lead] + [lead.replica(s) for s in seeds[1:]]
        return lead._run_members(sims, dirs, keep_frames=keep_frames)
    fleet = build_fleet(scenario, plan, plan_path)
    out: list[SimResult] = []
    for seed, d in zip(seeds, dirs, strict=True):
        one = replace(cfg, seed=seed)
        if cfg.mode == "requests":
            from microdc.sim.requests import RequestSimulation

            sim: Simulation = RequestSimulation(scenario, plan, one, faults, plan_path)
        else:
            sim = Simulation(scenario, plan, one, faults, plan_path, fleet=fleet)
        out.append(sim.run(d, keep_frames=keep_frames))
    return out


__all__ = ["HOURS_PER_YEAR", "STATES", "SimResult", "Simulation", "simulate", "simulate_replicas"]
