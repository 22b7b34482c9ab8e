"""Request-level mode: a discrete-event simulation of individual requests, the fluid mode's ground truth.

Each piece's requests arrive as a Poisson process at the step's rate (arrival times uniform within the
step); each queue (service × target) is a FCFS multi-server queue with exponential service times, its
servers' next-free times kept in a heap across steps (so queues carry over step boundaries). A request's
latency is its piece's network RTT plus its wait plus its service. A request that would wait longer
than ``request_timeout_s`` is dropped (unserved), the analogue of the fluid mode's load shedding.
Everything else (power, faults, placement) is the fluid engine's, driven by the realized load.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.placement.plan import Plan
from microdc.sim.config import SimConfig
from microdc.sim.engine import FloatArray, IntArray, Simulation
from microdc.sim.faults import FaultSpec
from microdc.sim.latency import (
    LEVELS,
    AccumulatorPart,
    BlockLatency,
    RunAccumulator,
    StepLatency,
)


class RequestTotals:
    """Run-level latency of every request, streamed into a fine log histogram per service: memory
    stays flat however long the run (the exact list of latencies grew by about 2.6 GB per simulated
    hour of eu-sovereign). Bins are ``1 + 1/BINS_PER_E`` wide (relative), so a quantile read with
    log-linear interpolation inside its bin is within about 2·10⁻⁵ of the exact one; the mean is
    exact. Histograms of two runs (or replicas) merge by adding counts."""

    LO_MS = 1e-3
    HI_MS = 1e8
    BINS_PER_E = 25_000  # bins per factor e: relative bin width 4e-5

    def __init__(self, n_services: int) -> None:
        self._log_lo = float(np.log(self.LO_MS))
        n_bins = int(np.ceil((np.log(self.HI_MS) - self._log_lo) * self.BINS_PER_E)) + 2
        self.counts = np.zeros((n_services, n_bins), dtype=np.int64)  # [0]: below LO, [-1]: above HI
        self.weight = np.zeros(n_services)
        self.total_ms = np.zeros(n_services)

    def _bin(self, x_ms: FloatArray) -> npt.NDArray[np.int64]:
        pos = (np.log(np.maximum(x_ms, 1e-300)) - self._log_lo) * self.BINS_PER_E
        return np.clip(np.floor(pos).astype(np.int64) + 1, 0, self.counts.shape[1] - 1)

    def _edge(self, k: FloatArray | float) -> FloatArray:
        """Lower edge (ms) of bin k (k may be fractional: log-linear inside a bin)."""
        return np.asarray(np.exp(self._log_lo + (np.asarray(k) - 1.0) / self.BINS_PER_E), dtype=np.float64)

    def add(self, v: int, latencies_ms: FloatArray) -> None:
        if latencies_ms.size:
            bins, n = np.unique(self._bin(latencies_ms), return_counts=True)
            self.counts[v, bins] += n
            self.weight[v] += latencies_ms.size
            self.total_ms[v] += float(latencies_ms.sum())

    def merge(self, other: RequestTotals) -> None:
        self.counts += other.counts
        self.weight += other.weight
        self.total_ms += other.total_ms

    def quantile_ms(self, v: int, p: float) -> float:
        n = self.weight[v]
        if n <= 0:
            return float("nan")
        cum = np.cumsum(self.counts[v])
        target = p * n
        k = int(np.searchsorted(cum, target, side="left"))
        before = float(cum[k - 1]) if k > 0 else 0.0
        inside = float(self.counts[v, k])
        frac = (target - before) / inside if inside > 0 else 0.0
        return float(self._edge(k + min(max(frac, 0.0), 1.0)))

    def mean_ms(self, v: int) -> float:
        return float(self.total_ms[v] / self.weight[v]) if self.weight[v] > 0 else float("nan")

    def fraction_over(self, v: int, x_ms: float) -> float:
        n = self.weight[v]
        if n <= 0 or not np.isfinite(x_ms):
            return 0.0
        k = int(self._bin(np.array([x_ms]))[0])
        lo, hi = float(self._edge(k)), float(self._edge(k + 1))
        share = (np.log(hi) - np.log(x_ms)) / (np.log(hi) - np.log(lo)) if hi > lo else 0.0
        above = float(self.counts[v, k + 1 :].sum()) + float(self.counts[v, k]) * min(max(share, 0.0), 1.0)
        return above / n


class RequestSimulation(Simulation):
    def __init__(
        self,
        scenario: Scenario,
        plan: Plan,
        config: SimConfig,
        faults: FaultSpec | None = None,
        plan_path: str | Path = "plan.json",
    ) -> None:
        self._heaps: dict[tuple[int, int], list[float]] = {}
        super().__init__(scenario, plan, config, faults, plan_path)
        self.request_totals = RequestTotals(len(self.services))

    def _on_reroute(self) -> None:
        live = {
            (int(t), int(v)) for t, v in zip(self.q_target.tolist(), self.q_service.tolist(), strict=True)
        }
        alive = self.alive
        self._heaps = {key: h for key, h in self._heaps.items() if key in live and alive[key[0]]}

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
        """Requests are simulated one step after another (queues carry over), the block stacked."""
        rows = [
            self._serve(k0 + j, lam_w[j], lam_q[j], mu_q, servers[j], cap_q[j]) for j in range(lam_w.shape[0])
        ]
        lat = [r[3] for r in rows]
        block = BlockLatency(
            *(
                np.array([getattr(x, f) for x in lat])
                for f in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "over_slo")
            )
        )
        return (
            np.array([r[0] for r in rows]),
            np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]),
            block,
        )

    def _serve(
        self,
        k: int,
        lam_w: FloatArray,
        lam_q: FloatArray,
        mu_q: FloatArray,
        servers: FloatArray,
        cap_q: FloatArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray, StepLatency]:
        rng = self.rng_requests
        dt = self.step_s
        t0 = k * dt
        n_q = self.q_target.size
        n_v = len(self.services)
        routed = np.flatnonzero((self.route >= 0) & (lam_w > 0))
        counts = rng.poisson(lam_w[routed] * dt)
        piece = np.repeat(routed, counts)
        arrive = t0 + rng.random(piece.size) * dt
        queue = self.p_queue[piece]
        service = rng.exponential(1.0, piece.size) / mu_q[queue]
        order = np.lexsort((arrive, queue))
        piece, arrive, queue, service = piece[order], arrive[order], queue[order], service[order]
        start = np.empty_like(arrive)
        dropped = np.zeros(piece.size, dtype=bool)
        timeout = self.cfg.request_timeout_s
        bounds = (
            np.flatnonzero(np.r_[True, queue[1:] != queue[:-1], True]) if piece.size else np.zeros(1, int)
        )
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            q = int(queue[a])
            key = (int(self.q_target[q]), int(self.q_service[q]))
            heap = self._heaps.setdefault(key, [])
            c = int(servers[q])
            while len(heap) < c:
                heapq.heappush(heap, t0)
            while len(heap) > c:
                heapq.heappop(heap)
            arr_l = arrive[a:b].tolist()
            svc_l = service[a:b].tolist()
            st: list[float] = []
            dr: list[bool] = []
            for x, s in zip(arr_l, svc_l, strict=True):
                free = heap[0]
                begin = free if free > x else x
                if begin - x > timeout:
                    st.append(x)
                    dr.append(True)
                    continue
                heapq.heapreplace(heap, begin + s)
                st.append(begin)
                dr.append(False)
            start[a:b] = st
            dropped[a:b] = dr
        ok = ~dropped
        lat_ms = self.p_rtt[piece[ok]] + 1000.0 * (start[ok] - arrive[ok] + service[ok])
        served_count = np.bincount(queue[ok], minlength=n_q).astype(np.float64)
        arrivals = np.bincount(queue, minlength=n_q).astype(np.float64)
        served_q = served_count / dt
        keep_q = np.where(arrivals > 0, served_count / np.maximum(arrivals, 1.0), 1.0)
        busy_q = np.bincount(queue[ok], weights=service[ok], minlength=n_q) / dt
        svc_of = self.q_service[queue[ok]]
        nan = np.full(n_v, np.nan)
        out = StepLatency(nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(n_v))
        for v in range(n_v):
            x = lat_ms[svc_of == v]
            if x.size == 0:
                continue
            out.p50_ms[v], out.p95_ms[v], out.p99_ms[v] = (float(z) for z in np.quantile(x, LEVELS))
            out.mean_ms[v] = float(x.mean())
            if np.isfinite(self.v_slo_bound[v]):
                out.over_slo[v] = float(np.mean(x > self.v_slo_bound[v]))
            self.request_totals.add(v, x)
        return served_q, keep_q, busy_q, out

    def _latency_totals(self, acc: AccumulatorPart) -> Any:
        return self.request_totals
