"""The operator's dashboard: HTML pages at ``/`` and ``/dashboard/*``, their JSON reads and actions under
``/dashboard/api``, the live event stream ``/dashboard/events`` and the package's static files.

Same identities and roles as the API: viewers see everything but the audit log, operators also
acknowledge and clear alarms, admins also read and verify the audit log and (un)trust sites. Pages send
an unauthenticated browser to the login page (303); JSON routes answer 401/403 problem+json. See
`auth.py` for sessions and CSRF, `events.py` for the live updates.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
from jinja2 import Environment, PackageLoader
from sqlalchemy import select

from microdc import __version__
from microdc.control import alarms, audit, inventory
from microdc.control.api.deps import client_ip, make_ctx, rate_limit, security_event
from microdc.control.context import thresholds_from
from microdc.control.dashboard import auth, events, figures, queries
from microdc.control.dashboard.assets import Assets
from microdc.control.dashboard.auth import DashSession
from microdc.control.dashboard.events import Cursor, DashboardConfig, Hub
from microdc.control.dashboard.metrics import AuditVerifier, DashboardMetrics, VerifyStatus
from microdc.control.identity import issue_user_token, lookup_principal, rehash_after_login, revoke_token
from microdc.control.models import User
from microdc.control.problems import ProblemError, not_found
from microdc.control.schemas import AlarmNoteIn, TrustIn
from microdc.control.security import Role, password_needs_rehash, verify_password
from microdc.control.services import Services
from microdc.control.trust import set_trust

SiteIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
WorkloadIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
AlarmIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class DashboardState:
    """Per-app dashboard machinery (kept on ``app.state.dashboard``; nothing global)."""

    services: Services
    config: DashboardConfig
    hub: Hub
    metrics: DashboardMetrics
    verifier: AuditVerifier
    assets: Assets
    templates: Environment
    registered: bool = False


_STATE_LOCK = threading.Lock()  # first use may race between threadpool threads


def dashboard_state(app: Any) -> DashboardState:
    st: DashboardState | None = getattr(app.state, "dashboard", None)
    if st is not None:
        return st
    with _STATE_LOCK:
        st = getattr(app.state, "dashboard", None)
        return st if st is not None else _build_state(app)


def _build_state(app: Any) -> DashboardState:
    services: Services = app.state.services
    config: DashboardConfig = getattr(app.state, "dashboard_config", None) or DashboardConfig.from_env()
    verifier = AuditVerifier(services.db, config.audit_verify_max_age_s)
    metrics = DashboardMetrics(services.metrics.registry, services.db, verifier)
    hub = Hub(services, config, on_poll=metrics.poll.observe)
    metrics.sse_clients.set_function(lambda: hub.clients)
    env = Environment(
        loader=PackageLoader("microdc.control.dashboard", "templates"), autoescape=True, auto_reload=False
    )
    st = DashboardState(services, config, hub, metrics, verifier, Assets(), env)
    app.state.dashboard = st
    return st


def _ensure_metrics(st: DashboardState) -> None:
    if not st.registered:
        with _STATE_LOCK:
            if not st.registered:
                st.metrics.register()
                st.registered = True


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    st = dashboard_state(app)
    _ensure_metrics(st)
    try:
        yield
    finally:
        await st.hub.stop()
        st.metrics.unregister()
        st.registered = False


router = APIRouter(include_in_schema=False, lifespan=lifespan)


def _st(request: Request) -> DashboardState:
    st = dashboard_state(request.app)
    _ensure_metrics(st)
    return st


# --- rendering -------------------------------------------------------------------------------


def _render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    sess: DashSession | None = None,
    title: str = "",
    page: str = "",
    boot: dict[str, Any] | None = None,
    **ctx: Any,
) -> Response:
    st = _st(request)
    html = st.templates.get_template(template).render(
        title=title,
        page=page,
        user=sess.principal.name if sess else "",
        role=sess.role.value if sess else "",
        is_operator=bool(sess and sess.can(Role.OPERATOR)),
        is_admin=bool(sess and sess.can(Role.ADMIN)),
        csrf=sess.csrf if sess and sess.via == "cookie" else "",
        asset=st.assets.url,
        version=__version__,
        boot=boot or {},
        **ctx,
    )
    return _maybe_gzip(
        request,
        HTMLResponse(
            html, status_code=status, headers=page_headers(st.services.settings.map_tile_url or None)
        ),
    )


def page_headers(tile_url: str | None) -> dict[str, str]:
    """The security headers; with the operator's tile server, its origin may serve images too."""
    if tile_url is None:
        return SECURITY_HEADERS
    parts = urlsplit(tile_url)
    csp = CSP.replace("img-src 'self' data:", f"img-src 'self' data: {parts.scheme}://{parts.netloc}")
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


