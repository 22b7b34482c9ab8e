"""Driving the dashboard in headless Chromium through the DevTools pipe (the report tests' `cdp_pipe`),
with helpers to wait for conditions in the page and to collect errors."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

_CDP = Path(__file__).parents[1] / "report" / "cdp_pipe.py"


def _load_cdp() -> Any:
    mod = sys.modules.get("cdp_pipe")
    if mod is None:
        spec = importlib.util.spec_from_file_location("cdp_pipe", _CDP)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["cdp_pipe"] = mod
        spec.loader.exec_module(mod)
    return mod


cdp_pipe = _load_cdp()
CdpError = cdp_pipe.CdpError
# The report's flags send every request, loopback included, to a dead proxy (it only opens file://).
# Here the page talks to a server on 127.0.0.1: Chromium never proxies loopback unless told to
# (`<-loopback>`), so dropping that bypass rule keeps loopback reachable and everything else dead.
FLAGS = tuple(f for f in cdp_pipe.OFFLINE_FLAGS if not f.startswith("--proxy-bypass-list"))


class Browser(cdp_pipe.Browser):  # type: ignore[misc]
    def __init__(self, user_data_dir: Path, executable: Path, timeout_s: float = 60.0) -> None:
        saved = cdp_pipe.OFFLINE_FLAGS
        cdp_pipe.OFFLINE_FLAGS = FLAGS
        try:
            super().__init__(user_data_dir, executable=executable, timeout_s=timeout_s)
        finally:
            cdp_pipe.OFFLINE_FLAGS = saved


def chromium() -> Path:
    found = cdp_pipe.CHROMIUM if cdp_pipe.CHROMIUM.is_file() else None
    if found is None and shutil.which("chromium"):
        found = Path(str(shutil.which("chromium")))
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


def wait_for(b: Any, expression: str, timeout_s: float = 20.0, interval_s: float = 0.02) -> Any:
    """Poll a JS expression until it is truthy; returns its value."""
    until = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < until:
        try:
            last = b.evaluate(expression)
        except CdpError:
            last = None
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {expression!r} (last value {last!r})")


def js(value: str) -> str:
    return json.dumps(value)


def page_errors(b: Any) -> list[str]:
    """`Browser.errors()` minus the event stream being cut off when the page navigates away."""
    urls = {
        ev["params"]["requestId"]: ev["params"]["request"]["url"]
        for ev in b.events
        if ev.get("method") == "Network.requestWillBeSent"
    }
    aborted = {
        ev["params"]["requestId"]
        for ev in b.events
        if ev.get("method") == "Network.loadingFailed"
        and ev["params"].get("errorText") == "net::ERR_ABORTED"
        and "/dashboard/events" in urls.get(ev["params"]["requestId"], "/dashboard/events")
    }
    out = []
    for e in b.errors():
        if e == "network: net::ERR_ABORTED" and aborted:
            continue
        out.append(e)
    return out


def log_in(b: Any, base: str, user: str, password: str, next_: str = "/") -> list[str]:
    """Open `next_` (→ the login form), log in; returns the login page's errors."""
    b.navigate(f"{base}{next_}")
    wait_for(b, "document.querySelector('#login-form') !== null")
    errors = page_errors(b)
    b.events.clear()
    b.evaluate(
        f"document.querySelector('#username').value = {js(user)};"
        f"document.querySelector('#password').value = {js(password)};"
        "document.querySelector('#login-form').submit(); true"
    )
    b.wait_event("Page.loadEventFired")
    wait_for(b, "window.MDC && window.MDC.ready === true")
    return errors


def log_out(b: Any) -> None:
    b.events.clear()
    b.evaluate("document.querySelector('form[action=\"/dashboard/logout\"]').submit(); true")
    b.wait_event("Page.loadEventFired")
    wait_for(b, "document.querySelector('#login-form') !== null")
