"""The run report: one self-contained HTML file comparing microdc's plan with the baselines."""

from microdc.report.data import AlternativeRun, RunResult, load_run, read_alternative, write_alternative
from microdc.report.render import render_report, write_report

__all__ = [
    "AlternativeRun",
    "RunResult",
    "load_run",
    "read_alternative",
    "render_report",
    "write_alternative",
    "write_report",
]
