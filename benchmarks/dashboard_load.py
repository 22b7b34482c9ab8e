"""Operator dashboard under a 1,000-site fleet: time to first paint and live-update latency.

Starts `microdc serve` in a subprocess (SQLite in a temporary directory by default, or a fresh
PostgreSQL database with --pg), seeds N sites (default 1,000) through the API — import, enroll, heartbeat,
one telemetry batch each, some workloads and alarms — then, while a separate load process keeps the
whole fleet posting telemetry (11 readings per site every --interval s) and heartbeats (every 30 s), it
drives headless Chromium over the DevTools pipe (tests/report/cdp_pipe.py):

* time to first paint of the fleet page `/` (Chromium's paint timing: first-contentful-paint), the
  time until the 1,000-row table is rendered, and until the map is drawn — cold (first visit: plotly.js
  not cached) and warm (median of the repeats);
* update latency: a telemetry POST for a probe site (kept out of the background load) until the
  new value is visible in the table, observed in the page by a MutationObserver (wall clock, same
  machine), split into POST→ack and ack→visible;
* responsiveness: long tasks (> 50 ms) on the page's main thread while updates stream in, and the
  time to re-sort the 1,000-row table.

    python benchmarks/dashboard_load.py                    # 1,000 sites, SQLite, 40 update samples
    python benchmarks/dashboard_load.py --sites 100 --samples 10 --no-load       # quick
    python benchmarks/dashboard_load.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/test --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from microdc.control.dashboard.demo import SiteSim, reading, site_specs
from microdc.control.dashboard.events import DashboardConfig
from microdc.control.devserver import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")


def _cdp() -> Any:
    spec = importlib.util.spec_from_file_location("cdp_pipe", ROOT / "tests" / "report" / "cdp_pipe.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cdp_pipe"] = mod
    spec.loader.exec_module(mod)
    # the report's flags also send loopback to the dead proxy; the dashboard lives on 127.0.0.1
    mod.OFFLINE_FLAGS = tuple(f for f in mod.OFFLINE_FLAGS if not f.startswith("--proxy-bypass-list"))
    return mod


def admin_token(db_url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "microdc.control", "admin", "create", "bench", "--db", db_url],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))] if s else float("nan")


# --- seeding ---------------------------------------------------------------------------------


async def seed(base: str, token: str, n: int, workloads: int) -> dict[str, str]:
    """Import, enroll, heartbeat and post one batch for every site; returns site → credential."""
    h = {"Authorization": f"Bearer {token}"}
    specs = site_specs(n, seed=11, prefix="b")
    rng = random.Random(5)
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:
        for i in range(0, n, 250):
            r = await c.post("/api/v1/sites/import", json=specs[i : i + 250], headers=h)
            r.raise_for_status()
        sem = asyncio.Semaphore(12)
        creds: dict[str, str] = {}

        async def enroll(spec: dict[str, Any]) -> None:
            sid = spec["id"]
            async with sem:
                r = await c.post(f"/api/v1/sites/{sid}/enrollment-tokens", headers=h)
                r.raise_for_status()
                r = await c.post(
                    "/api/v1/enroll", json={"token": r.json()["token"], "agent_version": "bench"}
                )
                r.raise_for_status()
                tok = r.json()["token"]
                creds[sid] = tok
                sh = {"Authorization": f"Bearer {tok}"}
                (await c.post(f"/api/v1/sites/{sid}/heartbeat", json={}, headers=sh)).raise_for_status()
                sim = SiteSim(sid, phase=rng.uniform(0, 6.28))
                body = sim.batch(datetime.now(UTC), rng)
                (await c.post(f"/api/v1/sites/{sid}/telemetry", json=body, headers=sh)).raise_for_status()

        await asyncio.gather(*(enroll(s) for s in specs))
        codes = sorted({s["jurisdiction"] for s in specs})
        for k in range(workloads):
            code = codes[k % len(codes)]
            body = {
                "id": f"wl-{k:03d}",
                "data_class": ("personal", "health", "public")[k % 3],
                "origin_jurisdiction": code,
                "cores": 4 + k % 8,
                "min_security_tier": 1 + k % 2,
            }
            (await c.post("/api/v1/workloads", json=body, headers=h)).raise_for_status()

        # heartbeats again (seeding 1,000 sites takes longer than the 90 s after which a silent site is down)
        async def beat(sid: str) -> None:
            async with sem:
                sh = {"Authorization": f"Bearer {creds[sid]}"}
                (await c.post(f"/api/v1/sites/{sid}/heartbeat", json={}, headers=sh)).raise_for_status()

        await asyncio.gather(*(beat(sid) for sid in creds))
        # a few alarms: hot inlets at every 50th site
        for spec in specs[::50]:
            sid = spec["id"]
            batch = {
                "batch_id": uuid.uuid4().hex,
                "seq": 99,
                "readings": [reading(f"{sid}.inlet", "Temperature", "Intake", 33.0, datetime.now(UTC))],
            }
            sh = {"Authorization": f"Bearer {creds[sid]}"}
            (await c.post(f"/api/v1/sites/{sid}/telemetry", json=batch, headers=sh)).raise_for_status()
    return creds


# --- background load (a separate process, so it does not share the measuring process's GIL) -----


async def load_loop(base: str, creds: dict[str, str], interval: float, duration: float) -> dict[str, Any]:
    rng = random.Random(9)
    sims = {sid: SiteSim(sid, phase=rng.uniform(0, 6.28)) for sid in creds}
    stats: dict[str, Any] = {"batches": 0, "heartbeats": 0, "errors": 0, "latency": []}
    t_end = time.monotonic() + duration
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    clients = [httpx.AsyncClient(base_url=base, timeout=60, limits=limits) for _ in range(4)]

    async def site(k: int, sid: str, tok: str) -> None:
        c = clients[k % len(clients)]
        h = {"Authorization": f"Bearer {tok}"}
        t_next = time.monotonic() + rng.random() * interval if interval > 0 else float("inf")
        hb_next = time.monotonic() + rng.random() * 30
        while True:
            now = time.monotonic()
            if now >= t_end or stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, min(t_next, hb_next) - now))
                return
            except TimeoutError:
                pass
            try:
                if time.monotonic() >= hb_next:
                    hb_next += 30
                    (await c.post(f"/api/v1/sites/{sid}/heartbeat", json={}, headers=h)).raise_for_status()
                    stats["heartbeats"] += 1
                if time.monotonic() >= t_next:
                    t_next += interval
                    t0 = time.perf_counter()
                    r = await c.post(
                        f"/api/v1/sites/{sid}/telemetry",
                        json=sims[sid].batch(datetime.now(UTC), rng),
                        headers=h,
                    )
                    r.raise_for_status()
                    stats["latency"].append(time.perf_counter() - t0)
                    stats["batches"] += 1
            except httpx.HTTPError:
                stats["errors"] += 1

    try:
        await asyncio.gather(*(site(k, sid, tok) for k, (sid, tok) in enumerate(creds.items())))
    finally:
        for c in clients:
            await c.aclose()
    lat = stats.pop("latency")
    stats["ingest_p50_ms"] = round(1000 * pct(lat, 50), 1)
    stats["ingest_p95_ms"] = round(1000 * pct(lat, 95), 1)
    return stats


def load_worker(args: argparse.Namespace) -> None:
    creds = json.loads(Path(args.creds).read_text())
    out = asyncio.run(load_loop(args.base, creds, args.interval, args.duration))
    Path(args.result).write_text(json.dumps(out))


# --- the browser ---------------------------------------------------------------------------------

TIMING_JS = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
  const mark = (n) => { const m = performance.getEntriesByName(n)[0]; return m ? m.startTime : null; };
  return {fcp: paint['first-contentful-paint'] ?? null, fp: paint['first-paint'] ?? null,
          ttfb: nav.responseStart, response_end: nav.responseEnd,
          dom_content_loaded: nav.domContentLoadedEventEnd,
          load: nav.loadEventEnd, first_rows: mark('mdc-table-first'), table: mark('mdc-table'),
          table_painted: mark('mdc-table-painted'), map: mark('mdc-map'),
          html_bytes: nav.transferSize, rows: document.querySelectorAll('#fleet tbody tr').length};
})()"""