def _error_page(request: Request, sess: DashSession | None, status: int, message: str) -> Response:
    return _render(request, "error.html.j2", status=status, sess=sess, title=f"{status}", message=message)


GZIP_MIN_BYTES = 32 * 1024


def _maybe_gzip(request: Request, resp: Response) -> Response:
    """Large pages and JSON (the fleet: ~0.5 KB per site) go gzipped to browsers that accept it."""
    body = bytes(resp.body)
    if len(body) < GZIP_MIN_BYTES or "gzip" not in request.headers.get("accept-encoding", ""):
        return resp
    resp.body = gzip.compress(body, compresslevel=5)
    resp.headers["content-encoding"] = "gzip"
    resp.headers["content-length"] = str(len(resp.body))
    resp.headers["vary"] = "Accept-Encoding"
    return resp


def _json(data: Any, status: int = 200, request: Request | None = None) -> Response:
    resp = JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})
    return _maybe_gzip(request, resp) if request is not None else resp


def _read(request: Request) -> Any:
    return _st(request).services.db.read_session()


def _boot_common(sess: DashSession, summary: dict[str, Any], cursor: Cursor) -> dict[str, Any]:
    return {"summary": summary, "cursor": str(cursor), "role": sess.role.value, "user": sess.principal.name}


# --- static ----------------------------------------------------------------------------------


@router.get("/dashboard/static/{name}")
def static(name: str, request: Request, v: str | None = None) -> Response:
    asset = _st(request).assets.get(name)
    if asset is None:
        raise not_found(f"static file {name!r}")
    cache = "public, max-age=31536000, immutable" if v == asset.version else "no-cache"
    headers = {
        "ETag": asset.etag,
        "Cache-Control": cache,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            asset.gz, media_type=asset.media_type, headers={**headers, "Content-Encoding": "gzip"}
        )
    return Response(asset.body, media_type=asset.media_type, headers=headers)


# --- login / logout --------------------------------------------------------------------------


def _login_page(
    request: Request, *, status: int = 200, error: str = "", next_: str = "/", username: str = ""
) -> Response:
    token = auth.login_csrf_value(request)
    resp = _render(
        request,
        "login.html.j2",
        status=status,
        title="Log in",
        page="login",
        error=error,
        next=next_,
        username=username,
        login_csrf=token,
    )
    auth.set_login_csrf(request, resp, token)
    return resp


@router.get("/dashboard/login")
def login_form(request: Request, next: str | None = None) -> Response:
    nxt = auth.safe_next(next)
    if auth.current_session(request) is not None:
        return RedirectResponse(nxt, status_code=303)
    return _login_page(request, next_=nxt)


def _form(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v}


def _password_login(request: Request, username: str, password: str) -> tuple[User | None, str]:
    services = _st(request).services
    rate_limit(request, services.limits.login_ip, client_ip(request), "login")
    rate_limit(request, services.limits.login_user, username, "login")
    with services.db.read_session() as s:
        user = s.scalar(select(User).where(User.name == username))
        policy = services.settings.password_policy
        ok = verify_password(password, user.password_hash if user else None, policy)
        ok = ok and user is not None and not user.disabled
    if not ok or user is None:
        security_event(
            request, "auth.login_failed", actor=f"anonymous:{username[:64]}", details={"via": "dashboard"}
        )
        return None, "invalid user name or password"
    if password_needs_rehash(user.password_hash, policy):  # a legacy hash: upgrade it transparently
        ctx = make_ctx(request, None).as_actor(f"user:{user.name}", client_ip(request))
        with services.db.session() as s:
            rehash_after_login(s, ctx, user, password, policy)
    return user, ""


def _token_login(request: Request, token: str) -> tuple[User | None, str]:
    services = _st(request).services
    rate_limit(request, services.limits.login_ip, client_ip(request), "login")
    with services.db.read_session() as s:
        principal = lookup_principal(s, token, services.clock())
        user = s.get(User, principal.user_id) if principal and principal.user_id else None
    if principal is None or principal.kind != "user" or user is None:
        security_event(
            request, "auth.login_failed", actor="anonymous", details={"via": "dashboard", "method": "token"}
        )
        return None, "invalid, expired or revoked token (a user API token is needed)"
    return user, ""


