"""Jurisdictions as a tree of codes: `EU` ⊃ `DE`, `AU` ⊃ `AU-VIC`.

"Inside J" means J itself or any descendant. Sovereignty rules are written against this tree, so it
is flattened once into arrays that answer "is a inside b" for whole vectors of codes at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, field_validator

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class Jurisdiction(BaseModel):
    """A legal area; children are inside it. `bbox` (optional) lets us check site coordinates;
    `geometry` (optional) is its real shape for maps and for `validate`'s explanation."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE_PATTERN, description="unique code, e.g. EU, DE, AU-VIC")
    name: str = Field("", description="human-readable name")
    bbox: tuple[float, float, float, float] | None = Field(
        default=None, description="[min_lat, min_lon, max_lat, max_lon], degrees; sites must lie inside"
    )
    geometry: str | None = Field(
        default=None,
        description="GeoJSON file of the jurisdiction's shape (a Polygon or MultiPolygon, or a Feature or "
        "FeatureCollection of them; lon/lat degrees), relative to the scenario file; maps draw it and "
        "validate tests rows against it",
    )
    children: list[Jurisdiction] = Field(
        default_factory=list, description="jurisdictions inside this one (e.g. the states of a country)"
    )

    @field_validator("bbox")
    @classmethod
    def _bbox_ordered(
        cls, v: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if v is not None:
            lat0, lon0, lat1, lon1 = v
            if not (-90 <= lat0 <= lat1 <= 90 and -180 <= lon0 <= lon1 <= 180):
                raise ValueError("expected [min_lat, min_lon, max_lat, max_lon] with min <= max, in degrees")
        return v


class JurisdictionTree:
    """Flattened tree: parent links plus an ancestor matrix for vectorized containment."""

    def __init__(self, roots: Sequence[Jurisdiction]):
        self.codes: list[str] = []
        self.parent: dict[str, str | None] = {}
        self.bbox: dict[str, tuple[float, float, float, float] | None] = {}
        self.duplicates: list[str] = []
        stack: list[tuple[Jurisdiction, str | None]] = [(r, None) for r in reversed(roots)]
        while stack:
            node, parent = stack.pop()
            if node.code in self.parent:
                self.duplicates.append(node.code)
                continue
            self.codes.append(node.code)
            self.parent[node.code] = parent
            self.bbox[node.code] = node.bbox
            stack.extend((c, node.code) for c in reversed(node.children))
        self.index = {c: i for i, c in enumerate(self.codes)}
        n = len(self.codes)
        # inside[a, b] is True when code a is b or below b.
        self.inside = np.zeros((n, n), dtype=bool)
        for code, i in self.index.items():
            for anc in self.ancestors(code):
                self.inside[i, self.index[anc]] = True

    def __contains__(self, code: object) -> bool:
        return code in self.index

    def ancestors(self, code: str) -> list[str]:
        """The code itself and every code above it, nearest first."""
        out: list[str] = []
        cur: str | None = code
        while cur is not None:
            out.append(cur)
            cur = self.parent[cur]
        return out

    def is_inside(self, code: str, container: str) -> bool:
        return bool(self.inside[self.index[code], self.index[container]])

    def indices(self, codes: Iterable[str]) -> npt.NDArray[np.int64]:
        return np.fromiter((self.index[c] for c in codes), dtype=np.int64)

    def inside_any(
        self, codes: npt.NDArray[np.int64], containers: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.bool_]:
        """For code indices (n,) and a container set as a (n, J) mask, is each code inside one of them."""
        return np.asarray((self.inside[codes] & containers).any(axis=-1))

    def country_of(self, code: str) -> str:
        """The top-level ancestor below a supranational root, for display only."""
        return self.ancestors(code)[-1]
