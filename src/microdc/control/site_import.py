"""Idempotent site import for a live fleet: what would change (`plan_import`) and doing it (`apply_import`).

Rules (why: re-running an import must never harm a running fleet):

* a new site is created with the status the import gives it (``planned`` for scenario candidates,
  ``active`` for sites a plan builds);
* an existing site keeps its status — an import never sets an ``active``, ``maintenance`` or
  ``decommissioned`` site to anything else; the only status it changes is ``planned`` → ``active``
  (the plan now builds it). Its liveness, trust, credentials and desired state are never touched;
* descriptive fields (name, position, jurisdiction, tier, grid power) are updated when they differ;
* modules and power feeds are matched by name: new ones are added, changed ones updated in place (a
  module's servers are replaced only when they differ); ones the import does not list are kept (an
  import never deletes inventory: use the API for that), and an import listing none leaves them alone;
* nothing changed → nothing written: no audit entry, no placement run, no desired-state bump;
* the scenario's `workloads:` are created or updated by the rules of `microdc workloads apply` without
  ``--prune`` (`workload_import`): never deleted, and a conflict stops the import before it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from microdc.control import audit, jurisdictions, placements
from microdc.control.context import Ctx
from microdc.control.inventory import add_module_rows, add_server_row, create_site
from microdc.control.models import Module, PowerFeed, Server, Site
from microdc.control.schemas import ModuleIn, PowerFeedIn, SiteIn, SiteStatus
from microdc.control.workload_file import Change, plan_changes
from microdc.control.workload_import import apply_workloads, conflicts, plan_workloads
from microdc.protocol.workload import WorkloadIn

Action = Literal["added", "updated", "unchanged"]
SITE_FIELDS = (
    "name",
    "lat",
    "lon",
    "jurisdiction",
    "jurisdiction_ancestors",
    "security_tier",
    "grid_power_kw",
)
MODULE_FIELDS = ("enclosure", "rack_units", "max_it_kw", "cooling_kind")
KEPT = "kept (an import never deletes inventory)"
FEED_FIELDS = ("voltage_v", "amps_a", "phase", "utilization")
SERVER_FIELDS = ("name", "server_type", "quantity", "cores", "memory_gb", "idle_w", "peak_w")


@dataclass(frozen=True)
class FieldChange:
    field: str  # e.g. "name", "status", "module m1.max_it_kw", "module m1.servers", "power feed A"
    old: Any
    new: Any


@dataclass(frozen=True)
class SiteChange:
    site_id: str
    action: Action
    changes: tuple[FieldChange, ...] = ()
    notes: tuple[str, ...] = ()  # what the import asked for but will not do, and why


@dataclass
class ImportReport:
    sites: list[SiteChange] = field(default_factory=list)
    dry_run: bool = False
    workloads: list[Change] = field(default_factory=list)

    def ids(self, action: Action) -> list[str]:
        return [c.site_id for c in self.sites if c.action == action]

    @property
    def created(self) -> list[str]:
        return self.ids("added")

    @property
    def updated(self) -> list[str]:
        return self.ids("updated")

    @property
    def unchanged(self) -> list[str]:
        return self.ids("unchanged")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)), abs(float(b)))
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _value(v: Any) -> Any:
    return v.value if hasattr(v, "value") else v


def _servers_of(session: Session, module_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(Server).where(Server.module_id == module_id).order_by(Server.id))
    return sorted(({k: getattr(s, k) for k in SERVER_FIELDS} for s in rows), key=_server_key)


def _server_key(d: dict[str, Any]) -> tuple[Any, ...]:
    return tuple((k, str(d[k])) for k in SERVER_FIELDS)


def _wanted_servers(m: ModuleIn) -> list[dict[str, Any]]:
    return sorted((s.model_dump() for s in m.servers), key=_server_key)


def _servers_equal(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    return all(_same(x[k], y[k]) for x, y in zip(a, b, strict=True) for k in SERVER_FIELDS)


def _status_change(current: str, wanted: SiteStatus) -> tuple[FieldChange | None, str | None]:
    if current == wanted.value:
        return None, None
    if current == SiteStatus.PLANNED.value and wanted == SiteStatus.ACTIVE:
        return FieldChange("status", current, wanted.value), None
    return None, (
        f"status stays {current!r} (import says {wanted.value!r}): an import changes the status of an "
        "existing site only from 'planned' to 'active'"
    )


def _module_changes(session: Session, site_id: str, wanted: Sequence[ModuleIn]) -> list[FieldChange]:
    have = {m.name: m for m in session.scalars(select(Module).where(Module.site_id == site_id))}
    out: list[FieldChange] = []
    for m in wanted:
        cur = have.get(m.name)
        if cur is None:
            out.append(FieldChange(f"module {m.name}", None, "added"))
            continue
        for k in MODULE_FIELDS:
            old, new = getattr(cur, k), _value(getattr(m, k))
            if not _same(old, new):
                out.append(FieldChange(f"module {m.name}.{k}", old, new))
        old_servers, new_servers = _servers_of(session, cur.id), _wanted_servers(m)
        if not _servers_equal(old_servers, new_servers):
            out.append(
                FieldChange(f"module {m.name}.servers", _describe(old_servers), _describe(new_servers))
            )
    return out


def _describe(servers: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['quantity']}x {s['server_type']} ({s['cores']} cores)" for s in servers) or "none"


def _feed_changes(session: Session, site_id: str, wanted: Sequence[PowerFeedIn]) -> list[FieldChange]:
    have = {f.name: f for f in session.scalars(select(PowerFeed).where(PowerFeed.site_id == site_id))}
    out: list[FieldChange] = []
    for f in wanted:
        cur = have.get(f.name)
        if cur is None:
            out.append(FieldChange(f"power feed {f.name}", None, "added"))
            continue
        for k in FEED_FIELDS:
            old, new = getattr(cur, k), getattr(f, k)
            if not _same(old, new):
                out.append(FieldChange(f"power feed {f.name}.{k}", old, new))
    return out


def _kept_notes(session: Session, site_id: str, data: SiteIn) -> list[str]:
    notes = []
    if data.modules:
        listed = {m.name for m in data.modules}
        for name in session.scalars(
            select(Module.name).where(Module.site_id == site_id).order_by(Module.name)
        ):
            if name not in listed:
                notes.append(f"module {name} is not in the import; {KEPT}")
    if data.power_feeds:
        listed = {f.name for f in data.power_feeds}
        for name in session.scalars(
            select(PowerFeed.name).where(PowerFeed.site_id == site_id).order_by(PowerFeed.name)
        ):
            if name not in listed:
                notes.append(f"power feed {name} is not in the import; {KEPT}")
    return notes


def plan_site(session: Session, data: SiteIn) -> SiteChange:
    """What importing `data` would change (reads only)."""
    site = session.get(Site, data.id)
    if site is None:
        return SiteChange(data.id, "added", (FieldChange("status", None, data.status.value),))
    changes: list[FieldChange] = []
    for k in SITE_FIELDS:
        old, new = getattr(site, k), _value(getattr(data, k))
        if k == "jurisdiction_ancestors":
            old, new = list(old or ()), list(new)
        if not _same(old, new):
            changes.append(FieldChange(k, old, new))
    status, note = _status_change(site.status, data.status)
    if status is not None:
        changes.append(status)
    changes += _module_changes(session, data.id, data.modules)
    changes += _feed_changes(session, data.id, data.power_feeds)
    notes = ([note] if note else []) + _kept_notes(session, data.id, data)
    return SiteChange(data.id, "updated" if changes else "unchanged", tuple(changes), tuple(notes))


def plan_import(
    session: Session, sites: Sequence[SiteIn], workloads: Sequence[WorkloadIn] = ()
) -> ImportReport:
    seen: set[str] = set()
    report = ImportReport(dry_run=True, workloads=plan_workloads(session, workloads))
    for data in sites:
        if data.id in seen:
            raise ValueError(f"site {data.id!r} appears twice in the import")
        seen.add(data.id)
        report.sites.append(plan_site(session, data))
    return report


def plan_new(sites: Sequence[SiteIn], workloads: Sequence[WorkloadIn] = ()) -> ImportReport:
    """The plan for an empty inventory: every site and workload added."""
    return ImportReport(
        [SiteChange(s.id, "added", (FieldChange("status", None, s.status.value),)) for s in sites],
        dry_run=True,
        workloads=plan_changes([], list(workloads), prune=False),
    )


def _apply_modules(session: Session, site_id: str, wanted: Sequence[ModuleIn]) -> None:
    have = {m.name: m for m in session.scalars(select(Module).where(Module.site_id == site_id))}
    for m in wanted:
        cur = have.get(m.name)
        if cur is None:
            add_module_rows(session, site_id, m)
            continue
        for k in MODULE_FIELDS:
            setattr(cur, k, _value(getattr(m, k)))
        if not _servers_equal(_servers_of(session, cur.id), _wanted_servers(m)):
            for srv in session.scalars(select(Server).where(Server.module_id == cur.id)):
                session.delete(srv)
            session.flush()
            for s in m.servers:
                add_server_row(session, cur.id, s)


def _apply_feeds(session: Session, site_id: str, wanted: Sequence[PowerFeedIn]) -> None:
    have = {f.name: f for f in session.scalars(select(PowerFeed).where(PowerFeed.site_id == site_id))}
    for f in wanted:
        cur = have.get(f.name)
        if cur is None:
            session.add(PowerFeed(site_id=site_id, **f.model_dump()))
            continue
        for k in FEED_FIELDS:
            setattr(cur, k, getattr(f, k))


def apply_import(
    session: Session, ctx: Ctx, sites: Sequence[SiteIn], workloads: Sequence[WorkloadIn] = ()
) -> ImportReport:
    """Plan the import and carry it out (audited; placements re-run only on changes).

    A dry run is `plan_import` alone, in a read-only session."""
    report = plan_import(session, sites, workloads)
    report.dry_run = False
    problems = conflicts(report.workloads)
    if problems:
        raise ValueError("nothing imported: " + "; ".join(problems))
    by_id = {s.id: s for s in sites}
    for change in report.sites:
        data = by_id[change.site_id]
        if change.action == "added":
            create_site(session, ctx, data)
            continue
        if change.action == "unchanged":
            continue
        site = session.get(Site, data.id, with_for_update=True)
        assert site is not None
        jurisdictions.check_site(session, data.id, data.jurisdiction, data.jurisdiction_ancestors)
        for c in change.changes:
            if c.field in SITE_FIELDS or c.field == "status":
                setattr(site, c.field, c.new)
        site.updated_at = ctx.now
        _apply_modules(session, data.id, data.modules)
        _apply_feeds(session, data.id, data.power_feeds)
        session.flush()
        audit.append(
            session,
            actor=ctx.actor,
            action="site.import_update",
            target=f"site:{data.id}",
            client_ip=ctx.client_ip,
            details={
                "changes": [
                    {"field": c.field, "old": _jsonable(c.old), "new": _jsonable(c.new)}
                    for c in change.changes
                ],
                "notes": list(change.notes),
            },
            now=ctx.now,
        )
    apply_workloads(session, ctx, report.workloads)
    if report.created or report.updated or report.workloads:
        placements.recompute(session, ctx)
    return report


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)