WATCH_JS = """((site, text) => {
  const td = () => document.querySelector(`tr[data-site="${site}"] td[data-k="inlet_c"]`);
  window.__probe = {seen: null};
  if (window.__obs) window.__obs.disconnect();
  window.__obs = new MutationObserver(() => {
    const c = td();
    if (!window.__probe.seen && c && c.textContent === text)
      window.__probe.seen = performance.timeOrigin + performance.now();
  });
  window.__obs.observe(document.querySelector('#fleet tbody'),
                       {childList: true, subtree: true, characterData: true});
  return td() ? td().textContent : null;
})"""

LONGTASKS_JS = """(() => { window.__long = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
    .observe({type: 'longtask', buffered: false}); return true; })()"""


def wait(b: Any, expr: str, timeout_s: float = 60.0) -> Any:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        v = b.evaluate(expr)
        if v:
            return v
        time.sleep(0.01)
    raise TimeoutError(expr)


async def burst(base: str, creds: dict[str, str], value: float) -> None:
    """Every site posts a batch at once (a fleet-wide event)."""
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=120) as c:

        async def one(sid: str, tok: str) -> None:
            body = {
                "batch_id": uuid.uuid4().hex,
                "seq": 10**6,
                "readings": [reading(f"{sid}.inlet", "Temperature", "Intake", value, datetime.now(UTC))],
            }
            async with sem:
                (
                    await c.post(
                        f"/api/v1/sites/{sid}/telemetry",
                        json=body,
                        headers={"Authorization": f"Bearer {tok}"},
                    )
                ).raise_for_status()

        await asyncio.gather(*(one(sid, tok) for sid, tok in creds.items()))


