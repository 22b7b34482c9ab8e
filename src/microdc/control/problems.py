"""RFC 9457 problem details: one response shape for every error, including 401/403/404/413/422/429/500.

Problem types are URNs (``urn:microdc:problem:<slug>``) documented in docs/control-plane.md.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("microdc.control")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="URI reference identifying the problem type")
    title: str = Field(description="short summary of the problem type")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="explanation specific to this occurrence")
    instance: str = Field(description="URI reference of this occurrence (the request path)")
    errors: list[ValidationIssue] | None = Field(default=None, description="validation errors (422 only)")


def problem_type(slug: str) -> str:
    return f"urn:microdc:problem:{slug}"


_DEFAULT_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    412: "precondition-failed",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    500: "internal-error",
    503: "unavailable",
}


class ProblemError(Exception):
    """Raise from anywhere in request handling to answer with a problem+json response."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug or _DEFAULT_SLUGS.get(status, "error")
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    request_path: str,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(slug or _DEFAULT_SLUGS.get(status, "error")),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request_path,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def unauthorized(detail: str = "missing or invalid bearer token") -> ProblemError:
    return ProblemError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="microdc"'})


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, detail)


def not_found(what: str) -> ProblemError:
    return ProblemError(404, f"{what} not found")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, detail)


def _jsonable_loc(loc: Any) -> list[str | int]:
    return [x if isinstance(x, int) else str(x) for x in loc]


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            request.url.path,
            exc.status,
            exc.detail,
            slug=exc.slug,
            title=exc.title,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": _jsonable_loc(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        n = len(errors)
        return problem_response(
            request.url.path,
            422,
            f"request failed validation ({n} error{'s' if n != 1 else ''})",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
        return problem_response(request.url.path, exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(request.url.path, 500, "internal server error; see the server log")


def _allowed_methods(request: Request) -> set[str]:
    """Every method any route serves at this path (Starlette only reports the first route's)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def add_bad_request_docs(app: FastAPI, extra_models: tuple[type[BaseModel], ...] = ()) -> None:
    """Document the 400 (unparseable body) answer on every operation that takes a body, and add models
    that routes reference by hand (raw-body routes) to the components."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = original()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in extra_models:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            schemas.setdefault(model.__name__, js)
        problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                # every error is RFC 9457 problem+json — including FastAPI's own 422 entries, which it
                # documents as application/json HTTPValidationError
                for code, resp in op.get("responses", {}).items():
                    if str(code)[:1] in ("4", "5") and isinstance(resp, dict):
                        resp["content"] = dict(problem_content)
                if "requestBody" in op:
                    op.setdefault("responses", {}).setdefault(
                        "400",
                        {
                            "description": "Bad Request (body is not parseable)",
                            "content": {
                                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                            },
                        },
                    )
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting problem+json bodies for the given statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        out[status] = {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out
