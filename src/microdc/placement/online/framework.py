"""The online placer's framework: tables, status codes, the per-cycle state, plugins, the registry, and
the scheduling cycle. Kubernetes' scheduler framework in spirit, batched over numpy arrays.

One *cycle* places a batch of W workloads onto S targets (built MDC sites and cloud regions):

1. **keep**: a workload whose current target still passes every filter and has room stays (no move);
2. **filter**: every filter plugin returns a (K, S) mask for a chunk of K workloads; filters are of two
   kinds, ``NEVER`` (policy: sovereignty, security tier, SLO reach; no amount of waiting helps) and
   ``NOT_NOW`` (site health; capacity, applied while committing); the first that leaves a workload no
   target names the reason;
3. **score**: every score plugin returns raw (K, S) scores, *higher is better*; the framework normalizes
   each to [0, 100] over the workload's feasible targets (min-max, like kube-scheduler's
   NormalizeScore) and sums them with the configured weights; dynamic scores (balance) are
   recomputed as capacity is used;
4. **reserve**: workloads go in order of decreasing size; each picks its best target that still has
   room under a running free-capacity vector; picks on one target are granted in order while their
   cumulative demand fits, the rest retry against the updated free capacity (all vectorized over
   sites; the loop is over rounds, not over workloads);
5. **post-filter**: a workload with no target is ``DEGRADED`` when it can stay where it is (its current
   target is alive and still legal, only over capacity) or, optionally, be served beyond its SLO by a
   legal target; otherwise ``UNSERVED``. No path ever puts a workload on a target its sovereignty or
   security rule forbids: the ``sovereignty`` and ``security_tier`` filters cannot be switched off and
   every fallback re-checks them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ScoreArray = npt.NDArray[np.floating[Any]]

#: Resources every target offers and every workload asks for, in this column order.
RESOURCES: tuple[str, ...] = ("cores", "memory_gb")

FITS = "fits"


class Kind(IntEnum):
    """What a filter's rejection means for the workload."""

    NEVER = 2  # policy or geography: waiting will not help (sovereignty, security tier, SLO reach)
    NOT_NOW = 1  # state: a site may come back or free up (health, capacity)


class Code(IntEnum):
    """Status of one workload after a cycle (kube-scheduler's Success / Unschedulable /
    UnschedulableAndUnresolvable)."""

    SUCCESS = 0
    UNSCHEDULABLE = 1  # not now
    UNRESOLVABLE = 2  # never


class Outcome(IntEnum):
    PLACED = 0  # on a target that passes every filter, within capacity (kept or moved)
    DEGRADED = 1  # kept on its alive, legal current target over capacity, or served beyond its SLO
    UNSERVED = 2  # no legal, alive target


class PlacerError(ValueError):
    """A malformed table or configuration (a programming error in the caller, not a placement result)."""


# ----------------------------------------------------------------------------------------------- tables


def _encode(values: Sequence[str]) -> tuple[IntArray, tuple[str, ...]]:
    names = tuple(sorted(set(values)))
    index = {n: i for i, n in enumerate(names)}
    return np.fromiter((index[v] for v in values), dtype=np.int64, count=len(values)), names