def _open_session(request: Request, user: User, method: str) -> str:
    services = _st(request).services
    ctx = make_ctx(request, None).as_actor(f"user:{user.name}", client_ip(request))
    with services.db.session() as s:
        fresh = s.get(User, user.id)
        assert fresh is not None
        _tok, secret = issue_user_token(
            s, ctx, fresh, description="dashboard session", ttl_s=services.settings.user_token_ttl_s
        )
        audit.append(
            s,
            actor=ctx.actor,
            action="auth.login",
            target=f"user:{user.name}",
            client_ip=ctx.client_ip,
            details={"via": "dashboard", "method": method},
            now=ctx.now,
        )
    return secret


@router.post("/dashboard/login")
async def login(request: Request) -> Response:
    form = _form(await request.body())
    nxt = auth.safe_next(form.get("next"))
    username = form.get("username", "").strip()[:64]
    password = form.get("password", "")[:1024]
    token = form.get("token", "").strip()[:256]
    st = _st(request)
    if not auth.login_csrf_ok(request, form.get(auth.CSRF_FIELD)):
        return _login_page(request, status=400, error="The login form expired; please try again.", next_=nxt)
    method = "token" if token else "password"
    if method == "password" and not (username and password):
        return _login_page(
            request,
            status=400,
            error="Enter a user name and password, or an API token.",
            next_=nxt,
            username=username,
        )
    try:
        if method == "token":
            user, error = await run_in_threadpool(_token_login, request, token)
        else:
            user, error = await run_in_threadpool(_password_login, request, username, password)
    except ProblemError as e:
        st.metrics.logins.labels(method=method, result="rate_limited").inc()
        limited = _login_page(
            request,
            status=e.status,
            error="Too many attempts; wait a minute and retry.",
            next_=nxt,
            username=username,
        )
        limited.headers.update(e.headers)
        return limited
    if user is None:
        st.metrics.logins.labels(method=method, result="failed").inc()
        return _login_page(request, status=401, error=error, next_=nxt, username=username)
    secret = await run_in_threadpool(_open_session, request, user, method)
    st.metrics.logins.labels(method=method, result="ok").inc()
    resp = RedirectResponse(nxt, status_code=303)
    auth.set_session_cookie(request, resp, secret, st.services.settings.user_token_ttl_s)
    resp.delete_cookie(auth.LOGIN_CSRF_COOKIE, path=auth.LOGIN_PATH)
    return resp


@router.post("/dashboard/logout")
async def logout(request: Request) -> Response:
    form = _form(await request.body())
    sess = await run_in_threadpool(auth.current_session, request)
    if sess is not None and sess.via == "cookie":
        try:
            await run_in_threadpool(auth.check_csrf, request, sess, form.get(auth.CSRF_FIELD))
        except ProblemError as e:
            return _error_page(request, sess, e.status, e.detail)

        def revoke() -> None:
            with _st(request).services.db.session() as s:
                revoke_token(s, make_ctx(request, sess.principal), sess.principal.token_id)

        await run_in_threadpool(revoke)
    resp = RedirectResponse(auth.LOGIN_PATH, status_code=303)
    auth.clear_session_cookie(request, resp)
    return resp


# --- pages -----------------------------------------------------------------------------------


@router.get("/")
def fleet_page(request: Request) -> Response:
    sess = auth.page_session(request)
    if not isinstance(sess, DashSession):
        return sess
    with _read(request) as s:
        cursor = events.current_cursor(s)
        rows = queries.fleet_rows(s)
        summary = queries.summary(s)
    boot = {
        **_boot_common(sess, summary, cursor),
        "rows": rows,
        "map": figures.fleet_map(rows, tile_url=_st(request).services.settings.map_tile_url or None),
        "plotly_config": figures.CONFIG,
    }
    return _render(request, "fleet.html.j2", sess=sess, title="Fleet", page="fleet", boot=boot)


@router.get("/dashboard")
def dashboard_root() -> Response:
    return RedirectResponse("/", status_code=303)


def _site_payload(request: Request, site_id: str, hours: float) -> tuple[dict[str, Any], dict[str, Any]]:
    st = _st(request)
    settings = st.services.settings
    now = st.services.clock()
    with _read(request) as s:
        detail = queries.site_detail(
            s,
            site_id,
            now=now,
            thresholds=thresholds_from(settings),
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
        )
        series = queries.site_series(
            s, site_id, hours=hours, now=now, raw_retention=timedelta(days=settings.raw_retention_days)
        )
    charts = {
        "hours": hours,
        "resolution": series["resolution"],
        "bucket_s": series["bucket_s"],
        "figures": figures.site_figures(series, detail["bands"]),
    }
    return detail, charts


