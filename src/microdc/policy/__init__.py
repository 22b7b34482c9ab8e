"""The one policy module: sovereignty, security tier, SLO reachability, sync permission."""

from microdc.policy.rules import PolicyBook, slo_mask, tier_with_trust

__all__ = ["PolicyBook", "slo_mask", "tier_with_trust"]
