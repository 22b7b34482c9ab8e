"""A small two-country scenario written per test, and hand-made plans for it (no planner needed)."""

from __future__ import annotations

from pathlib import Path

from microdc.placement.plan import Assignment, BuiltSite, Plan

SCENARIO = """
name: twin
start: 2023-01-01
jurisdictions:
  - code: EU
    children:
      - {{code: DE, bbox: [47.2, 5.8, 55.1, 15.1]}}
      - {{code: FR, bbox: [41.3, -5.2, 51.1, 9.6]}}
  - {{code: US}}
sites:
  csv: sites.csv
  defaults: {{grid_zone: grid, climate: mild}}
catalog:
  modules:
    - {{id: cab, rack_units: 12, max_it_kw: 6, cooling: {{kind: free_air}}, ups: {{energy_kwh: {ups_kwh}}},
       capex: 20000, lifetime_years: 10}}
  servers:
    - {{id: srv, cores: 32, memory_gb: 256, idle_w: 100, peak_w: 400, capex: 8000}}
cloud_regions:
  - {{id: us-east, lat: 37.1, lon: -78.5, jurisdiction: US, price_per_core_hour: 0.04, egress_per_gb: 0.08,
     grid_zone: grid}}
services:
  - {{id: vision, cpu_seconds_per_request: {vision_cpu}, memory_gb_per_instance: 2, payload_kb: 100,
     slo: {{p95_ms: 60}}}}
  - {{id: batch, cpu_seconds_per_request: 0.01, memory_gb_per_instance: 1, payload_kb: 1,
     slo: {{p95_ms: 500}}}}
profiles:
  day: {{kind: diurnal, hourly: [0.5, 0.4, 0.4, 0.4, 0.5, 0.7, 0.9, 1.2, 1.4, 1.3, 1.2, 1.3,
                                1.4, 1.3, 1.3, 1.3, 1.4, 1.5, 1.4, 1.2, 1.0, 0.8, 0.6, 0.5]}}
demand:
  csv: demand.csv
policies:
  data_classes:
    personal: {{process_in: origin, min_security_tier: 2}}
    public: {{process_in: any}}
  redundancy: {{n_plus: {n_plus}}}
timeseries:
  carbon:
    grid: {{format: constant, constant_gco2_per_kwh: 300}}
  weather:
    mild: {{format: constant, constant_c: {outdoor_c}}}
"""

SITES = """id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost
berlin,Berlin,52.52,13.40,DE,3,30,20000
hamburg,Hamburg,53.55,9.99,DE,2,30,15000
munich,Munich,48.14,11.58,DE,1,10,9000
paris,Paris,48.86,2.35,FR,2,30,22000
lyon,Lyon,45.76,4.84,FR,2,30,12000
"""

DEMAND = """id,lat,lon,devices,jurisdiction,data_class,service,rate_per_device_rps,profile,data_gb_per_day
cams-berlin,52.50,13.35,100,DE,personal,vision,2,{profile},40
cams-paris,48.85,2.30,80,FR,personal,vision,2,{profile},30
sensors-lyon,45.76,4.84,500,FR,public,batch,0.5,{profile},5
"""


def write_twin(
    root: Path,
    *,
    n_plus: int = 0,
    profile: str = "day",
    vision_cpu: float = 0.005,
    outdoor_c: float = 15.0,
    ups_kwh: float = 3.0,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "scenario.yaml").write_text(
        SCENARIO.format(n_plus=n_plus, vision_cpu=vision_cpu, outdoor_c=outdoor_c, ups_kwh=ups_kwh),
        encoding="utf-8",
    )
    (root / "sites.csv").write_text(SITES, encoding="utf-8")
    (root / "demand.csv").write_text(DEMAND.format(profile=profile), encoding="utf-8")
    return root


def built(site: str, servers: int = 2, cores: float | None = None) -> BuiltSite:
    return BuiltSite(
        site=site,
        module="cab",
        server="srv",
        servers=servers,
        cores=float(cores if cores is not None else 32 * servers),
        memory_gb=256.0 * servers,
        it_kw=0.4 * servers,
        annual_pue=1.1,
        fixed_cost=10000.0,
    )


def assign(
    demand: str, target: str, *, kind: str = "site", role: str = "primary", fraction: float = 1.0
) -> Assignment:
    return Assignment(
        demand=demand,
        target=target,
        kind=kind,
        role=role,
        fraction=fraction,  # type: ignore[arg-type]
        rtt_ms=0.0,
        p95_ms=0.0,
    )


def twin_plan(n_plus: int = 1, cores: float | None = None) -> Plan:
    """Every source on its own site; the n+1 backup in the same country (and the cloud for public data)."""
    return Plan(
        scenario="twin",
        alternative="hand",
        method="hand",
        status="optimal",
        objective=0.0,
        lower_bound=0.0,
        gap=0.0,
        seconds=0.0,
        currency="USD",
        n_plus=n_plus,
        costs={},
        sites=[
            built("berlin", cores=cores),
            built("hamburg", cores=cores),
            built("paris", cores=cores),
            built("lyon", cores=cores),
        ],
        assignments=[
            assign("cams-berlin", "berlin"),
            assign("cams-berlin", "hamburg", role="backup"),
            assign("cams-paris", "paris"),
            assign("cams-paris", "lyon", role="backup"),
            assign("sensors-lyon", "lyon"),
            assign("sensors-lyon", "us-east", kind="cloud", role="backup"),
        ],
    )


def write_twin_with(
    root: Path, edits: dict[str, str], *, n_plus: int = 1, profile: str = "day", vision_cpu: float = 0.005
) -> Path:
    """``write_twin`` then exact text edits of scenario.yaml (each old text must occur exactly once)."""
    write_twin(root, n_plus=n_plus, profile=profile, vision_cpu=vision_cpu)
    path = root / "scenario.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in edits.items():
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the twin scenario"
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return root


def hand_plan(sites: list[BuiltSite], assignments: list[Assignment]) -> Plan:
    """A hand-made plan for the twin: these sites built, these assignments (nothing checked)."""
    return twin_plan().model_copy(update={"sites": sites, "assignments": assignments})
