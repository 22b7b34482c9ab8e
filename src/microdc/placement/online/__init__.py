"""The online placer: a Kubernetes-scheduler-style framework (filter, score, reserve) over numpy
tables, used by the simulator after faults and by the control plane.

Public API: :class:`Placer` / :func:`place`, the tables :class:`WorkloadTable` and :class:`FleetState`,
the result :class:`Placement` with :class:`Outcome` and :class:`Code`, :class:`PlacerConfig`, the
plugin registry (:func:`default_registry`, :data:`PLUGIN_NAMES`), and builders from a scenario and a
plan (:func:`fleet_from_plan`, :func:`workloads_from_plan`, :func:`workloads_for_demand`).
"""

from microdc.placement.online.framework import (
    FITS,
    MANDATORY_FILTERS,
    RESOURCES,
    Code,
    CycleState,
    FilterPlugin,
    FleetState,
    Kind,
    Outcome,
    Placement,
    PlacerConfig,
    PlacerContext,
    PlacerError,
    Registry,
    ScorePlugin,
    WorkloadTable,
)
from microdc.placement.online.placer import (
    CLOUD_PREFIX,
    DemandSizes,
    Pieces,
    Placer,
    demand_sizes,
    fleet_from_plan,
    place,
    target_id,
    workloads_for_demand,
    workloads_from_plan,
)
from microdc.placement.online.plugins import PLUGIN_NAMES, default_registry

__all__ = [
    "CLOUD_PREFIX",
    "FITS",
    "MANDATORY_FILTERS",
    "PLUGIN_NAMES",
    "RESOURCES",
    "Code",
    "CycleState",
    "DemandSizes",
    "FilterPlugin",
    "FleetState",
    "Kind",
    "Outcome",
    "Pieces",
    "Placement",
    "Placer",
    "PlacerConfig",
    "PlacerContext",
    "PlacerError",
    "Registry",
    "ScorePlugin",
    "WorkloadTable",
    "default_registry",
    "demand_sizes",
    "fleet_from_plan",
    "place",
    "target_id",
    "workloads_for_demand",
    "workloads_from_plan",
]