@router.get("/dashboard/sites/{site_id}")
def site_page(request: Request, site_id: SiteIdPath, hours: float = 6.0) -> Response:
    sess = auth.page_session(request)
    if not isinstance(sess, DashSession):
        return sess
    try:
        detail, charts = _site_payload(request, site_id, queries.check_hours(hours))
    except ProblemError as e:
        return _error_page(request, sess, e.status, e.detail)
    with _read(request) as s:
        cursor = events.current_cursor(s)
        summary = queries.summary(s)
    boot = {
        **_boot_common(sess, summary, cursor),
        "site_id": site_id,
        "detail": detail,
        "charts": charts,
        "plotly_config": figures.CONFIG,
    }
    return _render(
        request,
        "site.html.j2",
        sess=sess,
        title=f"Site {site_id}",
        page="site",
        boot=boot,
        site_id=site_id,
        site_name=detail["site"]["name"],
    )


@router.get("/dashboard/alarms")
def alarms_page(request: Request) -> Response:
    sess = auth.page_session(request)
    if not isinstance(sess, DashSession):
        return sess
    with _read(request) as s:
        cursor = events.current_cursor(s)
        summary = queries.summary(s)
        kinds = queries.alarm_kinds(s)
    boot = {**_boot_common(sess, summary, cursor), "kinds": kinds}
    return _render(request, "alarms.html.j2", sess=sess, title="Alarms", page="alarms", boot=boot)


@router.get("/dashboard/placement")
def placement_page(request: Request) -> Response:
    sess = auth.page_session(request)
    if not isinstance(sess, DashSession):
        return sess
    with _read(request) as s:
        cursor = events.current_cursor(s)
        summary = queries.summary(s)
        overview = queries.placement_overview(s)
    boot = {**_boot_common(sess, summary, cursor), "placement": overview}
    return _render(request, "placement.html.j2", sess=sess, title="Placement", page="placement", boot=boot)


@router.get("/dashboard/audit")
def audit_page(request: Request) -> Response:
    sess = auth.page_session(request)
    if not isinstance(sess, DashSession):
        return sess
    try:
        auth.require(request, sess, Role.ADMIN)
    except ProblemError as e:
        return _error_page(request, sess, e.status, "The audit log is for admins.")
    st = _st(request)
    with _read(request) as s:
        cursor = events.current_cursor(s)
        summary = queries.summary(s)
        actions = queries.audit_actions(s)
    st.verifier.refresh_in_background()
    boot = {
        **_boot_common(sess, summary, cursor),
        "actions": actions,
        "verify": _verify_json(st.verifier.last),
    }
    return _render(request, "audit.html.j2", sess=sess, title="Audit log", page="audit", boot=boot)


# --- JSON: reads -----------------------------------------------------------------------------


@router.get("/dashboard/api/session")
def session_info(request: Request) -> Response:
    sess = auth.api_session(request)
    return _json({"user": sess.principal.name, "role": sess.role.value, "via": sess.via})


@router.get("/dashboard/api/fleet")
def fleet(request: Request) -> Response:
    auth.api_session(request)
    with _read(request) as s:
        cursor = events.current_cursor(s)
        rows = queries.fleet_rows(s)
        summary = queries.summary(s)
    return _json({"cursor": str(cursor), "rows": rows, "summary": summary}, request=request)


@router.get("/dashboard/api/sites/{site_id}")
def site(request: Request, site_id: SiteIdPath) -> Response:
    auth.api_session(request)
    st = _st(request)
    settings = st.services.settings
    with _read(request) as s:
        detail = queries.site_detail(
            s,
            site_id,
            now=st.services.clock(),
            thresholds=thresholds_from(settings),
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
        )
    return _json(detail)


@router.get("/dashboard/api/sites/{site_id}/charts")
def site_charts(
    request: Request, site_id: SiteIdPath, hours: Annotated[float, Query(gt=0, le=2160)] = 6.0
) -> Response:
    auth.api_session(request)
    _detail, charts = _site_payload(request, site_id, hours)
    return _json(charts)


