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
KeyFileOpt = Annotated[
    str | None,
    typer.Option(
        "--key-file",
        help="audit key file (default: $MICRODC_AUDIT_KEY_FILE, else next to a SQLite file or "
        "$XDG_STATE_HOME/microdc/audit.key)",
    ),
]


def _settings(db: str | None, **overrides: Any) -> Any:
    from microdc.control.settings import Settings

    return Settings.from_env(db_url=db, **overrides)


def _database(settings: Any) -> Any:
    from microdc.control.db import Database

    return Database(settings.db_url, audit_key_file=settings.audit_key_file)


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
        **tls_options(settings),
    }


def tls_options(settings: Any) -> dict[str, Any]:
    """uvicorn's ssl_* keyword arguments, and the HTTP protocol that hands the verified client
    certificate to the app (microdc.control.tlsext). Empty without tls_certfile: plain HTTP."""
    import ssl

    if not settings.tls_certfile:
        return {}
    opts: dict[str, Any] = {
        "ssl_certfile": settings.tls_certfile,
        "ssl_keyfile": settings.tls_keyfile,
        "http": "microdc.control.tlsext:AutoTlsProtocol",
    }
    if settings.tls_client_ca:
        opts["ssl_ca_certs"] = settings.tls_client_ca
        required = settings.tls_client_certs == "required"
        opts["ssl_cert_reqs"] = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    return opts


def check_tls_files(settings: Any) -> list[str]:
    """Problems with the TLS files named in settings, found before uvicorn would fail with a traceback."""
    import ssl

    from microdc.protocol import pki

    out: list[str] = []
    if settings.tls_certfile:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(settings.tls_certfile, settings.tls_keyfile)
        except FileNotFoundError as e:
            out.append(f"--tls-cert/--tls-key: file not found: {e.filename}")
        except ssl.SSLError as e:
            out.append(
                f"--tls-cert {settings.tls_certfile} / --tls-key {settings.tls_keyfile}: not a PEM "
                f"certificate and its matching key ({e.reason or e})"
            )
    if settings.tls_client_ca:
        try:
            ssl.create_default_context(cafile=settings.tls_client_ca)
        except (FileNotFoundError, ssl.SSLError) as e:
            out.append(f"--tls-client-ca {settings.tls_client_ca}: not a readable PEM CA bundle ({e})")
    if settings.ca_dir:
        from pathlib import Path

        try:
            pki.Ca.load(Path(settings.ca_dir))
        except pki.PkiError as e:
            out.append(f"--ca-dir: {e}")
    return out


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
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="example name or scenario.yaml whose policies.data_classes are the only data classes "
            "workloads may name (default: $MICRODC_DATA_CLASSES, else any)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="PEM server certificate (chain): serve HTTPS")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert")] = None,
    tls_client_ca: Annotated[
        str | None,
        typer.Option("--tls-client-ca", help="CA bundle client certificates must chain to (mutual TLS)"),
    ] = None,
    require_client_cert: Annotated[
        bool,
        typer.Option(
            "--require-client-cert",
            help="refuse TLS handshakes without a valid client certificate (default: optional, so "
            "agents can enroll and people can log in)",
        ),
    ] = False,
    site_cert_required: Annotated[
        bool,
        typer.Option("--site-cert-required", help="site credentials count only with the site's client cert"),
    ] = False,
    ca_dir: Annotated[
        str | None,
        typer.Option("--ca-dir", help="fleet CA (`microdc ca init`): signs CSRs agents send at enrollment"),
    ] = None,
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

    overrides: dict[str, Any] = {"host": host, "port": port, "workers": workers}
    if metrics_public:
        overrides["metrics_public"] = True
    if public_docs:
        overrides["public_docs"] = True
    if trusted_proxy:
        overrides["trusted_proxies"] = tuple(trusted_proxy)
    overrides.update(tls_certfile=tls_cert, tls_keyfile=tls_key, tls_client_ca=tls_client_ca, ca_dir=ca_dir)
    if require_client_cert:
        overrides["tls_client_certs"] = "required"
    if site_cert_required:
        overrides["site_cert_required"] = True
    if scenario:
        from microdc.cli.common import load_or_exit

        overrides["data_classes"] = tuple(sorted(load_or_exit(scenario).policies.data_classes))
    if tiles:
        overrides["map_tile_url"] = tiles
    try:
        settings = _settings(db, **overrides)
    except ValidationError as e:
        for err in e.errors(include_url=False):
            where = ".".join(str(x) for x in err.get("loc", ())) or "settings"
            typer.echo(f"error: {where}: {err.get('msg', '')}", err=True)
        raise typer.Exit(2) from None
    tls_problems = check_tls_files(settings)
    for problem in tls_problems:
        typer.echo(f"error: {problem}", err=True)
    if tls_problems:
        raise typer.Exit(2)
    database = _database(settings)
    database.migrate()  # once, before any worker starts (creates the audit key file at first start)
    database.dispose()
    scheme = "https" if settings.tls_certfile else "http"
    mtls = f", client certificates {settings.tls_client_certs}" if settings.tls_client_ca else ""
    where = f"{scheme}://{host}:{port}{mtls}"
    typer.echo(f"microdc control plane on {where} (db: {_safe_url(settings.db_url)})", err=True)
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
    database = _database(settings)
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


