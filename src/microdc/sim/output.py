"""The simulator's output files (schema: docs/simulator.md).

- ``timeseries.parquet``: one row per step × target (built sites, then ``cloud:<id>``);
- ``service_latency.parquet``: one row per step × service;
- ``events.json``: the fault timeline, with what each event displaced and where it went;
- ``summary.json``: headline figures.

Parquet files are written in row groups as the run goes (memory stays bounded on long runs).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from microdc.sim.engine import Simulation, _Limit, _Totals

FloatArray = npt.NDArray[np.float64]

STATE_NAMES = ("down", "throttled", "cooling_failure", "grid_outage", "link_down", "untrusted", "up")

TIMESERIES_COLUMNS = (
    "time",
    "site",
    "state",
    "load_rps",
    "utilization",
    "it_w",
    "cooling_w",
    "ups_loss_w",
    "distribution_loss_w",
    "misc_w",
    "total_w",
    "pue",
    "outdoor_c",
    "inlet_c",
    "carbon_intensity_g_per_kwh",
    "carbon_g",
    "energy_kwh",
    "sync_backlog_gb",
)
LATENCY_COLUMNS = (
    "time",
    "service",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "served_rps",
    "unserved_rps",
    "slo_violation_fraction",
    "slo_met",
)
_TS_FLOATS = TIMESERIES_COLUMNS[3:]
_LAT_FLOATS = LATENCY_COLUMNS[2:-1]


class _Buffer:
    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.cols: dict[str, list[FloatArray]] = {n: [] for n in names}
        self.times: list[int] = []
        self.codes: list[npt.NDArray[np.int64]] = []

    def clear(self) -> None:
        for v in self.cols.values():
            v.clear()
        self.times.clear()
        self.codes.clear()


class OutputWriter:
    """Buffers steps and writes parquet row groups; optionally keeps the tables in memory."""

    def __init__(
        self,
        out_dir: Path | None,
        targets: list[str],
        services: list[str],
        rows_per_group: int,
        *,
        keep_frames: bool = False,
    ) -> None:
        self.out_dir = out_dir
        self.targets = targets
        self.services = services
        self.steps_per_group = max(1, rows_per_group // max(1, len(targets)))
        self.keep = keep_frames
        self.ts = _Buffer(_TS_FLOATS)
        self.lat = _Buffer(_LAT_FLOATS)
        self.met: list[npt.NDArray[np.bool_]] = []
        self.kept_ts: list[pa.Table] = []
        self.kept_lat: list[pa.Table] = []
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._ts_schema = pa.schema(
            [
                ("time", pa.timestamp("ns", tz="UTC")),
                ("site", pa.dictionary(pa.int32(), pa.string())),
                ("state", pa.dictionary(pa.int8(), pa.string())),
            ]
            + [(n, pa.float64()) for n in _TS_FLOATS]
        )
        self._lat_schema = pa.schema(
            [("time", pa.timestamp("ns", tz="UTC")), ("service", pa.dictionary(pa.int32(), pa.string()))]
            + [(n, pa.float64()) for n in _LAT_FLOATS]
            + [("slo_met", pa.bool_())]
        )

    @property
    def active(self) -> bool:
        """Whether anything reads the tables (a folder to write, or frames to keep)."""
        return self.out_dir is not None or self.keep

    def add_block(
        self,
        *,
        times: npt.NDArray[np.int64],
        state: npt.NDArray[np.int64],
        targets: dict[str, FloatArray],
        services: dict[str, FloatArray],
        slo_met: npt.NDArray[np.bool_],
    ) -> None:
        """A block of steps: ``times`` (ns, steps), ``state`` and each of ``targets`` (steps × targets,
        every timeseries column), each of ``services`` and ``slo_met`` (steps × services). Row groups
        hold ``steps_per_group`` steps whatever the block length, so files do not depend on it."""
        if not self.active:
            return  # nothing would read the tables: do not build them
        b, done = len(times), 0
        while done < b:
            end = min(b, done + self.steps_per_group - len(self.ts.times))
            part = slice(done, end)
            for name in _TS_FLOATS:
                self.ts.cols[name].append(np.asarray(targets[name][part], dtype=np.float64))
            self.ts.codes.append(np.asarray(state[part], dtype=np.int64))
            self.ts.times.extend(int(x) for x in times[part])
            for name in _LAT_FLOATS:
                self.lat.cols[name].append(np.asarray(services[name][part], dtype=np.float64))
            self.lat.times.extend(int(x) for x in times[part])
            self.met.append(np.asarray(slo_met[part], dtype=bool))
            done = end
            if len(self.ts.times) >= self.steps_per_group:
                self.flush()

    def _table_ts(self) -> pa.Table:
        n_steps, n = len(self.ts.times), len(self.targets)
        times = np.repeat(np.array(self.ts.times, dtype=np.int64), n)
        site_idx = np.tile(np.arange(n, dtype=np.int32), n_steps)
        state_idx = np.concatenate(self.ts.codes).ravel().astype(np.int8)
        arrays: list[pa.Array] = [
            pa.array(times, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            pa.DictionaryArray.from_arrays(pa.array(site_idx), pa.array(self.targets, type=pa.string())),
            pa.DictionaryArray.from_arrays(
                pa.array(state_idx), pa.array(list(STATE_NAMES), type=pa.string())
            ),
        ]
        arrays += [pa.array(np.concatenate(self.ts.cols[c]).ravel()) for c in _TS_FLOATS]
        return pa.Table.from_arrays(arrays, schema=self._ts_schema)

    def _table_lat(self) -> pa.Table:
        n_steps, n = len(self.lat.times), len(self.services)
        times = np.repeat(np.array(self.lat.times, dtype=np.int64), n)
        idx = np.tile(np.arange(n, dtype=np.int32), n_steps)
        arrays: list[pa.Array] = [
            pa.array(times, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(self.services, type=pa.string())),
        ]
        arrays += [pa.array(np.concatenate(self.lat.cols[c]).ravel()) for c in _LAT_FLOATS]
        arrays.append(pa.array(np.concatenate(self.met).ravel()))
        return pa.Table.from_arrays(arrays, schema=self._lat_schema)

    def _write(self, name: str, table: pa.Table) -> None:
        if self.out_dir is None:
            return
        w = self._writers.get(name)
        if w is None:
            w = pq.ParquetWriter(self.out_dir / name, table.schema, compression="zstd")
            self._writers[name] = w
        w.write_table(table)

    def flush(self) -> None:
        if not self.ts.times:
            return
        ts, lat = self._table_ts(), self._table_lat()
        self._write("timeseries.parquet", ts)
        self._write("service_latency.parquet", lat)
        if self.keep:
            self.kept_ts.append(ts)
            self.kept_lat.append(lat)
        self.ts.clear()
        self.lat.clear()
        self.met.clear()

    def close(self) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        self.flush()
        for w in self._writers.values():
            w.close()
        if not self.keep or not self.kept_ts:
            return None
        return (pa.concat_tables(self.kept_ts).to_pandas(), pa.concat_tables(self.kept_lat).to_pandas())

    @staticmethod
    def write_json(out_dir: Path, summary: dict[str, Any], events: list[dict[str, Any]]) -> None:
        (out_dir / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n", encoding="utf-8")
        (out_dir / "events.json").write_text(json.dumps(_clean(events), indent=2) + "\n", encoding="utf-8")


def _clean(x: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars plain numbers."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class LatencyTotals(Protocol):
    weight: FloatArray

    def quantile_ms(self, v: int, p: float) -> float: ...

    def mean_ms(self, v: int) -> float: ...

    def fraction_over(self, v: int, x_ms: float) -> float: ...


def _r(x: float, nd: int = 4) -> float:
    f = float(x)
    return round(f, nd) if math.isfinite(f) else math.nan


def _limit(c: _Limit, ids: tuple[str, ...], worst_key: str, scale: float) -> dict[str, Any]:
    """A hard-limit counter for summary.json: (site, step) pairs over it, worst excess, the sites."""
    return {
        "site_steps": int(c.steps.sum()),
        worst_key: _r(float(c.worst.max(initial=0.0)) * scale, 6),
        "sites": [ids[i] for i in np.flatnonzero(c.steps > 0).tolist()],
    }


def _storage(sim: Simulation, totals: _Totals) -> dict[str, Any]:
    """Retained raw data per built site (placement.ledger.stored_gb of the pieces served there) against
    its servers' storage (mean and most over the run), and the mean kept in cloud regions, TB."""
    f = sim.fleet
    mean = totals.stored_tb_steps / max(totals.steps, 1)
    capacity, used, most = (a.tolist() for a in (f.storage_tb, mean, totals.stored_tb_max))
    sites = {
        f.ids[i]: {
            "capacity_tb": _r(capacity[i], 6),
            "used_tb_mean": _r(used[i], 6),
            "used_tb_max": _r(most[i], 6),
        }
        for i in np.flatnonzero(~f.is_cloud).tolist()
    }
    return {
        "sites": sites,
        "cloud_tb_mean": _r(float(mean[f.is_cloud].sum()), 6),
    }


