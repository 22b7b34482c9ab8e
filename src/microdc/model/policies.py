"""Declared policy: where each data class may be processed and stored, and redundancy.

The rules are only *declared* here; `microdc.policy` is the one place that evaluates them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# "origin" = the jurisdiction where the data was made; "any" = no restriction; otherwise a code or list.
Where = str | list[str]


class DataClassPolicy(BaseModel):
    """Where data of one class may be processed and stored, and how secure the place must be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    process_in: Where = Field(description="'origin', 'any', a jurisdiction code, or a list of codes")
    store_in: Where | None = Field(
        default=None, description="same forms as process_in; defaults to process_in"
    )
    aggregates_may_leave: bool = Field(False, description="aggregates may sync beyond store_in")
    min_security_tier: Annotated[int, Field(ge=1, le=4)] = Field(
        1, description="lowest physical security tier allowed to process it, 1 (street) to 4 (vault)"
    )
    retention_days: Annotated[float, Field(ge=0, le=36500)] = Field(
        0.0,
        description="how long raw data of this class is kept where it is served (site or cloud region), "
        "days; storage is sized for data_gb_per_day x retention_days (0: kept only until synced, no "
        "storage planned; docs/storage.md)",
    )
    description: str = Field("", description="free text, e.g. the law that applies")


class Redundancy(BaseModel):
    """How many site failures the fleet must survive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_plus: Annotated[int, Field(ge=0, le=1)] = Field(
        0, description="site failures every demand must survive, count (0 or 1: N+1 with a backup elsewhere)"
    )


class Policies(BaseModel):
    """Declared rules; evaluated only by microdc.policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_classes: dict[str, DataClassPolicy] = Field(
        min_length=1, description="policy per data class (demand's data_class keys)"
    )
    redundancy: Redundancy = Field(default_factory=Redundancy, description="redundancy rule")
    max_serving_sites: Annotated[int, Field(ge=1)] = Field(
        2,
        description="a demand source's load may be split over at most this many serving targets (MDC "
        "sites or cloud regions; backups not counted), count; 1 = single sourcing",
    )
