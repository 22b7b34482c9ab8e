"""Physics layer: pure, vectorized models of distance, latency, power, cooling, heat,
carbon and queueing. Depends only on numpy/scipy (and ``microdc.model``-free)."""

from microdc.physics.carbon import embodied_carbon_annual_kg, embodied_carbon_g, operational_carbon_g
from microdc.physics.cooling import (
    CoolingParams,
    FacilityParams,
    FacilityPower,
    UpsParams,
    annual_pue,
    cooling_cop,
    facility_power_w,
    fan_power_w,
    mechanical_share,
    pue,
    ups_runtime_s,
)
from microdc.physics.geo import (
    EARTH_RADIUS_KM,
    distance_matrix_km,
    great_circle_km,
    iter_distance_blocks_km,
    matrix_nbytes,
)
from microdc.physics.latency import FIBRE_RTT_MS_PER_KM, FIBRE_SPEED_KM_S, LatencyModel, fibre_bound_rtt_ms
from microdc.physics.power import energy_kwh, server_power_linear_w, server_power_specpower_w
from microdc.physics.queueing import (
    erlang_b,
    erlang_c,
    mmc_mean_response_s,
    mmc_mean_wait_s,
    mmc_response_quantile_s,
    mmc_response_survival,
    mmc_wait_quantile_s,
    utilization,
)
from microdc.physics.thermal import (
    ASHRAE_A1_ALLOWABLE_MAX_C,
    ThermalParams,
    inlet_temperature_c,
    time_to_threshold_s,
)

__all__ = [
    "ASHRAE_A1_ALLOWABLE_MAX_C",
    "EARTH_RADIUS_KM",
    "FIBRE_RTT_MS_PER_KM",
    "FIBRE_SPEED_KM_S",
    "CoolingParams",
    "FacilityParams",
    "FacilityPower",
    "LatencyModel",
    "ThermalParams",
    "UpsParams",
    "annual_pue",
    "cooling_cop",
    "distance_matrix_km",
    "embodied_carbon_annual_kg",
    "embodied_carbon_g",
    "energy_kwh",
    "erlang_b",
    "erlang_c",
    "facility_power_w",
    "fan_power_w",
    "fibre_bound_rtt_ms",
    "great_circle_km",
    "inlet_temperature_c",
    "iter_distance_blocks_km",
    "matrix_nbytes",
    "mechanical_share",
    "mmc_mean_response_s",
    "mmc_mean_wait_s",
    "mmc_response_quantile_s",
    "mmc_response_survival",
    "mmc_wait_quantile_s",
    "operational_carbon_g",
    "pue",
    "server_power_linear_w",
    "server_power_specpower_w",
    "time_to_threshold_s",
    "ups_runtime_s",
    "utilization",
]
