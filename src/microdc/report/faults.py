"""Faults section: a timeline of what failed, what was re-placed and what was degraded.

Reads the simulator's `events.json`: a list of events, each with a time (`time`, or `start`/`end`),
a kind (`kind`/`type`), what it hit (`site`/`target`/`service`) and a description (`detail`/
`message`/`description`). Unknown fields are kept for the table; nothing is assumed beyond that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from microdc.report.style import Figure, axis, layout

KIND_COLOURS = {"fault": "#c23b3b", "failure": "#c23b3b", "replace": "#1b7f5b", "re-place": "#1b7f5b",
                "migrate": "#1b7f5b", "degrade": "#e6842a", "degraded": "#e6842a", "recover": "#5470c6",
                "repair": "#5470c6", "restore": "#5470c6"}


@dataclass(frozen=True)
class FaultEvent:
    start: pd.Timestamp
    end: pd.Timestamp | None
    kind: str
    subject: str
    detail: str


def _first(e: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if e.get(k) not in (None, ""):
            return e[k]
    return None


def _ts(x: Any) -> pd.Timestamp | None:
    if x is None:
        return None
    try:
        t = pd.Timestamp(x)
    except (ValueError, TypeError):
        return None
    if pd.isna(t):
        return None
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t


def parse_events(events: Sequence[dict[str, Any]]) -> list[FaultEvent]:
    out = []
    for e in events:
        start = _ts(_first(e, "time", "start", "at", "t"))
        if start is None:
            continue
        kind = str(_first(e, "kind", "type", "event", "action") or "event")
        subject = str(_first(e, "site", "target", "component", "service", "subject") or "fleet")
        detail = _first(e, "detail", "message", "description", "summary")
        if detail is None:
            skip = {"time", "start", "end", "at", "t", "kind", "type", "event", "site", "target"}
            detail = ", ".join(f"{k}={v}" for k, v in e.items() if k not in skip)
        out.append(FaultEvent(start, _ts(_first(e, "end", "until", "recovered_at")), kind, subject, str(detail)))
    return sorted(out, key=lambda f: f.start)


def _colour(kind: str) -> str:
    k = kind.lower()
    return next((c for key, c in KIND_COLOURS.items() if key in k), "#555555")


def fault_timeline(events: Sequence[FaultEvent], title: str = "Faults and responses") -> Figure:
    """Bars for events with a duration, markers for instants; one row per subject."""
    data: list[dict[str, Any]] = []
    by_kind: dict[str, list[FaultEvent]] = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e)
    for kind, evs in by_kind.items():
        c = _colour(kind)
        spans = [e for e in evs if e.end is not None and e.end > e.start]
        points = [e for e in evs if e not in spans]
        if spans:
            xs: list[str | None] = []
            ys: list[str | None] = []
            for e in spans:
                assert e.end is not None
                xs += [e.start.isoformat(), e.end.isoformat(), None]
                ys += [e.subject, e.subject, None]
            data.append({"type": "scatter", "mode": "lines", "name": kind, "legendgroup": kind, "x": xs, "y": ys,
                         "line": {"color": c, "width": 9}, "hoverinfo": "skip"})
        data.append({
            "type": "scatter", "mode": "markers", "name": kind, "legendgroup": kind, "showlegend": not spans,
            "x": [e.start.isoformat() for e in evs], "y": [e.subject for e in evs],
            "text": [e.detail for e in evs], "hovertemplate": f"{kind} %{{y}} at %{{x}}<br>%{{text}}<extra></extra>",
            "marker": {"color": c, "size": 9, "symbol": "diamond" if not points else "circle",
                       "line": {"color": "#fff", "width": 1}},
        })
    n_rows = len({e.subject for e in events})
    return {"data": data, "layout": layout(
        title, xaxis=axis("time (UTC)"), yaxis=axis("", type="category", automargin=True),
        height=max(260, 90 + 28 * n_rows))}