@dataclass(frozen=True)
class WorkloadTable:
    """W workloads as columns. Build one with :meth:`build`.

    ``demand`` is (W, len(RESOURCES)): cores and memory the workload reserves (sized for its peak).
    ``current`` is the target index it runs on now (-1: nowhere, e.g. new or displaced by a fault);
    ``preferred`` an optional target to favour (the plan's backup), -1 for none. Latency fields are in
    ms: the SLO bounds (inf when the service has none) and the service-time quantiles the workload
    sees at its service's target utilization (queueing + service, without network).
    """

    ids: tuple[str, ...]
    data_class: IntArray  # index into classes
    classes: tuple[str, ...]
    origin: IntArray  # jurisdiction index (scenario.tree) where the data is made
    service: IntArray  # index into services
    services: tuple[str, ...]
    lat: FloatArray
    lon: FloatArray
    demand: FloatArray  # (W, R)
    slo_p95_ms: FloatArray
    slo_p99_ms: FloatArray
    service_p95_ms: FloatArray
    service_p99_ms: FloatArray
    current: IntArray
    preferred: IntArray

    @classmethod
    def build(
        cls,
        *,
        ids: Sequence[str],
        data_class: Sequence[str],
        origin: npt.ArrayLike,
        service: Sequence[str],
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        cores: npt.ArrayLike,
        memory_gb: npt.ArrayLike,
        slo_p95_ms: npt.ArrayLike | None = None,
        slo_p99_ms: npt.ArrayLike | None = None,
        service_p95_ms: npt.ArrayLike | None = None,
        service_p99_ms: npt.ArrayLike | None = None,
        current: npt.ArrayLike | None = None,
        preferred: npt.ArrayLike | None = None,
    ) -> WorkloadTable:
        n = len(ids)

        def col(v: npt.ArrayLike | None, default: float) -> FloatArray:
            a = np.full(n, default, dtype=np.float64) if v is None else np.asarray(v, dtype=np.float64)
            if a.shape != (n,):
                raise PlacerError(f"a workload column has shape {a.shape}, expected ({n},)")
            return a

        def icol(v: npt.ArrayLike | None) -> IntArray:
            a = np.full(n, -1, dtype=np.int64) if v is None else np.asarray(v, dtype=np.int64)
            if a.shape != (n,):
                raise PlacerError(f"a workload column has shape {a.shape}, expected ({n},)")
            return a

        if len(data_class) != n or len(service) != n:
            raise PlacerError("ids, data_class and service must have the same length")
        dc, classes = _encode(data_class)
        sv, services = _encode(service)
        inf = float("inf")
        demand = np.column_stack([col(cores, 0.0), col(memory_gb, 0.0)])
        if np.any(demand < 0) or not np.all(np.isfinite(demand)):
            raise PlacerError("workload demand (cores, memory_gb) must be finite and >= 0")
        return cls(
            ids=tuple(ids),
            data_class=dc,
            classes=classes,
            origin=icol(origin),
            service=sv,
            services=services,
            lat=col(lat, 0.0),
            lon=col(lon, 0.0),
            demand=demand,
            slo_p95_ms=col(slo_p95_ms, inf),
            slo_p99_ms=col(slo_p99_ms, inf),
            service_p95_ms=col(service_p95_ms, 0.0),
            service_p99_ms=col(service_p99_ms, 0.0),
            current=icol(current),
            preferred=icol(preferred),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def class_names(self, rows: IntArray | None = None) -> list[str]:
        idx = self.data_class if rows is None else self.data_class[rows]
        return [self.classes[i] for i in idx.tolist()]

    def take(self, rows: npt.ArrayLike) -> WorkloadTable:
        """The sub-table of the given rows (codes and name tuples are shared)."""
        r = np.asarray(rows, dtype=np.int64)
        return replace(
            self,
            ids=tuple(self.ids[i] for i in r.tolist()),
            data_class=self.data_class[r],
            origin=self.origin[r],
            service=self.service[r],
            lat=self.lat[r],
            lon=self.lon[r],
            demand=self.demand[r],
            slo_p95_ms=self.slo_p95_ms[r],
            slo_p99_ms=self.slo_p99_ms[r],
            service_p95_ms=self.service_p95_ms[r],
            service_p99_ms=self.service_p99_ms[r],
            current=self.current[r],
            preferred=self.preferred[r],
        )


@dataclass(frozen=True)
class FleetState:
    """S targets as columns: built MDC sites and cloud regions, and their state right now.

    ``alive``: the target serves what it runs (not down, not shut down). ``accepting``: it may take new
    work (alive and not cut off, throttled or on battery). ``trusted``: False after a break-in or a
    failed attestation, so it counts as security tier 1. ``capacity`` and ``used`` are (S, R); ``used``
    is what workloads *outside* this batch hold. Cloud regions have infinite capacity. ``carbon_g_per_kwh``
    and ``pue`` are the current grid intensity and facility PUE (score inputs; nan = unknown).
    """

    ids: tuple[str, ...]
    is_cloud: BoolArray
    lat: FloatArray
    lon: FloatArray
    jurisdiction: IntArray
    tier: IntArray
    trusted: BoolArray
    alive: BoolArray
    accepting: BoolArray
    capacity: FloatArray
    used: FloatArray
    carbon_g_per_kwh: FloatArray
    pue: FloatArray
    access_ms: float = 10.0
    edge_extra_ms: float = 0.5
    metro_radius_km: float = 80.0
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.ids)
        # masks stay boolean even when built from empty lists (np.asarray([]) is float64)
        for name in ("is_cloud", "trusted", "alive", "accepting"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=bool))
        for name in (
            "is_cloud",
            "lat",
            "lon",
            "jurisdiction",
            "tier",
            "trusted",
            "alive",
            "accepting",
            "carbon_g_per_kwh",
            "pue",
        ):
            if np.shape(getattr(self, name)) != (n,):
                shape = np.shape(getattr(self, name))
                raise PlacerError(f"fleet column {name!r} has shape {shape}, expected ({n},)")
        for name in ("capacity", "used"):
            if np.shape(getattr(self, name)) != (n, len(RESOURCES)):
                raise PlacerError(f"fleet column {name!r} must be (S, {len(RESOURCES)})")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def free(self) -> FloatArray:
        return np.asarray(np.maximum(self.capacity - self.used, 0.0), dtype=np.float64)

    def label(self, s: int) -> str:
        return self.labels[s] if self.labels else self.ids[s]

    def with_state(self, **changes: Any) -> FleetState:
        return replace(self, **changes)


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Placement:
    """Result of one cycle, row-aligned with the WorkloadTable.

    ``target``: target index, -1 when unserved (a DEGRADED workload has a target). ``reasons``: "fits",
    or the exact reason (``unschedulable: ...`` for never, ``not now: ...`` for capacity/health,
    ``degraded: ...``). ``moved``: the target differs from ``current``.
    """

    target: IntArray
    outcome: npt.NDArray[np.int8]
    code: npt.NDArray[np.int8]
    reasons: list[str]
    moved: BoolArray
    score: FloatArray

    def counts(self) -> dict[str, int]:
        out = {o.name.lower(): int(np.count_nonzero(self.outcome == o)) for o in Outcome}
        out["moved"] = int(self.moved.sum())
        return out

    def rows(self, outcome: Outcome) -> IntArray:
        return np.flatnonzero(self.outcome == outcome)


