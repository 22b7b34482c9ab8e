"""The root of a scenario and the rules that tie its parts together (cross-references).

Single-field rules sit on the fields (components.py); rules that span objects live here, in one
function that reports every broken reference with the path of the field that holds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from microdc.model.components import (
    Catalog,
    CloudRegion,
    DemandSource,
    Module,
    Profile,
    ServerType,
    Service,
    Site,
    TimeZone,
)
from microdc.model.geometry import geometry_problems
from microdc.model.horizon import Horizon, horizon_problems
from microdc.model.jurisdiction import Jurisdiction, JurisdictionTree
from microdc.model.policies import DataClassPolicy, Policies
from microdc.model.reliability import Reliability
from microdc.model.workloads import workload_problems
from microdc.model.yaml_source import Loc
from microdc.protocol.workload import WorkloadIn

FLAT_PROFILE = "flat"


class CarbonSource(BaseModel):
    """Where a grid zone's carbon intensity comes from: an hourly file, or a constant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["electricitymaps", "eia", "constant"] = Field(
        description="electricitymaps (hourly CSV export), eia (hourly CSV as prepared by dc-rl) or constant"
    )
    path: str | None = Field(
        None, description="the hourly file (at least a year), relative to the scenario file; not for constant"
    )
    basis: Literal["lca", "direct"] = Field(
        "lca", description="Electricity Maps life-cycle (lca) or direct (combustion-only) intensity"
    )
    constant_gco2_per_kwh: Annotated[float, Field(ge=0)] | None = Field(
        None, description="for format constant: the intensity, gCO2eq/kWh"
    )
    gaps: Literal["fill", "reject"] = Field(
        "fill",
        description="missing hours: fill (interpolate runs up to max_gap_hours, warning with the count) "
        "or reject (refuse the file, naming the first gap)",
    )
    max_gap_hours: Annotated[int, Field(ge=0)] = Field(
        3, description="with gaps: fill, the longest run of missing hours that is interpolated, hours"
    )


class WeatherSource(BaseModel):
    """Where a climate's outdoor temperature comes from: an hourly file, or a constant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["openmeteo", "epw", "constant"] = Field(
        description="openmeteo (the historical-weather API's JSON or CSV exactly as returned, or an hourly "
        "CSV time_local,temperature_c,...), epw (EnergyPlus weather file) or constant"
    )
    path: str | None = Field(
        None, description="the hourly file (at least a year), relative to the scenario file; not for constant"
    )
    timezone: TimeZone = Field(
        "UTC", description="IANA time zone of an Open-Meteo file's local times, e.g. Australia/Melbourne"
    )
    utc_offset_hours: Annotated[float, Field(ge=-14, le=14)] | None = Field(
        None,
        description="fixed UTC offset of an Open-Meteo file's local times, hours (-14 to 14; Open-Meteo "
        "exports use one); overrides timezone",
    )
    constant_c: float | None = Field(None, description="for format constant: the outdoor temperature, °C")
    lat: Annotated[float, Field(ge=-90, le=90)] | None = Field(
        None, description="where the series was measured, degrees; sites without a climate take the nearest"
    )
    lon: Annotated[float, Field(ge=-180, le=180)] | None = Field(
        None, description="where the series was measured, degrees (give with lat)"
    )
    gaps: Literal["fill", "reject"] = Field(
        "fill",
        description="missing hours: fill (interpolate runs up to max_gap_hours, warning with the count) "
        "or reject (refuse the file, naming the first gap)",
    )
    max_gap_hours: Annotated[int, Field(ge=0)] = Field(
        3, description="with gaps: fill, the longest run of missing hours that is interpolated, hours"
    )

    @model_validator(mode="after")
    def _both_coordinates(self) -> WeatherSource:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon of a weather series, or neither")
        return self


class TimeSeriesRefs(BaseModel):
    """The hourly series the scenario names, by key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    carbon: dict[str, CarbonSource] = Field(
        default_factory=dict, description="grid carbon intensity per grid zone (sites' grid_zone keys)"
    )
    weather: dict[str, WeatherSource] = Field(
        default_factory=dict, description="outdoor weather per climate (sites' climate keys)"
    )