def _keyring_or_exit(settings: Any, create: bool = False) -> Any:
    from pathlib import Path

    from microdc.control.auditkeys import KeyringError, default_key_path, load, load_or_create

    path = Path(settings.audit_key_file) if settings.audit_key_file else default_key_path(settings.db_url)
    if path is None:
        typer.echo("error: an in-memory database has no audit key file; pass --key-file", err=True)
        raise typer.Exit(2)
    try:
        return load_or_create(path) if create else load(path)
    except KeyringError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify(
    db: DbOpt = None,
    key_file: KeyFileOpt = None,
    checkpoints: Annotated[
        str | None,
        typer.Option(
            "--checkpoints",
            help="folder of signed checkpoints (published ones, agents' copies): also detects truncation, "
            "rewrite and wipe",
        ),
    ] = None,
) -> None:
    """Recompute the keyed audit chain (and compare it with signed checkpoints); exit 1 naming the first
    bad entry if it was tampered with."""
    from pathlib import Path

    from microdc.control import audit
    from microdc.control import checkpoints as cps
    from microdc.control.db import Database

    settings = _settings(db, audit_key_file=key_file)
    ring = _keyring_or_exit(settings)
    files = None
    if checkpoints is not None:
        try:
            files = cps.load_folder(Path(checkpoints))
        except cps.CheckpointError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
    database = Database(settings.db_url)
    try:
        with database.read_session() as s:
            result = audit.verify(s, keyring=ring)
            against = cps.check_against(s, ring, files) if files is not None else None
    finally:
        database.dispose()
    lines = [(result.ok, result.describe())]
    if against is not None:
        lines.append((against.ok, against.describe()))
    bad = [r for r in (result, against) if r is not None and not r.ok]
    for ok, line in lines:
        typer.echo(line, err=not ok)
    if not bad:
        return
    seqs = [r.first_bad_seq for r in bad if r.first_bad_seq is not None]
    if seqs:
        typer.echo(f"first bad sequence: {min(seqs)}", err=True)
    raise typer.Exit(1)


@audit_app.command("keygen")
def audit_keygen(db: DbOpt = None, key_file: KeyFileOpt = None) -> None:
    """Create the audit key file (mode 0600) before the first start; an existing one is kept."""
    settings = _settings(db, audit_key_file=key_file)
    ring = _keyring_or_exit(settings, create=True)
    typer.echo(f"audit key file {ring.path}: current key id {ring.current_id} ({len(ring.keys)} key(s))")


@audit_app.command("rotate-key")
def audit_rotate_key(db: DbOpt = None, key_file: KeyFileOpt = None) -> None:
    """Add a new current audit key; old keys stay in the file to verify what they keyed and signed.
    Restart the control plane to use it; the rotation is audited at the next start."""
    from microdc.control import audit

    settings = _settings(db, audit_key_file=key_file)
    ring = _keyring_or_exit(settings)
    old = ring.current_id
    new = ring.rotate()
    ring.save()
    database = _database(settings.model_copy(update={"audit_key_file": str(ring.path)}))
    try:
        database.migrate()
        with database.session() as s:
            audit.append(
                s,
                actor="cli:audit-rotate-key",
                action="audit.key_rotated",
                target="audit",
                details={"old_key_id": old, "new_key_id": new.id},
            )
    finally:
        database.dispose()
    typer.echo(f"audit key rotated: {old} -> {new.id} (file {ring.path})")


