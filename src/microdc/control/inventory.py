"""Inventory data layer (NetBox-like): sites, modules, servers, power feeds (imports: site_import.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from microdc.control import audit, jurisdictions, placements
from microdc.control.context import Ctx
from microdc.control.models import Module, PowerFeed, Sensor, Server, Site, readings
from microdc.control.problems import conflict, not_found
from microdc.control.schemas import ModuleIn, PowerFeedIn, ServerIn, SiteIn, SiteOut, feed_power_kw


def _audit(session: Session, ctx: Ctx, action: str, target: str, details: dict[str, Any]) -> None:
    audit.append(
        session,
        actor=ctx.actor,
        action=action,
        target=target,
        client_ip=ctx.client_ip,
        details=details,
        now=ctx.now,
    )


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=False)


def site_out(session: Session, sites: Sequence[Site]) -> list[SiteOut]:
    ids = [s.id for s in sites]
    if not ids:
        return []
    caps = dict(
        session.execute(
            select(Module.site_id, func.sum(Server.cores * Server.quantity))
            .join(Server, Server.module_id == Module.id)
            .where(Module.site_id.in_(ids))
            .group_by(Module.site_id)
        ).all()
    )
    it_kw = dict(
        session.execute(
            select(Module.site_id, func.sum(Module.max_it_kw))
            .where(Module.site_id.in_(ids))
            .group_by(Module.site_id)
        ).all()
    )
    feeds: dict[str, float] = {}
    for f in session.scalars(select(PowerFeed).where(PowerFeed.site_id.in_(ids))):
        feeds[f.site_id] = feeds.get(f.site_id, 0.0) + feed_power_kw(
            f.voltage_v, f.amps_a, f.phase, f.utilization
        )
    out = []
    for s in sites:
        o = SiteOut.model_validate(s)
        o.capacity_cores = float(caps.get(s.id) or 0.0)
        o.max_it_kw = float(it_kw.get(s.id) or 0.0)
        o.power_feed_kw = round(feeds.get(s.id, 0.0), 6)
        out.append(o)
    return out


def get_site(session: Session, site_id: str, *, lock: bool = False) -> Site:
    site = session.get(Site, site_id, with_for_update=lock)
    if site is None:
        raise not_found(f"site {site_id!r}")
    return site


def add_module_rows(session: Session, site_id: str, m: ModuleIn) -> Module:
    mod = Module(
        site_id=site_id,
        name=m.name,
        enclosure=m.enclosure,
        rack_units=m.rack_units,
        max_it_kw=m.max_it_kw,
        cooling_kind=m.cooling_kind.value,
    )
    session.add(mod)
    session.flush()
    for srv in m.servers:
        add_server_row(session, mod.id, srv)
    return mod


def add_server_row(session: Session, module_id: int, s: ServerIn) -> Server:
    srv = Server(module_id=module_id, **s.model_dump())
    session.add(srv)
    return srv


def _add_feed(session: Session, site_id: str, f: PowerFeedIn) -> PowerFeed:
    feed = PowerFeed(site_id=site_id, **f.model_dump())
    session.add(feed)
    return feed


def create_site(session: Session, ctx: Ctx, data: SiteIn) -> Site:
    if session.get(Site, data.id) is not None:
        raise conflict(f"site {data.id!r} already exists")
    jurisdictions.check_site(session, data.id, data.jurisdiction, data.jurisdiction_ancestors)
    site = Site(
        id=data.id,
        name=data.name,
        lat=data.lat,
        lon=data.lon,
        jurisdiction=data.jurisdiction,
        jurisdiction_ancestors=list(data.jurisdiction_ancestors),
        security_tier=data.security_tier,
        grid_power_kw=data.grid_power_kw,
        status=data.status.value,
        liveness="unknown",
        liveness_since=ctx.now,
        trusted=True,
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    session.add(site)
    session.flush()
    for m in data.modules:
        add_module_rows(session, site.id, m)
    for f in data.power_feeds:
        _add_feed(session, site.id, f)
    session.flush()
    _audit(session, ctx, "site.create", f"site:{site.id}", _dump(data))
    return site


def update_site(session: Session, ctx: Ctx, site_id: str, changes: dict[str, Any]) -> Site:
    site = get_site(session, site_id, lock=True)
    if {"jurisdiction", "jurisdiction_ancestors"} & changes.keys():
        jurisdictions.check_site(
            session,
            site_id,
            changes.get("jurisdiction", site.jurisdiction),
            changes.get("jurisdiction_ancestors", site.jurisdiction_ancestors),
        )
    for k, v in changes.items():
        setattr(site, k, v.value if hasattr(v, "value") else v)
    site.updated_at = ctx.now
    _audit(session, ctx, "site.update", f"site:{site_id}", _jsonable(changes))
    session.flush()
    if {"jurisdiction", "jurisdiction_ancestors", "security_tier", "status"} & changes.keys():
        placements.recompute(session, ctx)
    return site


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") else v) for k, v in d.items()}


def delete_site(session: Session, ctx: Ctx, site_id: str) -> None:
    site = get_site(session, site_id, lock=True)
    # readings carry no foreign key (ingest speed), so they go explicitly; the rest cascades
    session.execute(
        delete(readings).where(readings.c.sensor_pk.in_(select(Sensor.id).where(Sensor.site_id == site_id)))
    )
    session.delete(site)
    session.flush()
    _audit(session, ctx, "site.delete", f"site:{site_id}", {})
    placements.recompute(session, ctx)


def add_module(session: Session, ctx: Ctx, site_id: str, data: ModuleIn) -> Module:
    get_site(session, site_id)
    if session.scalar(select(Module.id).where(Module.site_id == site_id, Module.name == data.name)):
        raise conflict(f"module {data.name!r} already exists at {site_id}")
    mod = add_module_rows(session, site_id, data)
    session.flush()
    _audit(session, ctx, "module.create", f"module:{mod.id}", {"site_id": site_id, **_dump(data)})
    placements.recompute(session, ctx)
    return mod


def get_module(session: Session, module_id: int) -> Module:
    mod = session.get(Module, module_id)
    if mod is None:
        raise not_found(f"module {module_id}")
    return mod


def update_module(session: Session, ctx: Ctx, module_id: int, changes: dict[str, Any]) -> Module:
    mod = get_module(session, module_id)
    new_name = changes.get("name")
    if new_name is not None and new_name != mod.name:
        taken = select(Module.id).where(Module.site_id == mod.site_id, Module.name == new_name)
        if session.scalar(taken):
            raise conflict(f"module {new_name!r} already exists at {mod.site_id}")
    for k, v in changes.items():
        setattr(mod, k, v.value if hasattr(v, "value") else v)
    session.flush()
    _audit(session, ctx, "module.update", f"module:{module_id}", _jsonable(changes))
    return mod


def delete_module(session: Session, ctx: Ctx, module_id: int) -> None:
    mod = get_module(session, module_id)
    session.delete(mod)
    session.flush()
    _audit(session, ctx, "module.delete", f"module:{module_id}", {"site_id": mod.site_id})
    placements.recompute(session, ctx)


def add_server(session: Session, ctx: Ctx, module_id: int, data: ServerIn) -> Server:
    get_module(session, module_id)
    srv = add_server_row(session, module_id, data)
    session.flush()
    _audit(session, ctx, "server.create", f"server:{srv.id}", {"module_id": module_id, **_dump(data)})
    placements.recompute(session, ctx)
    return srv


def get_server(session: Session, server_id: int) -> Server:
    srv = session.get(Server, server_id)
    if srv is None:
        raise not_found(f"server {server_id}")
    return srv


def update_server(session: Session, ctx: Ctx, server_id: int, changes: dict[str, Any]) -> Server:
    srv = get_server(session, server_id)
    for k, v in changes.items():
        setattr(srv, k, v)
    if srv.idle_w > srv.peak_w:
        raise conflict("idle_w must not exceed peak_w")
    session.flush()
    _audit(session, ctx, "server.update", f"server:{server_id}", _jsonable(changes))
    placements.recompute(session, ctx)
    return srv


def delete_server(session: Session, ctx: Ctx, server_id: int) -> None:
    srv = get_server(session, server_id)
    session.delete(srv)
    session.flush()
    _audit(session, ctx, "server.delete", f"server:{server_id}", {"module_id": srv.module_id})
    placements.recompute(session, ctx)


def add_feed(session: Session, ctx: Ctx, site_id: str, data: PowerFeedIn) -> PowerFeed:
    get_site(session, site_id)
    feed = _add_feed(session, site_id, data)
    session.flush()
    _audit(session, ctx, "power_feed.create", f"power_feed:{feed.id}", {"site_id": site_id, **_dump(data)})
    return feed


def get_feed(session: Session, feed_id: int) -> PowerFeed:
    feed = session.get(PowerFeed, feed_id)
    if feed is None:
        raise not_found(f"power feed {feed_id}")
    return feed


def update_feed(session: Session, ctx: Ctx, feed_id: int, changes: dict[str, Any]) -> PowerFeed:
    feed = get_feed(session, feed_id)
    for k, v in changes.items():
        setattr(feed, k, v)
    session.flush()
    _audit(session, ctx, "power_feed.update", f"power_feed:{feed_id}", _jsonable(changes))
    return feed


def delete_feed(session: Session, ctx: Ctx, feed_id: int) -> None:
    feed = get_feed(session, feed_id)
    session.delete(feed)
    session.flush()
    _audit(session, ctx, "power_feed.delete", f"power_feed:{feed_id}", {"site_id": feed.site_id})
