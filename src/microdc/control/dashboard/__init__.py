"""The operator's live web dashboard of the control plane (served by `microdc serve` at ``/``).

`router` is included by `control.app.create_app`; see docs/dashboard.md.
"""

from microdc.control.dashboard.router import router

__all__ = ["router"]
