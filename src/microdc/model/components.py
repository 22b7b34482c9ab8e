"""The things in a scenario: sites, modules, servers, cloud regions, services, demand, load profiles.

Each schema is declared once, with units in field names and bounds on the fields; every other layer
reads these. Cross-references (a site's jurisdiction, a demand's service) are checked in scenario.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
Lat = Annotated[float, Field(ge=-90, le=90, description="latitude, degrees")]
Lon = Annotated[float, Field(ge=-180, le=180, description="longitude, degrees")]
NonNeg = Annotated[float, Field(ge=0)]
Pos = Annotated[float, Field(gt=0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CoolingKind(StrEnum):
    FREE_AIR = "free_air"  # outside-air economizer with DX backup above the threshold
    DX = "dx"  # direct-expansion compressor only
    CHILLED_WATER = "chilled_water"
    LIQUID = "liquid"  # direct-to-chip with dry cooler


class Cooling(Strict):
    """Cooling plant of an MDC module. Unset parameters take the preset of its kind (physics.cooling)."""

    kind: CoolingKind
    economizer_max_c: float | None = Field(None, description="outdoor °C up to which cooling is free")
    transition_band_c: Annotated[float, Field(ge=0, le=30)] | None = Field(
        None, description="°C band above that over which compressors take over"
    )
    fan_fraction: Annotated[float, Field(ge=0, le=0.5)] | None = Field(
        None, description="fans+pumps / IT power"
    )
    supply_temp_c: Annotated[float, Field(ge=5, le=45)] | None = Field(
        None, description="supply air/coolant °C"
    )
    carnot_efficiency: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="achieved fraction of the Carnot COP of the compressors"
    )


class Ups(Strict):
    energy_kwh: NonNeg = Field(description="usable battery energy, kWh")
    efficiency: Annotated[float, Field(gt=0.5, le=1.0)] = Field(0.95, description="at rated load")


class Module(Strict):
    """An MDC enclosure: rack space, IT power envelope, cooling and UPS, and its cost."""

    id: Id
    rack_units: Annotated[int, Field(gt=0, le=400)]
    max_it_kw: Pos
    cooling: Cooling
    ups: Ups
    capex: NonNeg = Field(description="purchase and installation, currency units")
    lifetime_years: Annotated[float, Field(gt=0, le=40)]
    embodied_kgco2e: NonNeg = 0.0
    server_counts: list[Annotated[int, Field(gt=0)]] | None = Field(
        default=None, description="server counts the planner may choose; default: quarter, half and full"
    )


class ServerType(Strict):
    id: Id
    cores: Annotated[int, Field(gt=0)]
    memory_gb: Pos
    storage_tb: NonNeg = 0.0
    gpus: Annotated[int, Field(ge=0)] = 0
    idle_w: NonNeg
    peak_w: Pos
    rack_units: Annotated[int, Field(gt=0, le=10)] = 1
    capex: NonNeg
    lifetime_years: Annotated[float, Field(gt=0, le=20)] = 5.0
    embodied_kgco2e: NonNeg = 0.0

    @model_validator(mode="after")
    def _idle_below_peak(self) -> ServerType:
        if self.idle_w > self.peak_w:
            raise ValueError(f"idle_w ({self.idle_w}) must not exceed peak_w ({self.peak_w})")
        return self


class Catalog(Strict):
    modules: list[Module] = Field(min_length=1)
    servers: list[ServerType] = Field(min_length=1)


class InstalledModule(Strict):
    module: Id
    server: Id
    count: Annotated[int, Field(gt=0)]


class Site(Strict):
    """A candidate or existing MDC site (NetBox's Site, with power and jurisdiction)."""

    id: Id
    name: str = ""
    lat: Lat
    lon: Lon
    jurisdiction: str
    security_tier: Annotated[int, Field(ge=1, le=4, description="physical security, 1 (street) to 4 (vault)")]
    grid_power_kw: Pos = Field(description="grid connection cap at the site, kW (facility power, not IT)")
    annual_cost: NonNeg = Field(description="lease, connection and maintenance per year, currency units")
    grid_zone: str = Field(description="key into timeseries.carbon")
    climate: str = Field(description="key into timeseries.weather")
    energy_price_per_kwh: NonNeg | None = Field(default=None, description="overrides economics default")
    existing: list[InstalledModule] = Field(default_factory=list)


class CloudRegion(Strict):
    id: Id
    name: str = ""
    lat: Lat
    lon: Lon
    jurisdiction: str
    price_per_core_hour: NonNeg
    price_per_gb_hour: NonNeg = 0.0
    egress_per_gb: NonNeg
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = 1.15
    grid_zone: str | None = None
    security_tier: Annotated[int, Field(ge=1, le=4)] = 4
    watts_per_core: NonNeg = Field(8.0, description="for carbon accounting of cloud-served load")


class Slo(Strict):
    p95_ms: Pos | None = None
    p99_ms: Pos | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Slo:
        if self.p95_ms is None and self.p99_ms is None:
            raise ValueError("a latency SLO needs p95_ms and/or p99_ms")
        if self.p95_ms is not None and self.p99_ms is not None and self.p99_ms < self.p95_ms:
            raise ValueError("p99_ms must be >= p95_ms")
        return self


class Service(Strict):
    id: Id
    cpu_seconds_per_request: Pos
    memory_gb_per_instance: Pos
    requests_per_instance: Pos = Field(50.0, description="req/s one instance handles; sets memory need")
    payload_kb: NonNeg = Field(description="request size, kB; egress when served from the cloud")
    response_kb: NonNeg = 1.0
    slo: Slo
    target_utilization: Annotated[float, Field(gt=0, lt=1)] = 0.7


class DiurnalProfile(Strict):
    """A repeating load shape: 24 hourly factors and 7 weekday factors (Monday first), mean ≈ 1."""

    kind: Literal["diurnal"] = "diurnal"
    hourly: list[NonNeg] = Field(min_length=24, max_length=24)
    weekly: list[NonNeg] = Field(default_factory=lambda: [1.0] * 7, min_length=7, max_length=7)
    timezone: str = "UTC"


class TraceProfile(Strict):
    """A measured load trace: CSV with `timestamp` and `factor` columns (relative to the mean rate)."""

    kind: Literal["trace"] = "trace"
    csv: str
    timezone: str = "UTC"


Profile = Annotated[DiurnalProfile | TraceProfile, Field(discriminator="kind")]


class DemandSource(Strict):
    """A group of devices at one place, of one data class, calling one service."""

    id: Id
    lat: Lat
    lon: Lon
    devices: Annotated[int, Field(gt=0)]
    jurisdiction: str = Field(description="where the data originates")
    data_class: str
    service: str
    rate_per_device_rps: Pos = Field(description="mean requests per second per device")
    profile: str = "flat"
    data_gb_per_day: NonNeg = Field(0.0, description="raw data volume produced per day, all devices")

    @property
    def mean_rate_rps(self) -> float:
        return self.devices * self.rate_per_device_rps