def build_summary(sim: Simulation, totals: _Totals, acc: LatencyTotals) -> dict[str, Any]:
    f = sim.fleet
    s = sim.s
    sites = ~f.is_cloud
    latency: dict[str, Any] = {}
    all_req = 0.0
    all_viol = 0.0
    for v, name in enumerate(sim.services):
        served = float(totals.served_requests[v])
        unserved = float(totals.unserved_requests[v])
        offered = served + unserved
        over = acc.fraction_over(v, float(sim.v_slo_bound[v])) if served > 0 else 0.0
        latency[name] = {
            "p50_ms": _r(acc.quantile_ms(v, 0.50)),
            "p95_ms": _r(acc.quantile_ms(v, 0.95)),
            "p99_ms": _r(acc.quantile_ms(v, 0.99)),
            "mean_ms": _r(acc.mean_ms(v)),
            "slo_p95_ms": float(sim.v_slo_p95[v]),
            "slo_p99_ms": float(sim.v_slo_p99[v]),
            "served_requests": _r(served, 1),
            "unserved_requests": _r(unserved, 1),
            "unserved_fraction": _r(unserved / offered if offered > 0 else 0.0, 6),
            "slo_violation_rate": _r(totals.violated_requests[v] / offered if offered > 0 else 0.0, 6),
            "steps_slo_violated": int(totals.steps_violated[v]),
            "requests_over_slo_fraction": _r((over * served + unserved) / offered if offered > 0 else 0.0, 6),
        }
        all_req += offered
        all_viol += float(totals.violated_requests[v])
    parts = totals.parts_kwh
    e_total = parts["total"]
    e_it = parts["it"]
    sites_it, sites_fac = float(e_it[sites].sum()), float(e_total[sites].sum())
    cloud_it, cloud_fac = float(e_it[f.is_cloud].sum()), float(e_total[f.is_cloud].sum())
    period_h = sim.n_steps * sim.step_h
    fixed = float(f.fixed_annual[sites].sum() * period_h / 8760.0)
    energy_cost = float(totals.energy_cost.sum())
    served_all = float(totals.served_requests.sum())
    unserved_all = float(totals.unserved_requests.sum())
    faults = []
    for i, (ft, imp) in enumerate(zip(sim.faults, sim.impact, strict=True)):
        faults.append(
            {
                "index": i,
                "kind": ft.kind.value,
                "site": ft.site,
                "start": ft.start.isoformat(),
                "end": ft.end.isoformat() if ft.end is not None else None,
                "source": ft.source,
                "displaced": imp.displaced,
                "re_placed": imp.re_placed,
                "degraded": imp.degraded,
                "unserved": imp.unserved,
                "unserved_requests_while_active": _r(imp.unserved_requests, 1),
            }
        )
    return {
        "scenario": s.name,
        "plan": {"alternative": f.plan.alternative, "method": f.plan.method},
        "mode": sim.cfg.mode,
        "seed": sim.cfg.seed,
        "start": sim.start.isoformat(),
        "end": sim.end.isoformat(),
        "step_s": int(sim.step_s),
        "steps": sim.n_steps,
        "targets": len(f.ids),
        "built_sites": int(sites.sum()),
        "latency": latency,
        "slo_violation_rate": _r(all_viol / all_req if all_req > 0 else 0.0, 6),
        "energy_kwh": {
            "it": _r(float(e_it.sum()), 6),
            "cooling": _r(float(parts["cooling"].sum()), 6),
            "ups_loss": _r(float(parts["ups_loss"].sum()), 6),
            "distribution_loss": _r(float(parts["distribution_loss"].sum()), 6),
            "misc": _r(float(parts["misc"].sum()), 6),
            "facility": _r(float(e_total.sum()), 6),
            "sites_it": _r(sites_it, 6),
            "sites_facility": _r(sites_fac, 6),
            "cloud_it": _r(cloud_it, 6),
            "cloud_facility": _r(cloud_fac, 6),
            "transport": _r(totals.transport_kwh, 6),
        },
        "pue": {
            "sites_annualized": _r(sites_fac / sites_it if sites_it > 0 else float("nan")),
            "cloud": _r(cloud_fac / cloud_it if cloud_it > 0 else float("nan")),
            "overall": _r(float(e_total.sum()) / float(e_it.sum()) if e_it.sum() > 0 else float("nan")),
        },
        "carbon_kg": {
            "total": _r(float(totals.carbon_g.sum()) / 1000.0, 6),
            "sites": _r(float(totals.carbon_g[sites].sum()) / 1000.0, 6),
            "cloud": _r(float(totals.carbon_g[f.is_cloud].sum()) / 1000.0, 6),
        },
        "cost": {
            "currency": s.economics.currency,
            "period_hours": _r(period_h, 3),
            "energy": _r(energy_cost, 2),
            "fixed_pro_rata": _r(fixed, 2),
            "cloud": _r(totals.cloud_cost, 2),
            "network": _r(totals.network_cost, 2),
            "total": _r(energy_cost + fixed + totals.cloud_cost + totals.network_cost, 2),
            "lines": {k: _r(v, 2) for k, v in totals.lines.items()},
        },
        "sovereignty_violations": int(sim.sovereignty_violations),
        "security_violations": int(sim.security_violations),
        "grid_cap_violations": _limit(totals.grid_cap, f.ids, "worst_excess_kw", 1e-3),
        "module_kw_violations": _limit(totals.module_kw, f.ids, "worst_excess_kw", 1e-3),
        "memory_violations": _limit(totals.memory, f.ids, "worst_excess_gb", 1.0),
        "storage_violations": _limit(totals.storage, f.ids, "worst_excess_tb", 1.0),
        "storage": _storage(sim, totals),
        "unserved": {
            "requests": _r(unserved_all, 1),
            "fraction": _r(
                unserved_all / (served_all + unserved_all) if served_all + unserved_all > 0 else 0.0, 6
            ),
            "mean_rps": _r(unserved_all / (period_h * 3600.0), 4),
        },
        "sync": {"synced_gb": _r(totals.synced_gb, 3), "max_backlog_gb": _r(totals.max_backlog_gb, 3)},
        "faults": faults,
    }