def measure(
    args: argparse.Namespace,
    base: str,
    token: str,
    creds: dict[str, str],
    probes: list[str],
    worker: subprocess.Popen[bytes],
) -> dict[str, Any]:
    cdp = _cdp()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as prof, cdp.Browser(Path(prof), executable=CHROMIUM) as b:
        b.navigate(f"{base}/dashboard/login")
        b.events.clear()
        b.evaluate(
            f"document.querySelector('#token').value = {json.dumps(token)};"
            "document.querySelector('#login-form').submit(); true"
        )
        b.wait_event("Page.loadEventFired")
        loads = []
        for k in range(args.repeats + 1):
            b.navigate(f"{base}/")
            wait(
                b,
                "window.MDC && window.MDC.ready && performance.getEntriesByName('mdc-map').length"
                " && performance.getEntriesByName('mdc-table-painted').length",
            )
            t = b.evaluate(TIMING_JS)
            assert t["rows"] == args.sites, t
            loads.append(t)
            if k == 0:
                out["cold"] = t
        warm = loads[1:]
        out["warm"] = warm
        out["warm_median"] = {
            k: round(statistics.median(t[k] for t in warm if t[k] is not None), 1)
            for k in (
                "fcp",
                "ttfb",
                "response_end",
                "dom_content_loaded",
                "first_rows",
                "table",
                "table_painted",
                "map",
                "load",
            )
        }
        out["html_bytes"] = loads[-1]["html_bytes"]
        wait(b, "document.querySelector('#live').classList.contains('on')")
        b.evaluate(LONGTASKS_JS)

        # live-update latency: probe sites get no background load
        samples: list[dict[str, float]] = []
        rng = random.Random(3)
        with httpx.Client(base_url=base, timeout=30) as c:
            for k in range(args.samples):
                sid = probes[k % len(probes)]
                value = round(rng.uniform(18.5, 26.5), 1)
                text = f"{value:.1f}"
                if b.evaluate(f"({WATCH_JS})({json.dumps(sid)}, {json.dumps(text)})") == text:
                    value = round(value + 0.1, 1)
                    text = f"{value:.1f}"
                    b.evaluate(f"({WATCH_JS})({json.dumps(sid)}, {json.dumps(text)})")
                batch = {
                    "batch_id": uuid.uuid4().hex,
                    "seq": 1000 + k,
                    "readings": [reading(f"{sid}.inlet", "Temperature", "Intake", value, datetime.now(UTC))],
                }
                t_post = time.time()
                r = c.post(
                    f"/api/v1/sites/{sid}/telemetry",
                    json=batch,
                    headers={"Authorization": f"Bearer {creds[sid]}"},
                )
                t_ack = time.time()
                r.raise_for_status()
                seen = wait(b, "window.__probe.seen", timeout_s=30) / 1000.0
                samples.append({"total": seen - t_post, "ack": t_ack - t_post, "after_ack": seen - t_ack})
                time.sleep(args.gap)
        tot = [s["total"] * 1000 for s in samples]
        out["update_ms"] = {
            "samples": len(samples),
            "p50": round(pct(tot, 50), 1),
            "p95": round(pct(tot, 95), 1),
            "max": round(max(tot), 1),
            "mean": round(statistics.mean(tot), 1),
            "post_to_ack_p50": round(1000 * pct([s["ack"] for s in samples], 50), 1),
            "ack_to_visible_p50": round(1000 * pct([s["after_ack"] for s in samples], 50), 1),
        }
        longs = b.evaluate("window.__long") or []
        out["long_tasks"] = {
            "count": len(longs),
            "max_ms": round(max(longs), 1) if longs else 0.0,
            "total_ms": round(sum(longs), 1),
            "window_s": round(args.samples * args.gap, 1),
        }
        out["updates_received"] = b.evaluate("window.MDC.updates")
        sort_ms = []
        for key in ("it_kw", "inlet_c", "id"):
            sort_ms.append(
                b.evaluate(
                    f"""(() => {{ const t = performance.now();
                    document.querySelector('th[data-sort="{key}"]').click();
                    return performance.now() - t; }})()"""
                )
            )
        out["sort_1000_rows_ms"] = round(statistics.median(sort_ms), 1)

        # a fleet-wide burst: every site posts at once; time until the whole table shows it
        worker.send_signal(signal.SIGTERM)  # background telemetry would overwrite the values
        worker.wait(timeout=60)
        b.evaluate("window.__long = []; true")
        count = (
            "Array.from(document.querySelectorAll('#fleet td[data-k=inlet_c]'))"
            ".filter(td => td.textContent === '24.4').length"
        )
        t0 = time.time()
        asyncio.run(burst(base, creds, 24.4))
        t_posted = time.time()
        n = 0
        while n < len(creds) and time.time() - t0 < 120:
            n = b.evaluate(count)
            time.sleep(0.05)
        t_seen = time.time()
        longs = b.evaluate("window.__long") or []
        out["burst"] = {
            "sites": len(creds),
            "shown": n,
            "posting_s": round(t_posted - t0, 2),
            "last_visible_after_last_post_ms": round(1000 * (t_seen - t_posted), 0),
            "long_tasks": len(longs),
            "long_task_max_ms": round(max(longs), 1) if longs else 0.0,
        }
        out["errors"] = [e for e in b.errors() if "ERR_ABORTED" not in e]
    return out


