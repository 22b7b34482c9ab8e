"""Declared policy: where each data class may be processed and stored, and redundancy.

The rules are only *declared* here; `microdc.policy` is the one place that evaluates them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# "origin" = the jurisdiction where the data was made; "any" = no restriction; otherwise a code or list.
Where = str | list[str]


class DataClassPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    process_in: Where = Field(description="'origin', 'any', a jurisdiction code, or a list of codes")
    store_in: Where | None = Field(default=None, description="defaults to process_in")
    aggregates_may_leave: bool = Field(False, description="aggregates may sync beyond store_in")
    min_security_tier: Annotated[int, Field(ge=1, le=4)] = 1
    description: str = ""


class Redundancy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_plus: Annotated[int, Field(ge=0, le=1)] = 0


class Policies(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_classes: dict[str, DataClassPolicy] = Field(min_length=1)
    redundancy: Redundancy = Field(default_factory=Redundancy)
