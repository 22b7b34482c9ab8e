"""The things in a scenario: sites, modules, servers, cloud regions, services, demand, load profiles.

Each schema is declared once, with units in field names and bounds on the fields; every other layer
reads these. Cross-references (a site's jurisdiction, a demand's service) are checked in scenario.py.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from microdc.physics.cooling import ASHRAE_ENVELOPES


def _known_time_zone(name: str) -> str:
    """An IANA time zone that pandas (which converts every local time here) can use."""
    try:
        pd.Timestamp("2023-01-01").tz_localize(name)
    except (LookupError, ValueError, TypeError, AttributeError):
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as 'UTC', 'Europe/Berlin' or "
            "'Australia/Melbourne'"
        ) from None
    return name


TimeZone = Annotated[str, AfterValidator(_known_time_zone)]
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

    kind: CoolingKind = Field(
        description="cooling plant: free_air (economizer with compressor backup), dx (compressor only), "
        "chilled_water, or liquid (direct-to-chip with a dry cooler)"
    )
    economizer_max_c: float | None = Field(
        None, description="outdoor temperature up to which cooling is free, °C; default: the kind's preset"
    )
    transition_band_c: Annotated[float, Field(ge=0, le=30)] | None = Field(
        None, description="band above economizer_max_c over which compressors take over, °C (0-30)"
    )
    fan_fraction: Annotated[float, Field(ge=0, le=0.5)] | None = Field(
        None, description="fan and pump power at full IT load, as a fraction of the IT capacity (0-0.5)"
    )
    fan_min_speed: Annotated[float, Field(ge=0, le=1)] | None = Field(
        None,
        description="lowest fan/pump speed, fraction of design speed (0-1; 1: constant speed); fans follow "
        "the IT load down to it, power ∝ speed³",
    )
    supply_temp_c: Annotated[float, Field(ge=5, le=45)] | None = Field(
        None, description="supply air or coolant temperature, °C (5-45)"
    )
    carnot_efficiency: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None, description="achieved fraction of the Carnot COP of the compressors (0-1]"
    )
    cycling_degradation: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None,
        description="compressor cycling loss coefficient C_d, dimensionless [0-1): part-load factor "
        "1 - C_d (1 - PLR) (AHRI 210/240; preset 0.25 for DX plant, 0 for chillers)",
    )


class Ups(Strict):
    """The module's uninterruptible power supply."""

    energy_kwh: NonNeg = Field(description="usable battery energy, kWh")
    efficiency: Annotated[float, Field(gt=0.5, le=1.0)] = Field(
        0.95, description="conversion efficiency at rated load, fraction (0.5-1]"
    )


class Module(Strict):
    """An MDC enclosure: rack space, IT power envelope, cooling and UPS, and its cost."""

    id: Id = Field(description="unique module type id (letters, digits, _ . : -)")
    rack_units: Annotated[int, Field(gt=0, le=400)] = Field(description="rack space for servers, U (1-400)")
    max_it_kw: Pos = Field(
        description="IT power envelope: most server power the module can feed and cool, kW"
    )
    cooling: Cooling = Field(description="the cooling plant")
    ashrae_class: Literal["recommended", "A1", "A2", "A3", "A4"] = Field(
        "recommended",
        description="ASHRAE TC 9.9 (2021) envelope of the IT inlet air that limits a free_air economizer: "
        "recommended (18-27 °C, dew point -9 to 15 °C, <= 70 % RH) or an allowable class A1-A4",
    )
    ups: Ups = Field(description="the UPS")
    capex: NonNeg = Field(description="purchase and installation of the module, currency units")
    lifetime_years: Annotated[float, Field(gt=0, le=40)] = Field(
        description="depreciation lifetime, years (capex is annualized over it)"
    )
    embodied_kgco2e: NonNeg = Field(0.0, description="embodied (manufacturing) carbon, kg CO2e")
    server_counts: list[Annotated[int, Field(gt=0)]] | None = Field(
        default=None,
        description="server counts the planner may choose, count; default: quarter, half and full",
    )

    @model_validator(mode="after")
    def _supply_inside_envelope(self) -> Module:
        supply = self.cooling.supply_temp_c
        env = ASHRAE_ENVELOPES[self.ashrae_class]
        free_air = self.cooling.kind is CoolingKind.FREE_AIR
        if free_air and supply is not None and not env.dry_bulb_min_c <= supply <= env.dry_bulb_max_c:
            raise ValueError(
                f"cooling.supply_temp_c {supply} °C lies outside the ASHRAE {self.ashrae_class} envelope "
                f"({env.dry_bulb_min_c:g}-{env.dry_bulb_max_c:g} °C) that a free_air economizer "
                "supplies; lower it or choose an allowable ashrae_class (A1-A4)"
            )
        return self


