"""Rule ``timestamp-window``: every timestamp a client sends is bounded by the server's clock.

* *live* timestamps (a probe's `observed_at`, a heartbeat's `sent_at`) must be within
  ``live_clock_window_s`` (±10 min) of the server's clock — a probe dated 2099 would otherwise pin
  another site's liveness for ever;
* *recorded* timestamps (readings, agent alarm events) may be old — queued while the site was
  offline — but never more than ``max_clock_skew_s`` in the future and never before 2000.

A refusal is a 422 problem of type ``urn:microdc:problem:timestamp-window`` whose detail starts with
the rule's name; the routes count it in ``microdc_refused_total{rule="timestamp-window"}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from microdc.control.problems import ProblemError
from microdc.protocol.vocab import EARLIEST_READING

RULE = "timestamp-window"
EARLIEST = EARLIEST_READING


def _refuse(what: str, ts: datetime, now: datetime, why: str) -> ProblemError:
    return ProblemError(
        422,
        f"{RULE}: {what} {ts.isoformat()} is {why} (server time {now.isoformat()})",
        slug=RULE,
        title="Timestamp outside the accepted window",
        rule=RULE,
        field=what,
    )


def check_live(what: str, ts: datetime, now: datetime, window_s: float) -> None:
    """A timestamp of something happening now: within ±window_s of the server's clock."""
    window = timedelta(seconds=window_s)
    if ts > now + window:
        raise _refuse(what, ts, now, f"more than {window_s:g} s in the future")
    if ts < now - window:
        raise _refuse(what, ts, now, f"more than {window_s:g} s in the past")


def check_recorded(what: str, ts: datetime, now: datetime, max_future_s: float) -> None:
    """A timestamp of something recorded earlier (maybe queued offline): not future, not before 2000."""
    if ts > now + timedelta(seconds=max_future_s):
        raise _refuse(what, ts, now, f"in the future (more than {max_future_s:g} s ahead)")
    if ts < EARLIEST:
        raise _refuse(what, ts, now, f"before {EARLIEST.date().isoformat()}")
