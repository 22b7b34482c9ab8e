"""Modules (MDC enclosures) of a site; operator writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import select

from microdc.control import inventory
from microdc.control.api.deps import Operator, ServicesDep, SiteIdPath, Viewer, make_ctx
from microdc.control.models import Module
from microdc.control.problems import problem_responses
from microdc.control.schemas import ModuleIn, ModuleOut, ModulePatch

router = APIRouter(prefix="/api/v1", tags=["modules"])
ModuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/sites/{site_id}/modules",
    response_model=list[ModuleOut],
    summary="List a site's modules",
    responses=problem_responses(401, 403, 404),
)
def list_modules(site_id: SiteIdPath, principal: Viewer, services: ServicesDep) -> list[ModuleOut]:
    with services.db.read_session() as s:
        inventory.get_site(s, site_id)
        q = select(Module).where(Module.site_id == site_id).order_by(Module.id)
        return [ModuleOut.model_validate(m) for m in s.scalars(q)]


@router.post(
    "/sites/{site_id}/modules",
    response_model=ModuleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a module (with optional servers) to a site",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def add_module(
    site_id: SiteIdPath, body: ModuleIn, request: Request, principal: Operator, services: ServicesDep
) -> ModuleOut:
    with services.db.session() as s:
        return ModuleOut.model_validate(inventory.add_module(s, make_ctx(request, principal), site_id, body))


@router.get(
    "/modules/{module_id}",
    response_model=ModuleOut,
    summary="Get a module",
    responses=problem_responses(401, 403, 404),
)
def get_module(module_id: ModuleId, principal: Viewer, services: ServicesDep) -> ModuleOut:
    with services.db.read_session() as s:
        return ModuleOut.model_validate(inventory.get_module(s, module_id))


@router.patch(
    "/modules/{module_id}",
    response_model=ModuleOut,
    summary="Update a module",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def patch_module(
    module_id: ModuleId, body: ModulePatch, request: Request, principal: Operator, services: ServicesDep
) -> ModuleOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with services.db.session() as s:
        return ModuleOut.model_validate(
            inventory.update_module(s, make_ctx(request, principal), module_id, changes)
        )


@router.delete(
    "/modules/{module_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a module and its servers",
    responses=problem_responses(401, 403, 404),
)
def delete_module(module_id: ModuleId, request: Request, principal: Operator, services: ServicesDep) -> None:
    with services.db.session() as s:
        inventory.delete_module(s, make_ctx(request, principal), module_id)
