"""Servers installed in a module; operator writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import select

from microdc.control import inventory
from microdc.control.api.deps import Operator, ServicesDep, Viewer, make_ctx
from microdc.control.models import Server
from microdc.control.problems import problem_responses
from microdc.control.schemas import ServerIn, ServerOut, ServerPatch

router = APIRouter(prefix="/api/v1", tags=["servers"])
ModuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
ServerId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/modules/{module_id}/servers",
    response_model=list[ServerOut],
    summary="List a module's servers",
    responses=problem_responses(401, 403, 404),
)
def list_servers(module_id: ModuleId, principal: Viewer, services: ServicesDep) -> list[ServerOut]:
    with services.db.read_session() as s:
        inventory.get_module(s, module_id)
        q = select(Server).where(Server.module_id == module_id).order_by(Server.id)
        return [ServerOut.model_validate(x) for x in s.scalars(q)]


@router.post(
    "/modules/{module_id}/servers",
    response_model=ServerOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add servers to a module",
    responses=problem_responses(401, 403, 404, 422),
)
def add_server(
    module_id: ModuleId, body: ServerIn, request: Request, principal: Operator, services: ServicesDep
) -> ServerOut:
    with services.db.session() as s:
        return ServerOut.model_validate(
            inventory.add_server(s, make_ctx(request, principal), module_id, body)
        )


@router.get(
    "/servers/{server_id}",
    response_model=ServerOut,
    summary="Get a server",
    responses=problem_responses(401, 403, 404),
)
def get_server(server_id: ServerId, principal: Viewer, services: ServicesDep) -> ServerOut:
    with services.db.read_session() as s:
        return ServerOut.model_validate(inventory.get_server(s, server_id))


@router.patch(
    "/servers/{server_id}",
    response_model=ServerOut,
    summary="Update a server",
    responses=problem_responses(401, 403, 404, 409, 422),
)
def patch_server(
    server_id: ServerId, body: ServerPatch, request: Request, principal: Operator, services: ServicesDep
) -> ServerOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with services.db.session() as s:
        return ServerOut.model_validate(
            inventory.update_server(s, make_ctx(request, principal), server_id, changes)
        )


@router.delete(
    "/servers/{server_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a server",
    responses=problem_responses(401, 403, 404),
)
def delete_server(server_id: ServerId, request: Request, principal: Operator, services: ServicesDep) -> None:
    with services.db.session() as s:
        inventory.delete_server(s, make_ctx(request, principal), server_id)