# ------------------------------------------------------------------------------------------- cycle state


class CycleState:
    """Per-cycle key/value store shared by the plugins of one cycle (kube's CycleState).

    ``batch`` entries live for the whole cycle (e.g. a sovereignty mask per (class, origin) group);
    ``chunk`` entries are cleared before each chunk of workloads (e.g. the chunk's RTT matrix)."""

    def __init__(self) -> None:
        self.batch: dict[str, Any] = {}
        self.chunk: dict[str, Any] = {}

    def batch_value(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.batch:
            self.batch[key] = compute()
        return self.batch[key]

    def chunk_value(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.chunk:
            self.chunk[key] = compute()
        return self.chunk[key]

    def new_chunk(self) -> None:
        self.chunk.clear()


# ---------------------------------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class PlacerContext:
    """What plugins may need besides the tables: the compiled policy (the one policy module)."""

    policy: Any  # microdc.policy.PolicyBook (typed loosely to keep this module free of policy imports)

    def jurisdiction_code(self, index: int) -> str:
        return str(self.policy.tree.codes[index])


class Plugin:
    """Base of all plugins. A plugin implements only the phases it needs."""

    name: ClassVar[str] = ""

    def __init__(self, ctx: PlacerContext) -> None:
        self.ctx = ctx

    def pre_filter(self, state: CycleState, wl: WorkloadTable, fleet: FleetState) -> None:
        """Once per cycle, before any chunk (precompute per-group tables)."""


class FilterPlugin(Plugin):
    """Says where a workload may go: (K, S) bool for the chunk's rows."""

    kind: ClassVar[Kind] = Kind.NEVER

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        raise NotImplementedError

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        """Why each of ``rows`` has no target left once this filter is applied (exact, user-facing)."""
        raise NotImplementedError


class ScorePlugin(Plugin):
    """Ranks feasible targets: raw scores, higher is better, either (K, S) per workload and target or
    (S,) per target; the framework min-max normalizes them to [0, 100] (per workload over its feasible
    targets for (K, S); over the targets feasible for any workload of the chunk for (S,)).

    A ``dynamic`` scorer depends on the free capacity (``state.chunk['free']``) and is recomputed as the
    chunk's workloads are committed.
    """

    dynamic: ClassVar[bool] = False
    prenormalized: ClassVar[bool] = False  # scores are already in [0, 100]: skip min-max

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> ScoreArray:
        raise NotImplementedError


PluginFactory = Callable[..., Plugin]


class Registry:
    """Name → factory. Registering a name twice is an error (no silent override)."""

    def __init__(self) -> None:
        self._factories: dict[str, PluginFactory] = {}

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self._factories:
            raise PlacerError(f"plugin {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return list(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def create(self, name: str, ctx: PlacerContext, **args: Any) -> Plugin:
        """Make a plugin: ``factory(ctx, **args)``."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise PlacerError(f"unknown plugin {name!r}; known: {', '.join(self._factories)}") from None
        plugin = factory(ctx, **args)
        if plugin.name != name:
            raise PlacerError(f"factory for {name!r} made a plugin named {plugin.name!r}")
        return plugin


# ------------------------------------------------------------------------------------------------ config

#: Filters that can never be switched off: data may never go where its rules forbid.
MANDATORY_FILTERS: tuple[str, ...] = ("sovereignty", "security_tier")


@dataclass(frozen=True)
class PlacerConfig:
    """Which plugins run, in which order, with which weights.

    ``filters`` run in order (put NEVER kinds first so reasons name the policy before the state);
    ``scores`` maps a score plugin name to its weight. ``chunk_size`` bounds the (K, S) matrices held at
    once. ``slo_fallback``: a workload no target can serve within its SLO is served beyond it (DEGRADED)
    by the best legal, alive target with room, rather than not at all. ``plugin_args`` passes keyword
    arguments to factories.
    """

    filters: tuple[str, ...] = ("sovereignty", "security_tier", "slo_reachability", "site_health")
    scores: dict[str, float] = field(
        default_factory=lambda: {
            "latency": 1.0,
            "carbon": 0.3,
            "cooling": 0.2,
            "balance": 0.5,
            "plan_affinity": 0.5,
        }
    )
    chunk_size: int = 1024
    slo_fallback: bool = True
    plugin_args: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [f for f in MANDATORY_FILTERS if f not in self.filters]
        if missing:
            raise PlacerError(
                f"filters {missing} are mandatory: data may never be placed where its rules forbid"
            )
        if len(set(self.filters)) != len(self.filters):
            raise PlacerError("a filter is listed twice")
        if self.chunk_size < 1:
            raise PlacerError("chunk_size must be >= 1")
        if any(w < 0 for w in self.scores.values()):
            raise PlacerError("score weights must be >= 0")


_BIG = np.float32(3.0e38)


def _penalty(feasible: BoolArray) -> npt.NDArray[np.float32]:
    """0 where feasible, a huge number elsewhere (arithmetic masking: no branchy np.where on (K, S))."""
    return np.multiply(~feasible, _BIG, dtype=np.float32)


def _minmax_rows(
    raw: ScoreArray, feasible: BoolArray, penalty: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Per-row min-max over the feasible entries to [0, 100] (constant rows score 100 everywhere)."""
    r = np.asarray(raw, dtype=np.float32)
    lo = np.add(r, penalty, dtype=np.float32).min(axis=1, keepdims=True)
    hi = np.subtract(r, penalty, dtype=np.float32).max(axis=1, keepdims=True)
    span = hi.astype(np.float64) - lo.astype(np.float64)
    ok = np.isfinite(span) & (span > 0) & (span < 1e37)
    scale = np.where(ok, 100.0 / np.where(ok, span, 1.0), 0.0).astype(np.float32)
    shift = np.where(ok, lo, 0.0).astype(np.float32)
    out = np.subtract(r, shift, dtype=np.float32)
    out *= scale
    out += np.where(ok, 0.0, 100.0).astype(np.float32)
    return out


def _minmax_sites(raw: ScoreArray, any_feasible: BoolArray) -> npt.NDArray[np.float32]:
    """Min-max of a per-target score over the targets feasible for some workload of the chunk."""
    r = np.asarray(raw, dtype=np.float64)
    vals = r[any_feasible & np.isfinite(r)]
    if vals.size == 0 or vals.max() <= vals.min():
        return np.full(r.shape, 100.0, dtype=np.float32)
    out = (np.where(np.isfinite(r), r, vals.min()) - vals.min()) * (100.0 / (vals.max() - vals.min()))
    return np.asarray(out, dtype=np.float32)


class Framework:
    """A configured placer: the plugins built from a registry and the cycle that runs them."""

    def __init__(self, registry: Registry, ctx: PlacerContext, config: PlacerConfig | None = None) -> None:
        self.config = config or PlacerConfig()
        self.ctx = ctx
        args = self.config.plugin_args
        self.filters: list[FilterPlugin] = []
        for name in self.config.filters:
            p = registry.create(name, ctx, **args.get(name, {}))
            if not isinstance(p, FilterPlugin):
                raise PlacerError(f"plugin {name!r} is not a filter")
            self.filters.append(p)
        self.capacity_reason: FilterPlugin = self._create_filter(registry, ctx, "capacity", args)
        self.scores: list[tuple[ScorePlugin, float]] = []
        for name, weight in self.config.scores.items():
            if weight == 0:
                continue
            p = registry.create(name, ctx, **args.get(name, {}))
            if not isinstance(p, ScorePlugin):
                raise PlacerError(f"plugin {name!r} is not a score plugin")
            self.scores.append((p, float(weight)))

    @staticmethod
    def _create_filter(
        registry: Registry, ctx: PlacerContext, name: str, args: dict[str, dict[str, Any]]
    ) -> FilterPlugin:
        p = registry.create(name, ctx, **args.get(name, {}))
        if not isinstance(p, FilterPlugin):
            raise PlacerError(f"plugin {name!r} is not a filter")
        return p

    # -- the cycle ------------------------------------------------------------------------------------

    def place(self, wl: WorkloadTable, fleet: FleetState) -> Placement:
        n_w, n_s = len(wl), len(fleet)
        if wl.demand.shape != (n_w, len(RESOURCES)):
            raise PlacerError("workload demand must be (W, R)")
        if n_w and (wl.current.max(initial=-1) >= n_s or wl.preferred.max(initial=-1) >= n_s):
            raise PlacerError("a workload's current or preferred target is out of range")
        state = CycleState()
        for p in self.filters:
            p.pre_filter(state, wl, fleet)
        for sp, _ in self.scores:
            sp.pre_filter(state, wl, fleet)

        target = np.full(n_w, -1, dtype=np.int64)
        outcome = np.full(n_w, Outcome.UNSERVED, dtype=np.int8)
        code = np.full(n_w, Code.SUCCESS, dtype=np.int8)
        score = np.full(n_w, np.nan)
        reasons: list[str] = [FITS] * n_w
        free = fleet.free.copy()
        if n_w == 0:
            return Placement(target, outcome, code, reasons, np.zeros(0, dtype=bool), score)

        # Decreasing size (largest first, then id order for ties: deterministic).
        size = (wl.demand / _typical_capacity(fleet.capacity)).max(axis=1)
        order = np.lexsort((np.arange(n_w), -size))

        # 1. keep: workloads whose current target passes every filter, granted in size order.
        has_cur = np.flatnonzero(wl.current[order] >= 0)
        keep_rows = order[has_cur]
        if keep_rows.size:
            legal_here = self._filters_at(state, wl, keep_rows, wl.current[keep_rows], fleet)
            cand = keep_rows[legal_here]
            granted = _grant(wl.current[cand], wl.demand[cand], free)
            kept = cand[granted]
            target[kept] = wl.current[kept]
            outcome[kept] = Outcome.PLACED
        pending = order[target[order] < 0]

        # 2-4. filter, score and reserve in chunks.
        failed: list[IntArray] = []
        chunk = self.config.chunk_size
        if len(fleet) == 0 and pending.size:  # nowhere to go: straight to the reasons
            failed.append(pending)
            pending = pending[:0]
        for start in range(0, pending.size, chunk):
            rows = pending[start : start + chunk]
            state.new_chunk()
            mask = self._filter_mask(state, wl, rows, fleet)
            static = self._static_scores(state, wl, rows, fleet, mask)
            got, best_score = self._reserve(state, wl, rows, fleet, mask, static, free)
            ok = got >= 0
            target[rows[ok]] = got[ok]
            outcome[rows[ok]] = Outcome.PLACED
            score[rows[ok]] = best_score[ok]
            if (~ok).any():
                failed.append(rows[~ok])

        # 5. post-filter: reasons, degraded, unserved.
        if failed:
            self._post_filter(state, wl, np.concatenate(failed), fleet, free, target, outcome, code, reasons)
        moved = (target != wl.current) & (target >= 0)
        return Placement(target, outcome, code, reasons, moved, score)

    # -- phases ---------------------------------------------------------------------------------------

    def _filter_mask(
        self,
        state: CycleState,
        wl: WorkloadTable,
        rows: IntArray,
        fleet: FleetState,
        skip: Iterable[str] = (),
    ) -> BoolArray:
        skip = set(skip)
        mask = np.ones((rows.size, len(fleet)), dtype=bool)
        for p in self.filters:
            if p.name in skip:
                continue
            mask &= p.filter(state, wl, rows, fleet)
        return mask

    def _filters_at(
        self,
        state: CycleState,
        wl: WorkloadTable,
        rows: IntArray,
        at: IntArray,
        fleet: FleetState,
        only: Iterable[str] | None = None,
    ) -> BoolArray:
        """Do the filters pass for each row at one given target (chunked; (K,) bool)."""
        names = set(only) if only is not None else None
        out = np.ones(rows.size, dtype=bool)
        chunk = self.config.chunk_size
        for start in range(0, rows.size, chunk):
            r = rows[start : start + chunk]
            t = at[start : start + chunk]
            state.new_chunk()
            ok = np.ones(r.size, dtype=bool)
            for p in self.filters:
                if names is not None and p.name not in names:
                    continue
                ok &= p.filter(state, wl, r, fleet)[np.arange(r.size), t]
            out[start : start + chunk] = ok
        state.new_chunk()
        return out

    def _combine(
        self,
        plugins: list[tuple[ScorePlugin, float]],
        state: CycleState,
        wl: WorkloadTable,
        rows: IntArray,
        fleet: FleetState,
        feasible: BoolArray,
        total: npt.NDArray[np.float32] | None,
    ) -> npt.NDArray[np.float32]:
        """Weighted sum of normalized scores; per-target (S,) scores are normalized once and broadcast."""
        site_total = np.zeros(len(fleet), dtype=np.float32)
        out = total
        penalty: npt.NDArray[np.float32] | None = None
        for p, weight in plugins:
            raw = p.score(state, wl, rows, fleet, feasible)
            w = np.float32(weight)
            if raw.ndim == 1:
                any_ok = np.asarray(feasible.any(axis=0))
                norm = raw.astype(np.float32) if p.prenormalized else _minmax_sites(raw, any_ok)
                site_total += w * norm
                continue
            if p.prenormalized:
                part = np.multiply(raw, w, dtype=np.float32)
            else:
                if penalty is None:
                    penalty = _penalty(feasible)
                part = _minmax_rows(raw, feasible, penalty)
                part *= w
            if out is None:
                out = part
            else:
                out += part
        if out is None:
            return np.broadcast_to(site_total, feasible.shape)  # read-only view, no (K, S) allocation
        out += site_total
        return out

    def _static_scores(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> npt.NDArray[np.float32]:
        return self._combine(
            [(p, w) for p, w in self.scores if not p.dynamic], state, wl, rows, fleet, feasible, None
        )

    def _reserve(
        self,
        state: CycleState,
        wl: WorkloadTable,
        rows: IntArray,
        fleet: FleetState,
        mask: BoolArray,
        static: npt.NDArray[np.float32],
        free: FloatArray,
    ) -> tuple[IntArray, FloatArray]:
        """Commit the chunk's workloads in order under the running free capacity (updated in place)."""
        got = np.full(rows.size, -1, dtype=np.int64)
        best_score = np.full(rows.size, np.nan)
        todo = np.arange(rows.size)
        dynamic = [(p, w) for p, w in self.scores if p.dynamic]
        first = True
        while todo.size:
            r = rows[todo]
            dem = wl.demand[r]
            m = mask if first else mask[todo]
            fits = m.copy()
            for k in range(dem.shape[1]):
                fits &= np.less_equal.outer(dem[:, k], free[:, k] + 1e-9)
            sc = static if first else static[todo]
            state.chunk["free"] = free
            if dynamic:
                sc = self._combine(dynamic, state, wl, r, fleet, fits, np.array(sc, dtype=np.float32))
            sc = np.subtract(sc, _penalty(fits), dtype=np.float32)
            pick = np.argmax(sc, axis=1)
            idx = np.arange(todo.size)
            can = fits[idx, pick]
            sc_pick = sc[idx, pick]
            if not can.all():
                todo, pick, sc_pick = todo[can], pick[can], sc_pick[can]
            if todo.size == 0:
                break
            granted = _grant(pick, wl.demand[rows[todo]], free)
            got[todo[granted]] = pick[granted]
            best_score[todo[granted]] = sc_pick[granted]
            todo = todo[~granted]
            first = False
        return got, best_score

    def _post_filter(
        self,
        state: CycleState,
        wl: WorkloadTable,
        rows: IntArray,
        fleet: FleetState,
        free: FloatArray,
        target: IntArray,
        outcome: npt.NDArray[np.int8],
        code: npt.NDArray[np.int8],
        reasons: list[str],
    ) -> None:
        rows = np.sort(rows)
        # Why did each fail: the first filter (in order) that leaves it nothing, else capacity.
        blame = np.full(rows.size, len(self.filters), dtype=np.int64)  # index into filters; last = capacity
        chunk = self.config.chunk_size
        for start in range(0, rows.size, chunk):
            r = rows[start : start + chunk]
            state.new_chunk()
            alive = np.ones((r.size, len(fleet)), dtype=bool)
            undecided = np.ones(r.size, dtype=bool)
            for i, p in enumerate(self.filters):
                alive &= p.filter(state, wl, r, fleet)
                empty = undecided & ~alive.any(axis=1)
                blame[start : start + chunk][empty] = i
                undecided &= ~empty
        state.new_chunk()
        plugins = [*self.filters, self.capacity_reason]

        # Degraded (a): stay on the current target when it is alive and still legal, over capacity.
        cur = wl.current[rows]
        stay = np.zeros(rows.size, dtype=bool)
        has = cur >= 0
        if has.any():
            legal = self._filters_at(state, wl, rows[has], cur[has], fleet, only=MANDATORY_FILTERS)
            stay[np.flatnonzero(has)[legal & fleet.alive[cur[has]]]] = True
        # Degraded (b): beyond the SLO on a legal, alive target with room.
        beyond = np.zeros(rows.size, dtype=bool)
        slo_at = [i for i, p in enumerate(self.filters) if p.name == "slo_reachability"]
        if self.config.slo_fallback and slo_at:
            cand = np.flatnonzero(~stay & (blame == slo_at[0]))
            for start in range(0, cand.size, chunk):
                c = cand[start : start + chunk]
                r = rows[c]
                state.new_chunk()
                mask = self._filter_mask(state, wl, r, fleet, skip=["slo_reachability"])
                static = self._static_scores(state, wl, r, fleet, mask)
                got, _ = self._reserve(state, wl, r, fleet, mask, static, free)
                ok = got >= 0
                target[r[ok]] = got[ok]
                beyond[c[ok]] = True
            state.new_chunk()

        base = [""] * rows.size
        for i, p in enumerate(plugins):
            sel = np.flatnonzero(blame == i)
            for start in range(0, sel.size, chunk):
                part = sel[start : start + chunk]
                state.new_chunk()
                for k, text in zip(part.tolist(), p.reasons(state, wl, rows[part], fleet), strict=True):
                    base[k] = text
        state.new_chunk()
        never = np.array([p.kind == Kind.NEVER for p in plugins])[blame]
        code[rows] = np.where(never, Code.UNRESOLVABLE, Code.UNSCHEDULABLE)
        for k, w in enumerate(rows.tolist()):
            if beyond[k]:
                outcome[w] = Outcome.DEGRADED
                reasons[w] = f"degraded: served beyond its SLO at {fleet.label(int(target[w]))} ({base[k]})"
            elif stay[k]:
                target[w] = wl.current[w]
                outcome[w] = Outcome.DEGRADED
                reasons[w] = f"degraded: kept at {fleet.label(int(target[w]))} over capacity ({base[k]})"
            else:
                outcome[w] = Outcome.UNSERVED
                reasons[w] = base[k]


def _typical_capacity(capacity: FloatArray) -> FloatArray:
    """Mean finite capacity per resource (1 where none is finite): puts resources on one scale."""
    finite = np.isfinite(capacity)
    n = finite.sum(axis=0)
    total = np.where(finite, capacity, 0.0).sum(axis=0)
    return np.asarray(np.where(n > 0, np.maximum(total / np.maximum(n, 1), 1e-9), 1.0), dtype=np.float64)


def _grant(pick: IntArray, demand: FloatArray, free: FloatArray) -> BoolArray:
    """Grant picks in the given order while each target's cumulative demand fits; update ``free``.

    Within one target, a prefix is granted (a refused request blocks the later ones on that target
    for this round; they retry against the updated capacity)."""
    n = pick.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(pick, kind="stable")
    p = pick[order]
    d = demand[order]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    cum = np.cumsum(d, axis=0)
    base = np.where(starts[:, None] > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    within = cum - np.repeat(base, np.diff(np.r_[starts, n]), axis=0)
    fit = np.all(within <= free[p] + 1e-9, axis=1)
    # Prefix only: once one is refused on a target, the rest of that target's picks wait.
    bad_before = np.cumsum(~fit) - np.repeat(np.r_[0, np.cumsum(~fit)][starts], np.diff(np.r_[starts, n]))
    ok_sorted = fit & (bad_before == 0)
    if ok_sorted.any():
        np.subtract.at(free, p[ok_sorted], d[ok_sorted])
        np.maximum(free, 0.0, out=free)
    granted = np.empty(n, dtype=bool)
    granted[order] = ok_sorted
    return granted
