"""Marking a site trusted/untrusted (admin action or break-in), which re-runs placement."""

from __future__ import annotations

from sqlalchemy.orm import Session

from microdc.control import audit, placements
from microdc.control.context import Ctx
from microdc.control.models import Site, SiteStateEvent
from microdc.control.site_state import display_state


def set_trust(session: Session, ctx: Ctx, site: Site, trusted: bool, reason: str) -> bool:
    """Returns True if the flag changed. Untrusting drains work that needs a higher tier."""
    if site.trusted == trusted:
        return False
    before = site.state
    site.trusted = trusted
    site.trust_reason = None if trusted else reason[:512]
    after = display_state(site.liveness, trusted)
    session.add(
        SiteStateEvent(site_id=site.id, from_state=before, to_state=after, reason=reason[:512], at=ctx.now)
    )
    audit.append(
        session,
        actor=ctx.actor,
        action="site.trust" if trusted else "site.untrust",
        target=f"site:{site.id}",
        client_ip=ctx.client_ip,
        details={"reason": reason, "from": before, "to": after},
        now=ctx.now,
    )
    session.flush()
    placements.recompute(session, ctx)
    return True
