"""Rule ``jurisdiction-tree``: the sites' jurisdiction chains must form a tree (no cycle, one parent each).

Each site stores its jurisdiction and the areas containing it, nearest first (``DE`` in ``["EU"]``).
Together these chains are the tree sovereignty is decided on. A chain that contains itself (``DE`` in
``["EU", "DE"]``), two sites that nest codes the other way round (``DE`` in ``EU`` here, ``EU`` in
``DE`` there) or give one code two different parents would make "is this site inside EU?" ill-defined,
so they are refused with a 422 naming the site and the codes, before anything is stored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control.models import Site
from microdc.control.problems import ProblemError

RULE = "jurisdiction-tree"


def _refuse(detail: str, **extra: Any) -> ProblemError:
    return ProblemError(
        422, f"{RULE}: {detail}", slug=RULE, title="Jurisdictions do not form a tree", rule=RULE, **extra
    )


def chain_problem(chain: Sequence[str]) -> str | None:
    """Why one site's chain (its jurisdiction, then its ancestors) is not a path, or None."""
    seen: set[str] = set()
    for code in chain:
        if code in seen:
            return f"{code!r} appears twice in the chain {' ⊂ '.join(chain)} (a cycle)"
        seen.add(code)
    return None


def check(chains: Iterable[tuple[str, Sequence[str]]], site_id: str) -> None:
    """Refuse unless all (site, chain) pairs fit one forest; `site_id` is the site being written."""
    parent: dict[str, tuple[str, str]] = {}  # code -> (parent code, site that said so)
    for sid, chain in chains:
        why = chain_problem(chain)
        if why is not None:
            raise _refuse(f"site {sid!r}: {why}", site_id=sid)
        for child, up in itertools.pairwise(chain):
            had = parent.get(child)
            if had is not None and had[0] != up:
                raise _refuse(
                    f"site {site_id!r} puts {child!r} inside {up!r} but site {had[1]!r} puts it inside "
                    f"{had[0]!r}; a jurisdiction has one parent",
                    site_id=site_id,
                    jurisdiction=child,
                )
            parent[child] = (up, sid)
    for start in parent:
        seen = [start]
        code = start
        for _ in range(len(parent)):  # a path up has at most len(parent) links
            if code not in parent:
                break
            code = parent[code][0]
            if code in seen:
                loop = " ⊂ ".join([*seen[seen.index(code) :], code])
                raise _refuse(f"site {site_id!r} would close the cycle {loop}", site_id=site_id)
            seen.append(code)


def check_site(session: Session, site_id: str, jurisdiction: str, ancestors: Sequence[str]) -> None:
    """Check the site's new chain against every other stored site's."""
    others = [
        (sid, (j, *(anc or ())))
        for sid, j, anc in session.execute(
            select(Site.id, Site.jurisdiction, Site.jurisdiction_ancestors).where(Site.id != site_id)
        )
    ]
    check([*others, (site_id, (jurisdiction, *ancestors))], site_id)
