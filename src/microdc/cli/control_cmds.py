"""CLI commands of the control plane: `serve`, `admin create`, `audit verify`.

`register(app)` adds them to the main typer app (called by microdc.cli.main).
"""

from __future__ import annotations

import copy
import os
from typing import Annotated, Any

import typer

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL (default: $MICRODC_DB_URL or sqlite:///./microdc.db)"),
]


def _settings(db: str | None, **overrides: Any) -> Any:
    from microdc.control.settings import Settings

    return Settings.from_env(db_url=db, **overrides)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's logging config with secret redaction on every handler and microdc loggers enabled."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg.setdefault("filters", {})["redact"] = {"()": "microdc.control.security.RedactingFilter"}
    for handler in cfg["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    cfg["loggers"]["microdc"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg


def uvicorn_options(settings: Any, log_level: str = "info") -> dict[str, Any]:
    """uvicorn keyword arguments for `serve`. Proxy headers only from `trusted_proxies`: uvicorn's own
    default believes X-Forwarded-For from 127.0.0.1, which would let anything on the host forge it."""
    trusted = list(settings.trusted_proxies)
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": log_config(log_level),
        "access_log": False,
        "timeout_keep_alive": settings.keep_alive_s,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted if trusted else None,
    }


def serve(
    db: DbOpt = None,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8080,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    metrics_public: Annotated[
        bool, typer.Option("--metrics-public", help="serve /metrics without a token")
    ] = False,
    public_docs: Annotated[
        bool, typer.Option("--public-docs", help="serve /docs and /openapi.json openly")
    ] = False,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="IP or CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable; "
            "default: $MICRODC_TRUSTED_PROXIES or none)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles",
            help="your own tile server for street maps under the fleet map, https://host/{z}/{x}/{y}.png "
            "(default: $MICRODC_MAP_TILE_URL or none: the offline Natural Earth basemap only)",
        ),
    ] = None,
) -> None:
    """Run the control plane (FastAPI under uvicorn). Migrates the database first."""
    import uvicorn
    from pydantic import ValidationError

    from microdc.control.app import create_app
    from microdc.control.db import Database

    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    if metrics_public:
        overrides["metrics_public"] = True
    if public_docs:
        overrides["public_docs"] = True
    if trusted_proxy:
        overrides["trusted_proxies"] = tuple(trusted_proxy)
    if tiles:
        overrides["map_tile_url"] = tiles
    try:
        settings = _settings(db, **overrides)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            where = ".".join(str(x) for x in err.get("loc", ())) or "settings"
            typer.echo(f"error: {where}: {err.get('msg', '')}", err=True)
        raise typer.Exit(2) from None
    database = Database(settings.db_url)
    database.migrate()  # once, before any worker starts
    database.dispose()
    typer.echo(f"microdc control plane on http://{host}:{port} (db: {_safe_url(settings.db_url)})", err=True)
    opts = uvicorn_options(settings, log_level)
    if workers == 1:
        app = create_app(settings.model_copy(update={"migrate_on_start": False}))
        uvicorn.run(app, **opts)
        return
    os.environ.update(settings.model_copy(update={"migrate_on_start": False}).to_env())
    uvicorn.run("microdc.control.app:app_from_env", factory=True, workers=workers, **opts)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


admin_app = typer.Typer(help="Administer users of the control plane.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect the tamper-evident audit log.", no_args_is_help=True)


@admin_app.command("create")
def admin_create(
    name: Annotated[str, typer.Argument(help="user name of the new admin")],
    db: DbOpt = None,
    password: Annotated[
        bool, typer.Option("--password", help="also set a password (prompted) for /api/v1/auth/login")
    ] = False,
) -> None:
    """Create an admin user and print its API token once (store it: it cannot be shown again)."""
    from pydantic import ValidationError

    from microdc.control.db import Database
    from microdc.control.identity import create_user, issue_user_token
    from microdc.control.online_placer import OnlinePlacer
    from microdc.control.problems import ProblemError
    from microdc.control.schemas import UserIn
    from microdc.control.security import Role
    from microdc.control.services import Services

    pw: str | None = None
    if password:
        pw = typer.prompt(  # on stderr: stdout carries only the token, for scripts
            "Password (12+ characters)", hide_input=True, confirmation_prompt=True, err=True
        )
    try:
        UserIn(name=name, role=Role.ADMIN, password=pw)
    except ValidationError as e:  # each message names the field and rule, never echoes the input
        for err in e.errors(include_url=False, include_input=False):
            where = ".".join(str(x) for x in err.get("loc", ())) or "user"
            typer.echo(f"error: {where}: {err.get('msg', '')}", err=True)
        raise typer.Exit(2) from None
    settings = _settings(db)
    database = Database(settings.db_url)
    try:
        database.migrate()
        services = Services.build(settings, OnlinePlacer(), database)
        ctx = services.ctx("cli:admin-create")
        with database.session() as s:
            user = create_user(s, ctx, name, Role.ADMIN, pw)
            _tok, secret = issue_user_token(s, ctx, user, description="created by `microdc admin create`")
    except ProblemError as e:
        typer.echo(f"error: {e.detail}", err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    typer.echo(f"admin {name!r} created. API token (shown once, store it now):", err=True)
    typer.echo(secret)


@audit_app.command("verify")
def audit_verify(db: DbOpt = None) -> None:
    """Recompute the audit hash chain; exit 1 naming the first bad entry if it was tampered with."""
    from microdc.control import audit
    from microdc.control.db import Database

    database = Database(_settings(db).db_url)
    try:
        with database.read_session() as s:
            result = audit.verify(s)
    finally:
        database.dispose()
    if result.ok:
        typer.echo(result.describe())
        return
    typer.echo(result.describe(), err=True)
    raise typer.Exit(1)


sites_app = typer.Typer(help="Manage the control plane's site inventory.", no_args_is_help=True)


@sites_app.command("import")
def sites_import(
    scenario: Annotated[str, typer.Argument(help="example name or path to scenario.yaml")],
    plan: Annotated[
        str | None, typer.Option("--plan", help="plan.json: import only the sites it builds, with modules")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Fill the inventory from a scenario (NetBox-style sites, modules, servers); audited."""
    from pathlib import Path

    from microdc.cli.common import load_or_exit, report_problems
    from microdc.control.db import Database
    from microdc.control.inventory import import_sites
    from microdc.control.scenario_import import sites_from_scenario
    from microdc.model import ScenarioError
    from microdc.placement.plan import read_plan

    s = load_or_exit(scenario)
    try:
        p = read_plan(Path(plan)) if plan else None
    except ScenarioError as exc:
        report_problems(exc)
    database = Database(_settings(db).db_url)
    try:
        database.migrate()
        with database.session() as session:
            created, updated = import_sites(session, sites_from_scenario(s, p))
    finally:
        database.dispose()
    typer.echo(f"{len(created)} site(s) created, {len(updated)} updated from {s.name!r}")


def register(app: typer.Typer) -> None:
    """Add `serve`, `admin create` and `audit verify` to the main CLI."""
    app.command("serve")(serve)
    app.add_typer(admin_app, name="admin")
    app.add_typer(audit_app, name="audit")
    app.add_typer(sites_app, name="sites")