class Economics(BaseModel):
    """Prices that apply everywhere (sites may override the energy price)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = Field("USD", description="currency code every price is in, e.g. EUR")
    energy_price_per_kwh: Annotated[float, Field(ge=0)] = Field(
        0.20, description="grid energy price, currency units per kWh"
    )
    carbon_price_per_tonne: Annotated[float, Field(ge=0)] = Field(
        0.0, description="carbon price, currency units per tonne CO2e"
    )
    discount_rate: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.07, description="yearly discount rate for annualizing capex, fraction (0.07 = 7 %)"
    )
    network_price_per_gb: Annotated[float, Field(ge=0)] = Field(
        0.0,
        description="backhaul price for data sent upstream (to the cloud or synced), currency units per GB",
    )
    unserved_penalty_per_rps_year: Annotated[float, Field(ge=0)] = Field(
        1000.0,
        description="penalty for unserved demand with --allow-unserved, currency units per (req/s)-year",
    )


class TransportClass(BaseModel):
    """A distance class of backhaul between a demand's access point and the MDC serving it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="class name, e.g. metro, regional, long_haul")
    max_km: Annotated[float, Field(gt=0)] | None = Field(
        None, description="great-circle distance up to which this class applies, km (none: unbounded)"
    )
    price_per_gb: Annotated[float, Field(ge=0)] = Field(
        description="price of carrying one GB (requests and responses) in this class, currency units"
    )


#: Default distance classes (docs/fidelity.md): the metro network the MDCs sit on is paid for in the
#: sites' annual cost; beyond it, list prices of inter-zone (0.01/GB) and inter-region (0.02/GB)
#: transfer of the large clouds stand in for regional and long-haul wholesale backhaul.
DEFAULT_TRANSPORT_CLASSES = (
    TransportClass(name="metro", max_km=80.0, price_per_gb=0.0),
    TransportClass(name="regional", max_km=1000.0, price_per_gb=0.01),
    TransportClass(name="long_haul", max_km=None, price_per_gb=0.02),
)