@router.get("/dashboard/api/alarms")
def alarm_list(
    request: Request,
    state: Annotated[str | None, Query(pattern="^(open|raised|acknowledged|cleared)$")] = None,
    severity: Annotated[str | None, Query(pattern="^(warning|critical)$")] = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> Response:
    auth.api_session(request)
    with _read(request) as s:
        cursor = events.current_cursor(s)
        items = queries.list_alarms(
            s,
            state=state,
            severity=severity,
            site=site or None,
            kind=kind or None,
            text=q or None,
            limit=limit,
        )
    return _json({"cursor": str(cursor), "alarms": items})


@router.get("/dashboard/api/placement")
def placement(request: Request) -> Response:
    auth.api_session(request)
    with _read(request) as s:
        return _json(queries.placement_overview(s))


@router.get("/dashboard/api/placement/{workload_id}")
def placement_explain(request: Request, workload_id: WorkloadIdPath) -> Response:
    auth.api_session(request)
    st = _st(request)
    with _read(request) as s:
        out = queries.explain(
            s,
            workload_id,
            untrusted_tier=st.services.settings.untrusted_security_tier,
            placer=type(st.services.placer).__name__,
        )
    return _json(out)


@router.get("/dashboard/api/audit")
def audit_list(
    request: Request,
    q: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=65)] = None,
    actor: Annotated[str | None, Query(max_length=160)] = None,
    before_seq: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> Response:
    auth.api_session(request, Role.ADMIN)
    with _read(request) as s:
        return _json(
            queries.audit_search(
                s,
                text=q or None,
                action=action or None,
                actor=actor or None,
                before_seq=before_seq,
                limit=limit,
            )
        )


def _verify_json(v: VerifyStatus | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "ok": v.ok,
        "checked": v.checked,
        "first_bad_seq": v.first_bad_seq,
        "reason": v.reason,
        "head_seq": v.head_seq,
        "verified_at": queries.iso(_utc(v.verified_at)),
        "duration_s": round(v.duration_s, 3),
    }


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@router.get("/dashboard/api/audit/verify")
def audit_verify(request: Request, fresh: bool = False) -> Response:
    """The chain's verification status; `fresh=true` re-verifies now (a full walk of the chain)."""
    auth.api_session(request, Role.ADMIN)
    st = _st(request)
    v = st.verifier.verify_now() if fresh or st.verifier.last is None else st.verifier.last
    return _json(_verify_json(v))


# --- JSON: actions (CSRF-checked when authenticated by the cookie) ---------------------------


def _writer(request: Request, role: Role) -> DashSession:
    sess = auth.api_session(request, Role.VIEWER)
    auth.check_csrf(request, sess, request.headers.get(auth.CSRF_HEADER))
    auth.require(request, sess, role)
    return sess


@router.post("/dashboard/api/alarms/{alarm_id}/acknowledge")
def acknowledge(request: Request, alarm_id: AlarmIdPath, body: AlarmNoteIn) -> Response:
    sess = _writer(request, Role.OPERATOR)
    with _st(request).services.db.session() as s:
        a = alarms.acknowledge(s, make_ctx(request, sess.principal), alarm_id, body.note)
        return _json(queries.alarm_json(a))


@router.post("/dashboard/api/alarms/{alarm_id}/clear")
def clear(request: Request, alarm_id: AlarmIdPath, body: AlarmNoteIn) -> Response:
    sess = _writer(request, Role.OPERATOR)
    with _st(request).services.db.session() as s:
        a = alarms.clear(s, make_ctx(request, sess.principal), alarm_id, body.note)
        return _json(queries.alarm_json(a))


@router.post("/dashboard/api/sites/{site_id}/trust")
def trust(request: Request, site_id: SiteIdPath, body: TrustIn) -> Response:
    sess = _writer(request, Role.ADMIN)
    with _st(request).services.db.session() as s:
        site_ = inventory.get_site(s, site_id, lock=True)
        set_trust(s, make_ctx(request, sess.principal), site_, body.trusted, body.reason)
        row = queries.fleet_rows(s, [site_id])[0]
    return _json(row)


# --- live events -----------------------------------------------------------------------------


@router.get("/dashboard/events")
async def event_stream(request: Request, cursor: str | None = None) -> StreamingResponse:
    sess = await run_in_threadpool(auth.api_session, request, Role.VIEWER)
    st = _st(request)
    start = Cursor.parse(request.headers.get("last-event-id")) or Cursor.parse(cursor)

    def count(kind: str) -> None:
        st.metrics.events.labels(kind=kind).inc()

    async def body() -> AsyncIterator[str]:
        t0 = time.monotonic()
        try:
            async for chunk in events.stream(st.hub, admin=sess.can(Role.ADMIN), start=start, count=count):
                yield chunk
        except asyncio.CancelledError:
            raise
        finally:
            count("closed" if time.monotonic() - t0 < st.config.stream_lifetime_s else "lifetime")

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
