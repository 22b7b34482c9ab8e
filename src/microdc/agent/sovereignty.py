"""What may leave the site: a thin cache over `microdc.policy.PolicyBook.may_sync` (the one predicate).

The agent never decides sovereignty itself. For each data class it asks `may_sync(class, origin,
destination, aggregate=False)`; if raw data may not leave, it asks again with ``aggregate=True``.
The answer is one of:

* ``raw``        — readings are queued for upload as they are;
* ``aggregate``  — readings stay local; windowed aggregates over groups of sensors are uploaded;
* ``local``      — nothing of this class leaves the site.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from microdc.agent.config import AgentConfigError, PolicyConfig
from microdc.model.errors import Problem
from microdc.model.jurisdiction import Jurisdiction, JurisdictionTree
from microdc.model.policies import DataClassPolicy
from microdc.policy import PolicyBook

log = logging.getLogger("microdc.agent.sovereignty")
Decision = Literal["raw", "aggregate", "local"]
DEFAULT_FACILITY_POLICY = DataClassPolicy(
    process_in="any", description="facility telemetry (temperatures, power, UPS, doors): no personal data"
)


def build_policy_book(cfg: PolicyConfig, base_dir: Path = Path(".")) -> PolicyBook:
    """The jurisdiction tree and data classes from the scenario (if named) and/or the inline config."""
    roots: list[Jurisdiction] = list(cfg.jurisdictions)
    classes: dict[str, DataClassPolicy] = {}
    if cfg.scenario:
        from microdc.model import load_scenario

        path = Path(cfg.scenario)
        scenario = load_scenario(path if path.is_absolute() else base_dir / path)
        if not roots:
            roots = list(scenario.jurisdictions)
        classes.update(scenario.policies.data_classes)
    classes.update(cfg.data_classes)
    classes.setdefault(cfg.facility_data_class, DEFAULT_FACILITY_POLICY)
    if not roots:
        codes = dict.fromkeys([cfg.jurisdiction, cfg.upstream_jurisdiction])
        roots = [Jurisdiction(code=c) for c in codes]
    tree = JurisdictionTree(roots)
    problems = [
        Problem(
            "agent.yaml",
            None,
            f"policy.{field}",
            f"jurisdiction {code!r} is not in the tree ({', '.join(tree.codes)})",
        )
        for field, code in (
            ("jurisdiction", cfg.jurisdiction),
            ("upstream_jurisdiction", cfg.upstream_jurisdiction),
        )
        if code not in tree
    ]
    if problems:
        raise AgentConfigError(problems)
    return PolicyBook(tree, classes)


class SyncGate:
    """Per-class sync decision for data made at `origin` and sent to `destination`."""

    def __init__(self, book: PolicyBook, origin: str, destination: str):
        self.book = book
        self.origin = origin
        self.destination = destination
        self._cache: dict[str, Decision] = {}

    def decision(self, data_class: str) -> Decision:
        hit = self._cache.get(data_class)
        if hit is not None:
            return hit
        if data_class not in self.book.policies:
            d: Decision = "local"  # unknown class: fail closed
        elif self.book.may_sync(data_class, self.origin, self.destination, aggregate=False):
            d = "raw"
        elif self.book.may_sync(data_class, self.origin, self.destination, aggregate=True):
            d = "aggregate"
        else:
            d = "local"
        if d != "raw":
            log.info(
                "may_sync: raw %r data made in %s may not leave for %s; %s",
                data_class,
                self.origin,
                self.destination,
                "only aggregates are sent" if d == "aggregate" else "nothing of it leaves the site",
            )
        self._cache[data_class] = d
        return d

    def known(self, data_class: str) -> bool:
        return data_class in self.book.policies


def volume_refusal(
    book: PolicyBook, site_jurisdiction: str, data_class: str, jurisdiction: str
) -> str | None:
    """Why this site must not hold a volume of `data_class` bound to `jurisdiction` (None: it may).

    The same predicate as sync: may raw data of this class, made in the volume's jurisdiction, be
    stored here? Unknown classes and jurisdictions fail closed.
    """
    if data_class not in book.policies:
        return f"volume sovereignty: data class {data_class!r} is unknown to this site's policy"
    if jurisdiction not in book.tree:
        return f"volume sovereignty: jurisdiction {jurisdiction!r} is not in this site's jurisdiction tree"
    if not book.tree.is_inside(site_jurisdiction, jurisdiction):
        return (
            f"volume sovereignty: the volume's data must stay in {jurisdiction}; "
            f"this site is in {site_jurisdiction}"
        )
    if not book.may_sync(data_class, jurisdiction, site_jurisdiction, aggregate=False):
        return (
            f"volume sovereignty: {data_class!r} data bound to {jurisdiction} may not be stored at this "
            f"site ({site_jurisdiction})"
        )
    return None
