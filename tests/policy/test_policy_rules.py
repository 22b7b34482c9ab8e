"""Guards of the policy module's rules, each with a case that breaks it: the one place the planner, placer,
simulator and agent ask what may run or be stored where (sovereignty, security tier, trust, SLO)."""

from __future__ import annotations

import numpy as np

from microdc.model.jurisdiction import Jurisdiction, JurisdictionTree
from microdc.model.policies import DataClassPolicy
from microdc.policy.rules import PolicyBook, slo_mask, tier_with_trust

TREE = JurisdictionTree(
    [
        Jurisdiction(code="EU", children=[Jurisdiction(code="DE"), Jurisdiction(code="FR")]),
        Jurisdiction(code="US"),
    ]
)
BOOK = PolicyBook(
    TREE,
    {
        "personal": DataClassPolicy(process_in="origin", min_security_tier=3),
        "health": DataClassPolicy(process_in="EU", store_in="origin", min_security_tier=2),
        "eu-or-us": DataClassPolicy(process_in=["DE", "US"]),
        "public": DataClassPolicy(process_in="any"),
    },
)
TARGETS = ["DE", "FR", "US", "EU"]  # a target in the EU itself (a pan-EU region) is inside EU only
T = np.array([TREE.index[c] for c in TARGETS])


def _sov(cls: str, origin: str) -> dict[str, bool]:
    mask = BOOK.sovereignty_mask([cls], np.array([TREE.index[origin]]), T)[0]
    return dict(zip(TARGETS, mask.tolist(), strict=True))


def test_sovereignty_origin_keeps_data_in_its_own_jurisdiction() -> None:
    assert _sov("personal", "DE") == {"DE": True, "FR": False, "US": False, "EU": False}


def test_sovereignty_store_in_narrows_process_in() -> None:
    # health may be processed anywhere in the EU, but stored only in its origin: the stricter rule wins
    assert _sov("health", "FR") == {"DE": False, "FR": True, "US": False, "EU": False}
    proc = BOOK.process_containers(["health"], np.array([TREE.index["FR"]]))[0]
    assert proc[TREE.index["EU"]] and not proc[TREE.index["FR"]]


def test_sovereignty_named_codes_and_any() -> None:
    assert _sov("eu-or-us", "FR") == {"DE": True, "FR": False, "US": True, "EU": False}
    assert _sov("public", "US") == dict.fromkeys(TARGETS, True)


def test_sovereignty_child_is_inside_its_parent_container() -> None:
    book = PolicyBook(TREE, {"eu": DataClassPolicy(process_in="EU")})
    mask = book.sovereignty_mask(["eu"], np.array([TREE.index["DE"]]), T)[0]
    assert mask.tolist() == [True, True, False, True]


def test_security_tier_minimum_is_inclusive() -> None:
    tiers = np.array([1, 2, 3, 4])
    mask = BOOK.security_mask(["personal", "health", "public"], tiers)
    assert mask.tolist() == [
        [False, False, True, True],
        [False, True, True, True],
        [True, True, True, True],
    ]


def test_untrusted_site_counts_as_tier_one() -> None:
    tiers = tier_with_trust(np.array([4, 3, 2]), np.array([True, False, True]))
    assert tiers.tolist() == [4, 1, 2]
    assert BOOK.security_mask(["personal"], tiers)[0].tolist() == [True, False, False]


def test_slo_mask_is_inclusive_and_per_workload() -> None:
    predicted = np.array([[10.0, 20.0, 20.0001], [5.0, 50.0, 49.9]])
    assert slo_mask(predicted, np.array([20.0, 50.0])).tolist() == [[True, True, False], [True, True, True]]