@audit_app.command("checkpoint")
def audit_checkpoint(
    checkpoints: Annotated[str, typer.Option("--checkpoints", help="folder to write the checkpoint to")],
    db: DbOpt = None,
    key_file: KeyFileOpt = None,
) -> None:
    """Sign the audit chain's head now and write it to a folder (keep that folder off the database)."""
    from datetime import UTC, datetime
    from pathlib import Path

    from microdc.control import checkpoints as cps
    from microdc.control.db import Database

    settings = _settings(db, audit_key_file=key_file)
    ring = _keyring_or_exit(settings)
    database = Database(settings.db_url)
    try:
        with database.read_session() as s:
            cp = cps.of_head(s, ring, datetime.now(UTC))
    finally:
        database.dispose()
    path = cps.publish(Path(checkpoints), cp)
    typer.echo(f"checkpoint seq={cp.seq} key={cp.key_id} written to {path}")


sites_app = typer.Typer(help="Manage the control plane's site inventory.", no_args_is_help=True)


@sites_app.command("import")
def sites_import(
    scenario: Annotated[str, typer.Argument(help="example name or path to scenario.yaml")],
    plan: Annotated[
        str | None, typer.Option("--plan", help="plan.json: import only the sites it builds, with modules")
    ] = None,
    db: DbOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="show what would change (added/updated/unchanged); write nothing"),
    ] = False,
) -> None:
    """Fill the inventory from a scenario (NetBox-style sites, modules, servers); audited.

    Safe on a live fleet: adds new sites (planned, or active with --plan) and updates the inventory of
    existing ones, but never changes an existing site's status (except planned → active), liveness,
    trust or desired state, and never deletes modules or feeds.
    """
    from pathlib import Path

    from microdc.cli.common import load_or_exit, report_problems
    from microdc.cli.import_table import import_table
    from microdc.control.context import Ctx
    from microdc.control.db import current_revision, head_revision
    from microdc.control.models import utcnow
    from microdc.control.online_placer import OnlinePlacer
    from microdc.control.scenario_import import sites_from_scenario
    from microdc.control.site_import import apply_import, plan_import, plan_new
    from microdc.model import ScenarioError
    from microdc.placement.plan import read_plan

    s = load_or_exit(scenario)
    try:
        p = read_plan(Path(plan)) if plan else None
    except ScenarioError as exc:
        report_problems(exc)
    settings = _settings(db)
    sites = sites_from_scenario(s, p)
    database = _database(settings)
    try:
        if dry_run:
            revision = current_revision(database.engine)
            if revision is None:  # an empty database: everything would be added
                report = plan_new(sites, s.workloads)
            elif revision != head_revision():
                typer.echo(
                    f"error: the database {settings.db_url} is at schema {revision}, not {head_revision()}; "
                    "a dry run writes nothing, so migrate it first (`microdc sites import` without "
                    "--dry-run, or `microdc serve`)",
                    err=True,
                )
                raise typer.Exit(2)
            else:
                with database.read_session() as session:
                    report = plan_import(session, sites, s.workloads)
        else:
            database.migrate()
            ctx = Ctx(settings=settings, placer=OnlinePlacer(), now=utcnow(), actor="system:import")
            with database.session() as session:
                report = apply_import(session, ctx, sites, s.workloads)
    except ValueError as exc:
        typer.echo(f"error: {scenario}: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        database.dispose()
    title = f"sites import from {s.name!r}" + (" (dry run: nothing written)" if dry_run else "")
    import_table(report, title=title)
    verb = "would be" if dry_run else ""
    typer.echo(
        f"{len(report.created)} site(s) {verb + ' ' if verb else ''}added, {len(report.updated)} "
        f"{verb + ' ' if verb else ''}updated, {len(report.unchanged)} unchanged from {s.name!r}"
    )
    for ch in report.workloads:
        typer.echo(
            f"{'would ' if dry_run else ''}{ch.action} workload {ch.workload_id}"
            + (f": {ch.why}" if ch.why else "")
        )
    if s.workloads:
        typer.echo(
            f"{len(report.workloads)} of {len(s.workloads)} workload(s) {verb or 'were'} created or updated"
        )
    if any(ch.action == "conflict" for ch in report.workloads):
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add `serve`, `admin create`, `audit verify` and `sites import` to the main CLI."""
    app.command("serve")(serve)
    app.add_typer(admin_app, name="admin")
    app.add_typer(audit_app, name="audit")
    app.add_typer(sites_app, name="sites")