class ServerType(Strict):
    """A server model that modules can hold."""

    id: Id = Field(description="unique server type id (letters, digits, _ . : -)")
    cores: Annotated[int, Field(gt=0)] = Field(description="CPU cores per server, count")
    memory_gb: Pos = Field(description="memory per server, GB")
    storage_tb: NonNeg = Field(
        0.0, description="storage per server, TB; the planner's storage capacity (docs/storage.md)"
    )
    storage_capex_per_tb: NonNeg = Field(
        0.0,
        description="price of the server's storage per TB, currency units, on top of capex (0: the drives "
        "are in capex); annualized over lifetime_years",
    )
    storage_w_per_tb: NonNeg = Field(
        0.0,
        description="constant power of the server's storage per TB, W, on top of idle_w (0: the drives are "
        "in idle_w); typical 0.3-0.5 W/TB for hard drives (docs/storage.md)",
    )
    gpus: Annotated[int, Field(ge=0)] = Field(0, description="GPUs per server, count")
    idle_w: NonNeg = Field(description="power drawn when idle, W")
    peak_w: Pos = Field(description="power drawn at full load, W (sets the module's IT envelope use)")
    rack_units: Annotated[int, Field(gt=0, le=10)] = Field(1, description="height, U (1-10)")
    capex: NonNeg = Field(description="purchase price of one server, currency units")
    lifetime_years: Annotated[float, Field(gt=0, le=20)] = Field(
        5.0, description="depreciation lifetime, years (capex is annualized over it)"
    )
    embodied_kgco2e: NonNeg = Field(0.0, description="embodied (manufacturing) carbon, kg CO2e")

    @model_validator(mode="after")
    def _idle_below_peak(self) -> ServerType:
        if self.idle_w > self.peak_w:
            raise ValueError(f"idle_w ({self.idle_w}) must not exceed peak_w ({self.peak_w})")
        return self


class Catalog(Strict):
    """What may be built: MDC module types and server types."""

    modules: list[Module] = Field(min_length=1, description="MDC module (enclosure) types; at least one")
    servers: list[ServerType] = Field(min_length=1, description="server types; at least one")


class InstalledModule(Strict):
    """A module already standing at a site, with its servers."""

    module: Id = Field(description="id of a module type in catalog.modules")
    server: Id = Field(description="id of a server type in catalog.servers")
    count: Annotated[int, Field(gt=0)] = Field(description="servers installed, count")


class Site(Strict):
    """A candidate or existing MDC site (NetBox's Site, with power and jurisdiction)."""

    id: Id = Field(description="unique site id (letters, digits, _ . : -)")
    name: str = Field("", description="human-readable name")
    lat: Lat = Field(description="latitude, degrees (-90 to 90)")
    lon: Lon = Field(description="longitude, degrees (-180 to 180)")
    jurisdiction: str = Field(description="code of the jurisdiction the site lies in (see jurisdictions)")
    security_tier: Annotated[int, Field(ge=1, le=4)] = Field(
        description="physical security tier, 1 (street cabinet) to 4 (vault)"
    )
    grid_power_kw: Pos = Field(description="grid connection cap at the site, kW (facility power, not IT)")
    annual_cost: NonNeg = Field(description="lease, connection and maintenance per year, currency units")
    grid_zone: str = Field(description="key into timeseries.carbon")
    climate: str = Field(description="key into timeseries.weather")
    energy_price_per_kwh: NonNeg | None = Field(
        default=None, description="energy price at this site, currency units per kWh; overrides economics"
    )
    existing: list[InstalledModule] = Field(
        default_factory=list,
        description="modules already installed (the site then offers exactly these); in a CSV: "
        "module:server:count entries separated by ';'",
    )
    failure_class: str | None = Field(
        default=None,
        description="key into reliability.classes: failure rates of this kind of site (default: "
        "reliability.defaults)",
    )


