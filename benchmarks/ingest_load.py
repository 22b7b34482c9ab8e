"""Telemetry ingest load test for the control plane (`microdc serve`).

Simulates N sites (default 1,000), each posting one batch every `--interval` seconds (default 10 s) of
`--readings` readings (default 200: 20 sensors × 10 samples), i.e. ≈ 20,000 readings/s offered, for
`--duration` seconds (default 180), against a server started here under uvicorn in a subprocess on
PostgreSQL (a fresh database created on --pg and dropped afterwards). Clients are httpx async.

Afterwards it checks that nothing acknowledged was lost (rows in `readings` == readings acknowledged)
and reports p50/p95/p99 ingest latency and the sustained readings/s.

    python benchmarks/ingest_load.py                  # full run: 1,000 sites, 3 minutes
    python benchmarks/ingest_load.py --smoke          # 100 sites, 20 s
    python benchmarks/ingest_load.py --workers 2 --duration 60 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from microdc.control.devserver import ServerProcess
from microdc.control.models import TelemetryBatch, readings

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONTEXTS = [("Temperature", "Cel", "Intake"), ("Temperature", "Cel", "Exhaust"), ("Humidity", "%", "Room"),
            ("Power", "W", "ACOutput"), ("Power", "W", "ACUtilityInput"), ("Voltage", "V", "ACInput"),
            ("Current", "A", "ACInput"), ("Frequency", "Hz", "ACInput"), ("UPSState", "1", "PowerSupply"),
            ("Runtime", "min", "Battery")]  # fmt: skip
NORMAL = {"Temperature": 23.0, "Humidity": 40.0, "Power": 8000.0, "Voltage": 230.0, "Current": 12.0,
          "Frequency": 50.0, "UPSState": 0.0, "Runtime": 45.0}  # fmt: skip


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    acked_batches: int = 0
    acked_readings: int = 0
    duplicates: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    late_sends: int = 0

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process, seconds (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def machine_busy_s() -> float:
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / CLK


class CpuMeter:
    """CPU seconds used during the load by the server processes, their PostgreSQL backends, this
    client, and everything else on the machine (other tenants' work competes for the same cores)."""

    def __init__(self, server_pid: int, pg_url: str, db_name: str) -> None:
        self.server_pid = server_pid
        self.pg_url = pg_url
        self.db_name = db_name

    def _pg_pids(self) -> list[int]:
        eng = create_engine(self.pg_url)
        with eng.connect() as conn:
            q = text("SELECT pid FROM pg_stat_activity WHERE datname = :d")
            pids = [int(r[0]) for r in conn.execute(q, {"d": self.db_name})]
            data_dir = conn.execute(text("SHOW data_directory")).scalar()
        eng.dispose()
        try:  # the postmaster's reaped-children CPU covers backends that exited during the run
            self.postmaster = int(Path(str(data_dir), "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError):
            self.postmaster = 0
        return pids

    def _reaped(self) -> float:
        try:
            f = Path(f"/proc/{self.postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(f[13]) + int(f[14])) / CLK

    def snapshot(self) -> dict[str, Any]:
        server = {p: proc_cpu_s(p) for p in descendants(self.server_pid)}
        pg = {p: proc_cpu_s(p) for p in self._pg_pids()}
        pg[-1] = self._reaped()
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {"server": server, "pg": pg, "client": ru.ru_utime + ru.ru_stime, "machine": machine_busy_s(),
                "load": os.getloadavg()}  # fmt: skip

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
        def d(key: str) -> float:
            return sum(v - a[key].get(p, 0.0) for p, v in b[key].items())

        out = {"server_s": d("server"), "postgres_s": d("pg"), "client_s": b["client"] - a["client"]}
        out["others_s"] = max(0.0, b["machine"] - a["machine"] - sum(out.values()))
        return {k: round(v, 1) for k, v in out.items()}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


_PREFIX = [
    f'{{"sensor_id":"s{k}","reading_type":"{rt}","unit":"{unit}","physical_context":"{ctx}","ts":"'
    for k, (rt, unit, ctx) in enumerate(CONTEXTS[k % len(CONTEXTS)] for k in range(20))
]


def make_batch(site: int, seq: int, n: int, now: datetime) -> bytes:
    """A batch of n readings: 20 sensors sampled n/20 times over the last interval (cheap to build)."""
    sensors = 20
    per = max(1, n // sensors)
    stamps = [(now - timedelta(seconds=j * (10 / per))).isoformat() for j in range(per)]
    parts = []
    for k in range(n):
        s = k % sensors
        rt = CONTEXTS[s % len(CONTEXTS)][0]
        v = NORMAL[rt] + (0.0 if rt == "UPSState" else random.random() - 0.5)
        parts.append(f'{_PREFIX[s]}{stamps[(k // sensors) % per]}","value":{v:.3f}}}')
    return (
        f'{{"batch_id":"{site}-{seq}-{uuid.uuid4().hex[:8]}","seq":{seq},"readings":['
        + ",".join(parts)
        + "]}"
    ).encode()


def admin_token(db_url: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "microdc.control", "admin", "create", "bench", "--db", db_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


async def setup_sites(base: str, token: str, n: int) -> list[str]:
    h = {"Authorization": f"Bearer {token}"}
    sites = [
        {"id": f"site-{i:04d}", "lat": 48.0 + i * 1e-3, "lon": 11.0, "jurisdiction": "DE",
         "jurisdiction_ancestors": ["EU"], "security_tier": 2, "grid_power_kw": 30}
        for i in range(n)
    ]  # fmt: skip
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=16)) as c:
        r = await c.post("/api/v1/sites/import", json=sites, headers=h)
        r.raise_for_status()
        sem = asyncio.Semaphore(16)

        async def enroll(site_id: str) -> str:
            async with sem:
                r = await c.post(f"/api/v1/sites/{site_id}/enrollment-tokens", headers=h)
                r.raise_for_status()
                r = await c.post("/api/v1/enroll", json={"token": r.json()["token"]})
                r.raise_for_status()
                tok: str = r.json()["token"]
                return tok

        return list(await asyncio.gather(*(enroll(s["id"]) for s in sites)))


async def run_load(base: str, tokens: list[str], args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    # httpcore's pool scans every connection (with a select() each) per request, so many small pools
    # are much cheaper than one large one: shard the sites over clients of 4 connections each.
    per_client = 4
    n_clients = max(1, args.connections // per_client)
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    sem = asyncio.Semaphore(args.connections)
    t_start = time.monotonic()
    t_end = t_start + args.duration

    clients = [httpx.AsyncClient(base_url=base, timeout=60, limits=limits) for _ in range(n_clients)]
    try:

        async def site_loop(i: int, token: str) -> None:
            client = clients[i % n_clients]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            next_t = t_start + random.random() * args.interval
            seq = 0
            while True:
                delay = next_t - time.monotonic()
                if next_t >= t_end:
                    return
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    stats.late_sends += 1
                body = make_batch(i, seq, args.readings, datetime.now(UTC))
                seq += 1
                next_t += args.interval
                async with sem:
                    t0 = time.perf_counter()
                    try:
                        r = await client.post(
                            f"/api/v1/sites/site-{i:04d}/telemetry", content=body, headers=headers
                        )
                    except httpx.HTTPError as e:
                        stats.error(type(e).__name__)
                        continue
                    dt = time.perf_counter() - t0
                if r.status_code in (200, 201):
                    ack = r.json()
                    stats.latencies.append(dt)
                    stats.acked_batches += 1
                    if ack["duplicate"]:
                        stats.duplicates += 1
                    else:
                        stats.acked_readings += ack["accepted"]
                else:
                    stats.error(str(r.status_code))

        await asyncio.gather(*(site_loop(i, t) for i, t in enumerate(tokens)))
    finally:
        for c in clients:
            await c.aclose()
    return stats, time.monotonic() - t_start


def _run(coro: Any) -> Any:
    """asyncio.run, on uvloop when it is installed (cheaper client, more CPU left for the server)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--pg", default=os.environ.get("MICRODC_BENCH_PG", DEFAULT_PG), help="PostgreSQL server URL"
    )
    ap.add_argument("--sites", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between a site's batches")
    ap.add_argument("--readings", type=int, default=200, help="readings per batch")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--connections", type=int, default=64, help="client connection pool / max in flight")
    ap.add_argument("--smoke", action="store_true", help="100 sites for 20 s")
    ap.add_argument("--keep-db", action="store_true", help="do not drop the benchmark database")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    if args.smoke:
        args.sites, args.duration = min(args.sites, 100), min(args.duration, 20.0)

    name = f"microdc_bench_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db_url = make_url(args.pg).set(database=name).render_as_string(hide_password=False)
    log = Path(tempfile.gettempdir()) / f"{name}.log"
    env = {"MICRODC_ENROLL_BURST": str(args.sites * 3), "MICRODC_ENROLL_PER_S": "1000"}
    server = ServerProcess(db_url, workers=args.workers, env=env, log_path=log)
    try:
        # migrate + first admin before starting the server (as an operator would)
        token = admin_token(db_url)
        server.start()
        t0 = time.monotonic()
        tokens = asyncio.run(setup_sites(server.base_url, token, args.sites))
        setup_s = time.monotonic() - t0
        offered = args.sites * args.readings / args.interval
        print(f"{args.sites} sites enrolled in {setup_s:.1f} s; offering {offered:,.0f} readings/s "
              f"for {args.duration:.0f} s with {args.workers} worker(s)", file=sys.stderr)  # fmt: skip
        assert server.proc is not None
        meter = CpuMeter(server.proc.pid, db_url, name)
        before = meter.snapshot()
        stats, elapsed = _run(run_load(server.base_url, tokens, args))
        after = meter.snapshot()
    finally:
        server.stop()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        stored = int(conn.execute(select(func.count()).select_from(readings)).scalar() or 0)
        batches = int(conn.execute(select(func.count()).select_from(TelemetryBatch)).scalar() or 0)
    engine.dispose()
    if not args.keep_db:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin_engine.dispose()

    cpu = CpuMeter.delta(before, after)
    ours = cpu["server_s"] + cpu["postgres_s"] + cpu["client_s"]
    lat = stats.latencies
    result: dict[str, Any] = {
        "sites": args.sites,
        "interval_s": args.interval,
        "readings_per_batch": args.readings,
        "duration_s": round(elapsed, 1),
        "workers": args.workers,
        "offered_readings_per_s": round(args.sites * args.readings / args.interval),
        "acked_batches": stats.acked_batches,
        "acked_readings": stats.acked_readings,
        "stored_readings": stored,
        "stored_batches": batches,
        "lost_readings": stats.acked_readings - stored,
        "sustained_readings_per_s": round(stats.acked_readings / elapsed),
        "batches_per_s": round(stats.acked_batches / elapsed, 1),
        "latency_ms": {
            "p50": round(pct(lat, 50) * 1000, 1),
            "p95": round(pct(lat, 95) * 1000, 1),
            "p99": round(pct(lat, 99) * 1000, 1),
            "mean": round(statistics.fmean(lat) * 1000, 1) if lat else None,
        },
        "late_sends": stats.late_sends,
        "cpu_s": cpu,
        "cpu_ms_per_batch": {
            "server": round(cpu["server_s"] / max(1, stats.acked_batches) * 1000, 2),
            "postgres": round(cpu["postgres_s"] / max(1, stats.acked_batches) * 1000, 2),
            "client": round(cpu["client_s"] / max(1, stats.acked_batches) * 1000, 2),
        },
        # what 2 dedicated cores would sustain at this CPU cost per batch (server + db + client)
        "projected_readings_per_s_on_idle_cores": round(
            (os.cpu_count() or 1) / (ours / max(1, stats.acked_batches)) * args.readings
        )
        if ours
        else None,
        "loadavg_before_after": [round(before["load"][0], 2), round(after["load"][0], 2)],
        "errors": stats.errors,
        "cpu_count": os.cpu_count(),
        "server_log": str(log),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    ok = result["lost_readings"] == 0 and stored == stats.acked_readings
    if not ok:
        print("FAIL: acknowledged readings missing from the database", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
