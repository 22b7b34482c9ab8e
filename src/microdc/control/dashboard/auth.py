"""Dashboard sessions: login (password or API token → a short-lived session token in a cookie), role
checks and CSRF protection.

* The session is an ordinary user API token issued by `identity.issue_user_token` (description
  "dashboard session", lifetime `user_token_ttl_s`), so it is looked up, expired and revoked exactly
  like any other token (revocation is immediate, it works across worker processes, and logins and
  logouts are in the audit log). It travels in an ``HttpOnly; SameSite=Strict`` cookie (``Secure``
  when the request came over HTTPS).
* The dashboard's JSON routes also accept ``Authorization: Bearer`` (scripts, tests); a bearer request
  needs no CSRF token because a browser never attaches it on its own.
* CSRF: every state-changing request authenticated by the cookie must carry the session's CSRF token
  (``X-CSRF-Token`` header for fetch calls, ``csrf_token`` form field for forms), which is
  HMAC-SHA-256(session secret, label): unguessable without the cookie, stateless across workers.
  ``Origin`` and ``Sec-Fetch-Site``, when the browser sends them, must say same-origin as well. The
  login form (no session yet) uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from microdc.control.api.deps import from_trusted_proxy, security_event
from microdc.control.identity import lookup_principal
from microdc.control.problems import ProblemError, forbidden, unauthorized
from microdc.control.security import Principal, Role
from microdc.control.services import Services

SESSION_COOKIE = "mdc_session"
LOGIN_CSRF_COOKIE = "mdc_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOGIN_PATH = "/dashboard/login"
_CSRF_LABEL = b"microdc-dashboard-csrf-v1"


def csrf_token(secret: str) -> str:
    """The CSRF token bound to one session secret."""
    return hmac.new(secret.encode("utf-8"), _CSRF_LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class DashSession:
    principal: Principal
    secret: str
    via: Literal["cookie", "bearer"]

    @property
    def csrf(self) -> str:
        return csrf_token(self.secret)

    @property
    def role(self) -> Role:
        return self.principal.role or Role.VIEWER

    def can(self, role: Role) -> bool:
        return self.principal.has_role(role)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def is_https(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    if from_trusted_proxy(request):
        return request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
    return False


def _bearer(request: Request) -> str | None:
    h = request.headers.get("authorization", "")
    scheme, _, value = h.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def current_session(request: Request) -> DashSession | None:
    """The caller's session (bearer header first, then the cookie); None if absent or invalid.

    Only user tokens open the dashboard; site credentials do not.
    """
    services = _services(request)
    token = _bearer(request)
    via: Literal["cookie", "bearer"] = "bearer"
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        via = "cookie"
    if not token:
        return None
    with services.db.lookup_session() as s:
        principal = lookup_principal(s, token, services.clock())
    if principal is None or principal.kind != "user":
        if via == "bearer" or principal is not None:
            security_event(request, "auth.invalid_token", sample=True)
        return None
    request.state.principal = principal
    return DashSession(principal, token, via)


def safe_next(target: str | None) -> str:
    """Only a local absolute path may be a post-login destination (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(safe_next(here), safe='/')}", status_code=303)


def page_session(request: Request) -> DashSession | RedirectResponse:
    """For HTML pages: the session, or a 303 to the login page."""
    sess = current_session(request)
    return sess if sess is not None else login_redirect(request)


def api_session(request: Request, role: Role = Role.VIEWER) -> DashSession:
    """For JSON routes and the event stream: the session with at least `role`, else 401/403."""
    sess = current_session(request)
    if sess is None:
        raise unauthorized("log in to the dashboard or send a bearer token")
    require(request, sess, role)
    return sess


def require(request: Request, sess: DashSession, role: Role) -> None:
    if not sess.can(role):
        security_event(request, "auth.forbidden", actor=sess.principal.actor, details={"needed": role.value})
        raise forbidden(f"requires role {role.value}")


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent (older browsers, scripts): the token alone decides
    if origin == "null":
        return False
    hosts = {request.headers.get("host", "")}
    if from_trusted_proxy(request):
        hosts.add(request.headers.get("x-forwarded-host", "").split(",")[0].strip())
    return urlsplit(origin).netloc in hosts


def check_csrf(request: Request, sess: DashSession, submitted: str | None) -> None:
    """Refuse a cookie-authenticated state change without the session's CSRF token (403)."""
    if sess.via == "bearer":
        return
    ok = bool(submitted) and hmac.compare_digest(str(submitted), sess.csrf) and _same_origin(request)
    if not ok:
        security_event(request, "auth.csrf_failed", actor=sess.principal.actor)
        raise ProblemError(403, "missing or invalid CSRF token; reload the page", slug="forbidden")


def set_session_cookie(request: Request, response: Response, secret: str, max_age_s: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age_s,
        path="/",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request)
    )


def login_csrf_value(request: Request) -> str:
    """The login form's double-submit token: the cookie's if the browser has one, else a new one."""
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_login_csrf(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def login_csrf_ok(request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(cookie and submitted) and hmac.compare_digest(str(cookie), str(submitted))
