"""The rich table `microdc sites import` prints: each site added/updated/unchanged, with field diffs."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from microdc.control.site_import import ImportReport

STYLE = {"added": "green", "updated": "yellow", "unchanged": "dim"}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(x) for x in v) + "]"
    return str(v)


def build_table(report: ImportReport, title: str = "") -> Table:
    table = Table(title=title or None, show_lines=False)
    table.add_column("site", no_wrap=True)
    table.add_column("action")
    table.add_column("field")
    table.add_column("before")
    table.add_column("after")
    quiet = [c.site_id for c in report.sites if c.action == "unchanged" and not c.notes]
    for change in report.sites:
        if change.action == "unchanged" and not change.notes:
            continue  # listed together below: a large fleet's re-import stays readable
        style = STYLE[change.action]
        first = True
        rows = [(c.field, _fmt(c.old), _fmt(c.new)) for c in change.changes] or [("", "", "")]
        for f, old, new in rows:
            action = f"[{style}]{change.action}[/]" if first else ""
            table.add_row(change.site_id if first else "", action, f, old, new)
            first = False
        for note in change.notes:
            table.add_row("", "", "[dim]note[/]", f"[dim]{note}[/]", "")
    if quiet:
        shown = ", ".join(quiet[:12]) + (f", … ({len(quiet) - 12} more)" if len(quiet) > 12 else "")
        unchanged = f"[{STYLE['unchanged']}]unchanged[/]"
        table.add_row(f"{len(quiet)} site(s)", unchanged, "", f"[dim]{shown}[/]", "")
    return table


def import_table(report: ImportReport, title: str = "", console: Console | None = None) -> None:
    (console or Console()).print(build_table(report, title))
