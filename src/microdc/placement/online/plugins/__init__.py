"""Built-in plugins, one small module each. ``PLUGIN_NAMES`` is the one list of their names."""

from __future__ import annotations

from typing import Final

from microdc.placement.online.framework import Registry
from microdc.placement.online.plugins.affinity import PlanAffinity
from microdc.placement.online.plugins.balance import Balance
from microdc.placement.online.plugins.capacity import Capacity
from microdc.placement.online.plugins.carbon import Carbon
from microdc.placement.online.plugins.cooling import Cooling
from microdc.placement.online.plugins.health import SiteHealth
from microdc.placement.online.plugins.latency import Latency
from microdc.placement.online.plugins.security import SecurityTier
from microdc.placement.online.plugins.slo import SloReachability
from microdc.placement.online.plugins.sovereignty import Sovereignty

SOVEREIGNTY: Final = "sovereignty"
SECURITY_TIER: Final = "security_tier"
SLO_REACHABILITY: Final = "slo_reachability"
SITE_HEALTH: Final = "site_health"
CAPACITY: Final = "capacity"
LATENCY: Final = "latency"
CARBON: Final = "carbon"
COOLING: Final = "cooling"
BALANCE: Final = "balance"
PLAN_AFFINITY: Final = "plan_affinity"

#: Every built-in plugin name, filters first.
PLUGIN_NAMES: Final[tuple[str, ...]] = (
    SOVEREIGNTY,
    SECURITY_TIER,
    SLO_REACHABILITY,
    SITE_HEALTH,
    CAPACITY,
    LATENCY,
    CARBON,
    COOLING,
    BALANCE,
    PLAN_AFFINITY,
)

_BUILTINS = {
    SOVEREIGNTY: Sovereignty,
    SECURITY_TIER: SecurityTier,
    SLO_REACHABILITY: SloReachability,
    SITE_HEALTH: SiteHealth,
    CAPACITY: Capacity,
    LATENCY: Latency,
    CARBON: Carbon,
    COOLING: Cooling,
    BALANCE: Balance,
    PLAN_AFFINITY: PlanAffinity,
}


def default_registry() -> Registry:
    """A registry holding every built-in plugin (add your own with ``register``)."""
    reg = Registry()
    for name in PLUGIN_NAMES:
        reg.register(name, _BUILTINS[name])
    return reg


__all__ = ["PLUGIN_NAMES", "default_registry"]