class CloudRegion(Strict):
    """A cloud region that can serve demand at list prices (unlimited capacity)."""

    id: Id = Field(description="unique region id (letters, digits, _ . : -)")
    name: str = Field("", description="human-readable name")
    lat: Lat = Field(description="latitude, degrees (-90 to 90)")
    lon: Lon = Field(description="longitude, degrees (-180 to 180)")
    jurisdiction: str = Field(description="code of the jurisdiction the region lies in (see jurisdictions)")
    price_per_core_hour: NonNeg = Field(description="compute price, currency units per core-hour")
    price_per_gb_hour: NonNeg = Field(0.0, description="memory price, currency units per GB-hour")
    egress_per_gb: NonNeg = Field(description="data transfer out of the region, currency units per GB")
    pue: Annotated[float, Field(ge=1.0, le=3.0)] = Field(
        1.15, description="power usage effectiveness, ratio of facility to IT power (1-3)"
    )
    grid_zone: str | None = Field(None, description="key into timeseries.carbon; none: carbon not counted")
    security_tier: Annotated[int, Field(ge=1, le=4)] = Field(
        4, description="physical security tier, 1 (street cabinet) to 4 (vault)"
    )
    watts_per_core: NonNeg = Field(8.0, description="power per billed core for carbon accounting, W")
    storage_per_gb_month: NonNeg = Field(
        0.023,
        description="object storage price for data kept in the region, currency units per GB-month "
        "(0.023: AWS S3 Standard list price, docs/storage.md)",
    )


class Slo(Strict):
    """A latency objective for one service: p95 and/or p99 of the response time."""

    p95_ms: Pos | None = Field(None, description="95th percentile response time limit, ms")
    p99_ms: Pos | None = Field(None, description="99th percentile response time limit, ms (>= p95_ms)")

    @model_validator(mode="after")
    def _at_least_one(self) -> Slo:
        if self.p95_ms is None and self.p99_ms is None:
            raise ValueError("a latency SLO needs p95_ms and/or p99_ms")
        if self.p95_ms is not None and self.p99_ms is not None and self.p99_ms < self.p95_ms:
            raise ValueError("p99_ms must be >= p95_ms")
        return self


class Service(Strict):
    """An application that devices call: its cost per request and its latency SLO."""

    id: Id = Field(description="unique service id (letters, digits, _ . : -)")
    cpu_seconds_per_request: Pos = Field(description="CPU time one request needs on one core, seconds")
    memory_gb_per_instance: Pos = Field(description="memory one instance needs, GB")
    requests_per_instance: Pos = Field(
        50.0, description="load one instance handles, req/s; sets how many instances (memory) a load needs"
    )
    payload_kb: NonNeg = Field(description="request size, kB; backhaul when served from the cloud")
    response_kb: NonNeg = Field(1.0, description="response size, kB; egress when served from the cloud")
    slo: Slo = Field(description="the latency objective")
    target_utilization: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.7, description="CPU utilization capacity is sized for, fraction (0-1)"
    )


class DiurnalProfile(Strict):
    """A repeating load shape: 24 hourly factors and 7 weekday factors (Monday first), mean ≈ 1."""

    kind: Literal["diurnal"] = Field("diurnal", description="'diurnal': a repeating daily and weekly shape")
    hourly: list[NonNeg] = Field(
        min_length=24, max_length=24, description="24 load factors (dimensionless), local hour 0 first"
    )
    weekly: list[NonNeg] = Field(
        default_factory=lambda: [1.0] * 7,
        min_length=7,
        max_length=7,
        description="7 load factors (dimensionless), Monday first",
    )
    timezone: TimeZone = Field("UTC", description="IANA time zone of the hours, e.g. Europe/Berlin")


class TraceProfile(Strict):
    """A measured load trace: CSV with `timestamp` and `factor` columns (relative to the mean rate)."""

    kind: Literal["trace"] = Field("trace", description="'trace': a measured load trace")
    csv: str = Field(
        description="path of a CSV file with columns timestamp (ISO 8601) and factor (dimensionless, >= 0), "
        "relative to the scenario file"
    )
    timezone: TimeZone = Field("UTC", description="IANA time zone of timestamps without an offset")


Profile = Annotated[DiurnalProfile | TraceProfile, Field(discriminator="kind")]


class DemandSource(Strict):
    """A group of devices at one place, of one data class, calling one service."""

    id: Id = Field(description="unique demand id (letters, digits, _ . : -)")
    lat: Lat = Field(description="latitude, degrees (-90 to 90)")
    lon: Lon = Field(description="longitude, degrees (-180 to 180)")
    devices: Annotated[int, Field(gt=0)] = Field(description="devices in the group, count")
    jurisdiction: str = Field(description="code of the jurisdiction where the data originates")
    data_class: str = Field(description="key into policies.data_classes")
    service: str = Field(description="id of the service the devices call")
    rate_per_device_rps: Pos = Field(description="mean request rate per device, req/s")
    profile: str = Field("flat", description="key into profiles, or 'flat' for a constant rate")
    data_gb_per_day: NonNeg = Field(0.0, description="raw data volume produced per day by all devices, GB")

    @property
    def mean_rate_rps(self) -> float:
        return self.devices * self.rate_per_device_rps