class SegmentEnergy(BaseModel):
    """Electricity per GB carried, by network segment (kWh/GB)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access: Annotated[float, Field(ge=0)] = Field(description="access network (radio/last mile), kWh/GB")
    metro: Annotated[float, Field(ge=0)] = Field(description="metro/aggregation network, kWh/GB")
    core: Annotated[float, Field(ge=0)] = Field(description="core/long-haul network, kWh/GB")


class Network(BaseModel):
    """Fixed parts of every round trip (the distance-dependent part is the latency model's), the metro
    radius, backhaul prices by distance class and the energy of carrying data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_ms: Annotated[float, Field(ge=0)] = Field(
        10.0,
        description="device ↔ first hop round trip (radio/last mile), ms; 10 ms: 5G eMBB user plane "
        "(3GPP TR 38.913: 4 ms each way) plus the core's user-plane function (docs/fidelity.md)",
    )
    edge_extra_ms: Annotated[float, Field(ge=0)] = Field(
        0.5, description="extra round trip into an MDC at a base station, ms"
    )
    metro_radius_km: Annotated[float, Field(gt=0)] = Field(
        80.0,
        description="an MDC within this great-circle distance of a device is reached over metro fibre; "
        "beyond it over the calibrated Internet path, km (80: WonderNetwork pings, docs/fidelity.md)",
    )
    transport_classes: list[TransportClass] = Field(
        default_factory=lambda: list(DEFAULT_TRANSPORT_CLASSES),
        description="backhaul price per GB from a demand's access point to the MDC serving it, by "
        "distance class in increasing max_km; the last class must be unbounded (max_km omitted)",
    )
    energy_kwh_per_gb: SegmentEnergy | None = Field(
        None,
        description="electricity per GB carried by segment; omitted: Aslan et al. (2018) 0.06 kWh/GB in "
        "2015 halving every 2 years, at the scenario's start year, split 50/25/25 % access/metro/core",
    )

    @model_validator(mode="after")
    def _classes_ordered(self) -> Network:
        classes = self.transport_classes
        if not classes:
            raise ValueError("transport_classes: give at least one class (the last one without max_km)")
        bounds = [c.max_km for c in classes]
        if bounds[-1] is not None:
            raise ValueError(
                f"transport_classes: the last class ({classes[-1].name!r}) must be unbounded (omit max_km)"
            )
        inner = [b for b in bounds[:-1]]
        if any(b is None for b in inner):
            raise ValueError("transport_classes: only the last class may omit max_km")
        finite = [float(b) for b in inner if b is not None]
        if finite != sorted(finite) or len(set(finite)) != len(finite):
            raise ValueError(f"transport_classes: max_km must increase strictly, got {finite}")
        return self


TABLE_NOTE = (
    "; inline as a list, or as {csv: FILE, defaults: {...}}: a CSV file beside the scenario with one row "
    "per item and the field names as header, empty cells taking the defaults"
)


class Scenario(BaseModel):
    """A whole world: what exists, what may be built, who asks for what, and the rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="scenario name (used in reports and output folders)")
    description: str = Field("", description="free text")
    start: date = Field(
        date(2023, 1, 1), description="first day of the planning year and default simulation start (ISO date)"
    )
    jurisdictions: list[Jurisdiction] = Field(
        min_length=1, description="the tree of legal areas (e.g. EU containing DE and FR)"
    )
    sites: list[Site] = Field(min_length=1, description="candidate and existing MDC sites" + TABLE_NOTE)
    catalog: Catalog = Field(description="module and server types that may be built")
    cloud_regions: list[CloudRegion] = Field(
        default_factory=list, description="cloud regions that may serve demand" + TABLE_NOTE
    )
    services: list[Service] = Field(min_length=1, description="the services devices call")
    profiles: dict[str, Profile] = Field(
        default_factory=dict, description="load profiles by name (demand's profile keys)"
    )
    demand: list[DemandSource] = Field(min_length=1, description="groups of devices asking" + TABLE_NOTE)
    policies: Policies = Field(description="data sovereignty, security and redundancy rules")
    timeseries: TimeSeriesRefs = Field(
        default_factory=TimeSeriesRefs, description="hourly grid carbon and weather series"
    )
    economics: Economics = Field(default_factory=Economics, description="prices")
    network: Network = Field(default_factory=Network, description="fixed parts of network round trips")
    reliability: Reliability = Field(
        default_factory=Reliability, description="failure rates for random faults (docs/reliability.md)"
    )
    workloads: list[WorkloadIn] = Field(
        default_factory=list,
        description="workloads to run, in the format of a workloads.yaml (`microdc workloads apply`); "
        "`microdc sites import` creates or updates them (docs/agent.md)",
    )
    horizon: Horizon | None = Field(
        None,
        description="plan several years at once (staged expansion with demand growth); none: one static year",
    )

    _base_dir: Path = PrivateAttr(default=Path("."))
    _tree: JurisdictionTree | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        """Directory relative paths in the scenario resolve against."""
        return self._base_dir

    def resolve(self, relative: str) -> Path:
        return (self._base_dir / relative).resolve()

    @property
    def tree(self) -> JurisdictionTree:
        if self._tree is None:
            self._tree = JurisdictionTree(self.jurisdictions)
        return self._tree

    def module(self, module_id: str) -> Module:
        return next(m for m in self.catalog.modules if m.id == module_id)

    def server(self, server_id: str) -> ServerType:
        return next(s for s in self.catalog.servers if s.id == server_id)

    def service(self, service_id: str) -> Service:
        return next(s for s in self.services if s.id == service_id)

    def policy_for(self, data_class: str) -> DataClassPolicy:
        return self.policies.data_classes[data_class]


def _duplicates(ids: list[str]) -> set[str]:
    return {k for k, n in Counter(ids).items() if n > 1}


def _where_codes(where: str | list[str]) -> list[str]:
    if isinstance(where, str):
        return [] if where in ("origin", "any") else [where]
    return list(where)


def cross_reference_problems(s: Scenario) -> Iterator[tuple[Loc, str]]:
    """Every reference that points nowhere, every duplicate id, every site outside its jurisdiction."""
    tree = s.tree
    for code in tree.duplicates:
        yield ("jurisdictions",), f"jurisdiction code {code!r} appears more than once"
    known = ", ".join(tree.codes)

    tables: list[tuple[Loc, list[Any]]] = [
        (("sites",), s.sites),
        (("cloud_regions",), s.cloud_regions),
        (("services",), s.services),
        (("demand",), s.demand),
        (("catalog", "modules"), s.catalog.modules),
        (("catalog", "servers"), s.catalog.servers),
    ]
    for prefix, rows in tables:
        dup = _duplicates([row.id for row in rows])
        for k, row in enumerate(rows):
            if row.id in dup:
                yield (*prefix, k, "id"), f"duplicate id {row.id!r}"

    module_ids = {m.id for m in s.catalog.modules}
    server_ids = {m.id for m in s.catalog.servers}
    for i, site in enumerate(s.sites):
        if site.jurisdiction not in tree:
            yield ("sites", i, "jurisdiction"), f"unknown jurisdiction {site.jurisdiction!r}; known: {known}"
        else:
            for code in tree.ancestors(site.jurisdiction):
                box = tree.bbox[code]
                if box is not None and not (box[0] <= site.lat <= box[2] and box[1] <= site.lon <= box[3]):
                    yield (
                        ("sites", i, "lat"),
                        f"site {site.id!r} at ({site.lat}, {site.lon}) lies outside jurisdiction {code!r} "
                        f"(bbox {list(box)})",
                    )
                    break
        if site.grid_zone not in s.timeseries.carbon:
            yield (
                ("sites", i, "grid_zone"),
                f"grid zone {site.grid_zone!r} has no carbon series under timeseries.carbon "
                f"(have: {', '.join(s.timeseries.carbon) or 'none'})",
            )
        if site.climate not in s.timeseries.weather:
            yield (
                ("sites", i, "climate"),
                f"climate {site.climate!r} has no weather series under timeseries.weather "
                f"(have: {', '.join(s.timeseries.weather) or 'none'})",
            )
        if site.failure_class is not None and site.failure_class not in s.reliability.classes:
            yield (
                ("sites", i, "failure_class"),
                f"unknown failure class {site.failure_class!r}; define it under reliability.classes "
                f"(have: {', '.join(s.reliability.classes) or 'none'})",
            )
        for k, inst in enumerate(site.existing):
            if inst.module not in module_ids:
                yield ("sites", i, "existing", k, "module"), f"unknown module {inst.module!r}"
            if inst.server not in server_ids:
                yield ("sites", i, "existing", k, "server"), f"unknown server type {inst.server!r}"

    for i, region in enumerate(s.cloud_regions):
        if region.jurisdiction not in tree:
            yield (
                ("cloud_regions", i, "jurisdiction"),
                f"unknown jurisdiction {region.jurisdiction!r}; known: {known}",
            )
        if region.grid_zone is not None and region.grid_zone not in s.timeseries.carbon:
            yield ("cloud_regions", i, "grid_zone"), f"grid zone {region.grid_zone!r} has no carbon series"

    for cls, pol in s.policies.data_classes.items():
        for field in ("process_in", "store_in"):
            where = getattr(pol, field)
            if where is None:
                continue
            for code in _where_codes(where):
                if code not in tree:
                    yield (
                        ("policies", "data_classes", cls, field),
                        f"unknown jurisdiction {code!r}; expected 'origin', 'any' or one of: {known}",
                    )

    service_ids = {sv.id for sv in s.services}
    for i, d in enumerate(s.demand):
        if d.jurisdiction not in tree:
            yield ("demand", i, "jurisdiction"), f"unknown jurisdiction {d.jurisdiction!r}; known: {known}"
        if d.service not in service_ids:
            yield ("demand", i, "service"), f"unknown service {d.service!r}; known: {', '.join(service_ids)}"
        if d.data_class not in s.policies.data_classes:
            yield (
                ("demand", i, "data_class"),
                f"data class {d.data_class!r} has no policy under policies.data_classes",
            )
        if d.profile != FLAT_PROFILE and d.profile not in s.profiles:
            yield ("demand", i, "profile"), f"unknown profile {d.profile!r}; define it under profiles"

    sources: list[tuple[str, str, str, Any]] = [
        ("carbon", key, "constant_gco2_per_kwh", src) for key, src in s.timeseries.carbon.items()
    ] + [("weather", key, "constant_c", src) for key, src in s.timeseries.weather.items()]
    for kind, key, constant_field, src in sources:
        loc: Loc = ("timeseries", kind, key)
        if src.format == "constant" and getattr(src, constant_field) is None:
            yield loc, f"format 'constant' needs {constant_field}"
        if src.format != "constant" and src.path is None:
            yield loc, f"format {src.format!r} needs a path"
        if src.path is not None and not s.resolve(src.path).is_file():
            yield (*loc, "path"), f"file not found: {s.resolve(src.path)}"
    for pname, prof in s.profiles.items():
        if prof.kind == "trace" and not s.resolve(prof.csv).is_file():
            yield ("profiles", pname, "csv"), f"file not found: {s.resolve(prof.csv)}"
    yield from workload_problems(s.workloads, s.tree.codes, s.policies.data_classes)
    yield from geometry_problems(s)
    if s.horizon is not None:
        yield from horizon_problems(s.horizon, service_ids, {d.id for d in s.demand})