def scrape_poll(base: str, token: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
    vals = {}
    for line in text.splitlines():
        if line.startswith(("microdc_dashboard_poll_seconds_sum", "microdc_dashboard_poll_seconds_count")):
            name, v = line.split()
            vals[name] = float(v)
    n = vals.get("microdc_dashboard_poll_seconds_count", 0.0)
    return {
        "polls": n,
        "mean_ms": round(1000 * vals.get("microdc_dashboard_poll_seconds_sum", 0.0) / n, 2) if n else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--workloads", type=int, default=60)
    ap.add_argument("--samples", type=int, default=40, help="update-latency samples")
    ap.add_argument("--gap", type=float, default=1.5, help="seconds between samples")
    ap.add_argument("--repeats", type=int, default=5, help="warm page loads")
    ap.add_argument(
        "--interval", type=float, default=10.0, help="background: seconds between a site's batches"
    )
    ap.add_argument("--no-load", action="store_true", help="no background telemetry")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the server")
    ap.add_argument("--poll", type=float, help="the dashboard's change-poll interval, s (default: its own)")
    ap.add_argument("--pg", help="PostgreSQL server URL: use a fresh database there instead of SQLite")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--load-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base", help=argparse.SUPPRESS)
    ap.add_argument("--creds", help=argparse.SUPPRESS)
    ap.add_argument("--duration", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_worker:
        load_worker(args)
        return

    with tempfile.TemporaryDirectory() as tmp:
        pg_admin = None
        if args.pg:
            from sqlalchemy import create_engine, text
            from sqlalchemy.engine import make_url

            name = f"microdc_dash_{uuid.uuid4().hex[:8]}"
            pg_admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
            with pg_admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            db_url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
        else:
            db_url = f"sqlite:///{tmp}/dashboard.db"
        try:
            token = admin_token(db_url)
            env = {"MICRODC_ENROLL_BURST": str(args.sites * 3), "MICRODC_ENROLL_PER_S": "1000"}
            if args.poll is not None:
                env["MICRODC_DASHBOARD_POLL_INTERVAL_S"] = str(args.poll)
            server = ServerProcess(
                db_url, workers=args.workers, env=env, log_path=Path(tmp) / "server.log"
            ).start()
            try:
                base = server.base_url
                t0 = time.monotonic()
                creds = asyncio.run(seed(base, token, args.sites, args.workloads))
                seeded_s = time.monotonic() - t0
                probes = sorted(creds)[1::97][:10]
                loaded = {s: t for s, t in creds.items() if s not in probes}
                duration = 120 + args.repeats * 15 + args.samples * (args.gap + 1.0)
                interval = 0.0 if args.no_load else args.interval
                if True:  # heartbeats always (a silent site goes down after 90 s), telemetry unless --no-load
                    (Path(tmp) / "creds.json").write_text(json.dumps(loaded))
                    worker = subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--load-worker",
                            "--base",
                            base,
                            "--creds",
                            f"{tmp}/creds.json",
                            "--interval",
                            str(interval),
                            "--duration",
                            str(duration),
                            "--result",
                            f"{tmp}/load.json",
                        ]
                    )
                    time.sleep(10.0)  # let the load reach its steady state
                result = measure(args, base, token, creds, probes, worker)
                result["poll"] = scrape_poll(base, token)
                if worker.poll() is None:
                    worker.terminate()
                    worker.wait(timeout=30)
            finally:
                server.stop()
        finally:
            if pg_admin is not None:
                with pg_admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                pg_admin.dispose()
        load_stats = None
        if (Path(tmp) / "load.json").exists():
            load_stats = json.loads((Path(tmp) / "load.json").read_text())
    result.update(
        {
            "sites": args.sites,
            "db": "postgresql" if args.pg else "sqlite",
            "seed_s": round(seeded_s, 1),
            "poll_interval_s": args.poll or DashboardConfig().poll_interval_s,
            "workers": args.workers,
            "background": f"{len(loaded)} sites: heartbeats / 30 s"
            + ("" if args.no_load else f", 11 readings / {args.interval:g} s"),
            "load_stats": load_stats,
            "cpus": os.cpu_count(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
