"""Power feeds of a site (derived power = V × A × utilization, × √3 for three-phase); operator writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, status
from sqlalchemy import select

from microdc.control import inventory
from microdc.control.api.deps import Operator, ServicesDep, SiteIdPath, Viewer, make_ctx
from microdc.control.models import PowerFeed
from microdc.control.problems import problem_responses
from microdc.control.schemas import PowerFeedIn, PowerFeedOut, PowerFeedPatch, feed_power_kw

router = APIRouter(prefix="/api/v1", tags=["power feeds"])
FeedId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _out(f: PowerFeed) -> PowerFeedOut:
    return PowerFeedOut(
        id=f.id,
        site_id=f.site_id,
        name=f.name,
        voltage_v=f.voltage_v,
        amps_a=f.amps_a,
        phase=f.phase,
        utilization=f.utilization,
        power_kw=feed_power_kw(f.voltage_v, f.amps_a, f.phase, f.utilization),
    )


@router.get(
    "/sites/{site_id}/power-feeds",
    response_model=list[PowerFeedOut],
    summary="List a site's power feeds",
    responses=problem_responses(401, 403, 404),
)
def list_feeds(site_id: SiteIdPath, principal: Viewer, services: ServicesDep) -> list[PowerFeedOut]:
    with services.db.read_session() as s:
        inventory.get_site(s, site_id)
        return [
            _out(f)
            for f in s.scalars(select(PowerFeed).where(PowerFeed.site_id == site_id).order_by(PowerFeed.id))
        ]


@router.post(
    "/sites/{site_id}/power-feeds",
    response_model=PowerFeedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a power feed",
    responses=problem_responses(401, 403, 404, 422),
)
def add_feed(
    site_id: SiteIdPath, body: PowerFeedIn, request: Request, principal: Operator, services: ServicesDep
) -> PowerFeedOut:
    with services.db.session() as s:
        return _out(inventory.add_feed(s, make_ctx(request, principal), site_id, body))


@router.get(
    "/power-feeds/{feed_id}",
    response_model=PowerFeedOut,
    summary="Get a power feed",
    responses=problem_responses(401, 403, 404),
)
def get_feed(feed_id: FeedId, principal: Viewer, services: ServicesDep) -> PowerFeedOut:
    with services.db.read_session() as s:
        return _out(inventory.get_feed(s, feed_id))


@router.patch(
    "/power-feeds/{feed_id}",
    response_model=PowerFeedOut,
    summary="Update a power feed",
    responses=problem_responses(401, 403, 404, 422),
)
def patch_feed(
    feed_id: FeedId, body: PowerFeedPatch, request: Request, principal: Operator, services: ServicesDep
) -> PowerFeedOut:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    with services.db.session() as s:
        return _out(inventory.update_feed(s, make_ctx(request, principal), feed_id, changes))


@router.delete(
    "/power-feeds/{feed_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a power feed",
    responses=problem_responses(401, 403, 404),
)
def delete_feed(feed_id: FeedId, request: Request, principal: Operator, services: ServicesDep) -> None:
    with services.db.session() as s:
        inventory.delete_feed(s, make_ctx(request, principal), feed_id)
