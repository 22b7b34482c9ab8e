"""A simulated fleet for the dashboard: seed sites, enroll their agents and post telemetry through the
real HTTP API (used by the dashboard's tests and benchmark, and to try the dashboard out).

    python -m microdc.control.dashboard.demo --sites 60            # http://127.0.0.1:8080, admin/…
    python -m microdc.control.dashboard.demo --sites 1000 --db sqlite:///fleet.db --port 8090

The demo creates users ``admin``, ``operator`` and ``viewer`` (password printed on start), imports the
sites, places a few workloads, and then posts a telemetry batch per site every `--interval` seconds,
with an occasional fault (cooling failure, grid outage, door opened) at a random site.
"""

from __future__ import annotations

import argparse
import math
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# code, ancestors, centre (lat, lon), spread (deg)
JURISDICTIONS: tuple[tuple[str, list[str], tuple[float, float], float], ...] = (
    ("DE", ["EU"], (50.5, 10.0), 2.5),
    ("FR", ["EU"], (46.8, 2.5), 2.8),
    ("NL", ["EU"], (52.2, 5.4), 0.7),
    ("PL", ["EU"], (52.0, 19.3), 2.0),
    ("CH", [], (46.8, 8.2), 0.8),
    ("NO", [], (61.0, 9.0), 2.5),
)
UNITS = {
    "Temperature": "Cel",
    "Humidity": "%",
    "Power": "W",
    "UPSState": "1",
    "Runtime": "min",
    "Door": "1",
    "Smoke": "1",
    "Leak": "1",
    "Intrusion": "1",
    "Percent": "%",
}


def site_specs(n: int, *, seed: int = 7, prefix: str = "mdc") -> list[dict[str, Any]]:
    """`n` sites spread over a few European jurisdictions (SiteIn bodies with modules and a feed)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        code, anc, (lat, lon), spread = JURISDICTIONS[i % len(JURISDICTIONS)]
        cores = rng.choice((64, 128, 256))
        out.append(
            {
                "id": f"{prefix}-{code.lower()}-{i:04d}",
                "name": f"{code} MDC {i}",
                "lat": round(lat + rng.uniform(-spread, spread) * 0.6, 4),
                "lon": round(lon + rng.uniform(-spread, spread), 4),
                "jurisdiction": code,
                "jurisdiction_ancestors": anc,
                "security_tier": rng.choice((1, 2, 2, 3, 3, 4)),
                "grid_power_kw": 40.0,
                "modules": [
                    {
                        "name": "m1",
                        "rack_units": 42,
                        "max_it_kw": 20,
                        "cooling_kind": rng.choice(("free_air", "dx", "chilled_water")),
                        "servers": [
                            {
                                "name": "s",
                                "server_type": "r650",
                                "quantity": 1,
                                "cores": cores,
                                "memory_gb": 512,
                                "idle_w": 150,
                                "peak_w": 600,
                            }
                        ],
                    }
                ],
                "power_feeds": [{"name": "A", "voltage_v": 400, "amps_a": 32, "phase": 3}],
            }
        )
    return out


def reading(sensor: str, rtype: str, ctx: str, value: float, ts: datetime) -> dict[str, Any]:
    return {
        "sensor_id": sensor,
        "reading_type": rtype,
        "unit": UNITS[rtype],
        "physical_context": ctx,
        "ts": ts.isoformat(),
        "value": value,
    }


@dataclass
class SiteSim:
    """One site's plant: utilization, IT and facility power, inlet temperature, UPS, door."""

    site_id: str
    phase: float
    it_capacity_w: float = 12_000.0
    inlet_c: float = 22.0
    humidity: float = 42.0
    ups_state: int = 0
    runtime_min: float = 45.0
    door: int = 0
    smoke: int = 0
    leak: int = 0
    faults: set[str] = field(default_factory=set)
    seq: int = 0

    def step(self, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
        hour = now.hour + now.minute / 60.0
        util = 0.45 + 0.3 * math.sin((hour / 24.0) * 2 * math.pi + self.phase) + rng.uniform(-0.03, 0.03)
        util = min(max(util, 0.05), 0.98)
        it_w = self.it_capacity_w * (0.35 + 0.65 * util)
        pue = 1.18 + 0.1 * math.sin(self.phase) + rng.uniform(-0.01, 0.01)
        if "cooling_failure" in self.faults:
            self.inlet_c = min(self.inlet_c + 1.5, 40.0)
        else:
            self.inlet_c = 22.0 + 1.2 * math.sin(self.phase + hour / 3.0) + rng.uniform(-0.2, 0.2)
        if "grid_outage" in self.faults:
            self.ups_state, self.runtime_min = 1, max(self.runtime_min - 2.0, 0.0)
        else:
            self.ups_state, self.runtime_min = 0, 45.0
        self.door = 1 if "door_open" in self.faults else 0
        p = self.site_id
        return [
            reading(f"{p}.inlet", "Temperature", "Intake", round(self.inlet_c, 2), now),
            reading(f"{p}.exhaust", "Temperature", "Exhaust", round(self.inlet_c + 11.0, 2), now),
            reading(f"{p}.rh", "Humidity", "Room", round(self.humidity + rng.uniform(-1, 1), 1), now),
            reading(f"{p}.it_power", "Power", "ACOutput", round(it_w, 1), now),
            reading(f"{p}.facility_power", "Power", "ACUtilityInput", round(it_w * pue, 1), now),
            reading(f"{p}.cpu", "Percent", "CPU", round(100 * util, 1), now),
            reading(f"{p}.ups.state", "UPSState", "PowerSupply", float(self.ups_state), now),
            reading(f"{p}.ups.runtime", "Runtime", "Battery", round(self.runtime_min, 1), now),
            reading(f"{p}.door", "Door", "Door", float(self.door), now),
            reading(f"{p}.smoke", "Smoke", "Room", float(self.smoke), now),
            reading(f"{p}.leak", "Leak", "Room", float(self.leak), now),
        ]

    def batch(self, now: datetime, rng: random.Random) -> dict[str, Any]:
        self.seq += 1
        return {"batch_id": uuid.uuid4().hex, "seq": self.seq, "readings": self.step(now, rng)}


class SimFleet:
    """Seeds a fleet through the API and drives its agents (any httpx.Client, e.g. a TestClient)."""

    def __init__(self, client: httpx.Client, admin_token: str, *, seed: int = 7) -> None:
        self.client = client
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.tokens: dict[str, dict[str, str]] = {}
        self.sims: dict[str, SiteSim] = {}
        self.rng = random.Random(seed)

    def _ok(self, r: httpx.Response) -> Any:
        if r.status_code >= 300:
            raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def add_sites(self, specs: Sequence[dict[str, Any]], *, enroll: bool = True) -> list[str]:
        for i in range(0, len(specs), 500):
            self._ok(
                self.client.post("/api/v1/sites/import", json=list(specs[i : i + 500]), headers=self.admin)
            )
        ids = [s["id"] for s in specs]
        for sid in ids:
            self.sims[sid] = SiteSim(sid, phase=self.rng.uniform(0, 2 * math.pi))
            if enroll:
                self.enroll(sid)
        return ids

    def enroll(self, site_id: str) -> dict[str, str]:
        et = self._ok(self.client.post(f"/api/v1/sites/{site_id}/enrollment-tokens", headers=self.admin))
        cred = self._ok(
            self.client.post("/api/v1/enroll", json={"token": et["token"], "agent_version": "sim-1"})
        )
        h = {"Authorization": f"Bearer {cred['token']}"}
        self.tokens[site_id] = h
        return h

    def heartbeat(self, site_id: str) -> Any:
        return self._ok(
            self.client.post(f"/api/v1/sites/{site_id}/heartbeat", json={}, headers=self.tokens[site_id])
        )

    def post(self, site_id: str, readings: list[dict[str, Any]]) -> Any:
        sim = self.sims[site_id]
        sim.seq += 1
        body = {"batch_id": uuid.uuid4().hex, "seq": sim.seq, "readings": readings}
        return self._ok(
            self.client.post(f"/api/v1/sites/{site_id}/telemetry", json=body, headers=self.tokens[site_id])
        )

    def tick(self, site_id: str, now: datetime | None = None) -> Any:
        """One normal batch from the site's simulated plant."""
        now = now or datetime.now(UTC)
        return self.post(site_id, self.sims[site_id].step(now, self.rng))

    def backfill(self, site_id: str, *, hours: float = 6.0, step_s: float = 120.0) -> int:
        """Post `hours` of past readings (one sample every `step_s`), as an agent uploading a backlog."""
        sim = self.sims[site_id]
        now = datetime.now(UTC)
        n = int(hours * 3600 / step_s)
        rows: list[dict[str, Any]] = []
        for k in range(n, 0, -1):
            rows += sim.step(now - timedelta(seconds=k * step_s), self.rng)
        for i in range(0, len(rows), 4000):
            self.post(site_id, rows[i : i + 4000])
        return len(rows)

    def workload(
        self,
        wid: str,
        *,
        origin: str,
        data_class: str = "personal",
        cores: float = 8,
        allowed: list[str] | None = None,
        min_tier: int = 1,
    ) -> Any:
        body = {
            "id": wid,
            "name": wid,
            "data_class": data_class,
            "origin_jurisdiction": origin,
            "cores": cores,
            "allowed_jurisdictions": allowed or [],
            "min_security_tier": min_tier,
        }
        return self._ok(self.client.post("/api/v1/workloads", json=body, headers=self.admin))


def _bootstrap(db_url: str, password: str) -> str:
    """Migrate, create admin/operator/viewer users with `password`; returns an admin API token."""
    from microdc.control.db import Database
    from microdc.control.identity import create_user, issue_user_token
    from microdc.control.online_placer import OnlinePlacer
    from microdc.control.security import Role
    from microdc.control.services import Services
    from microdc.control.settings import Settings

    db = Database(db_url)
    db.migrate()
    services = Services.build(Settings(db_url=db_url), OnlinePlacer(), db)
    ctx = services.ctx("demo:setup")
    with db.session() as s:
        from sqlalchemy import select

        from microdc.control.models import User

        admin = s.scalar(select(User).where(User.name == "admin"))
        for name, role in (("admin", Role.ADMIN), ("operator", Role.OPERATOR), ("viewer", Role.VIEWER)):
            if s.scalar(select(User).where(User.name == name)) is None:
                u = create_user(s, ctx, name, role, password)
                if name == "admin":
                    admin = u
        assert admin is not None
        _tok, secret = issue_user_token(s, ctx, admin, description="demo seeding", ttl_s=24 * 3600)
    db.dispose()
    return secret


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from microdc.control.app import create_app
    from microdc.control.settings import Settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=60)
    ap.add_argument("--db", default="sqlite:///./microdc-demo.db")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between a site's batches")
    ap.add_argument("--password", default="microdc-demo-password")
    args = ap.parse_args(argv)

    token = _bootstrap(args.db, args.password)
    # the demo enrolls every site from this one address at once: lift the enrollment rate limit
    settings = Settings(
        db_url=args.db,
        host=args.host,
        port=args.port,
        migrate_on_start=False,
        enroll_burst=2 * args.sites + 10,
        enroll_per_s=100.0,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=args.host,
            port=args.port,
            log_level="warning",
            timeout_graceful_shutdown=3,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://{args.host}:{args.port}"
    while not server.started:
        time.sleep(0.05)
    print(f"dashboard: {base}/  users admin / operator / viewer, password {args.password!r}", flush=True)
    with httpx.Client(base_url=base, timeout=60) as c:
        fleet = SimFleet(c, token)
        ids = fleet.add_sites(site_specs(args.sites))
        for sid in ids:
            fleet.heartbeat(sid)
        for k, code in enumerate(("DE", "FR", "NL", "PL", "CH", "NO")):
            for j in range(3):
                fleet.workload(
                    f"wl-{code.lower()}-{j}",
                    origin=code,
                    data_class=("personal", "health", "public")[j],
                    cores=8 + 4 * k,
                    allowed=[code] if j < 2 else [code, "EU"],
                )
        print(
            f"seeded {len(ids)} sites; posting telemetry every {args.interval:g} s (Ctrl-C stops)", flush=True
        )
        rng = random.Random(1)
        try:
            while True:
                t0 = time.monotonic()
                if rng.random() < 0.3:
                    sim = fleet.sims[rng.choice(ids)]
                    fault = rng.choice(("cooling_failure", "grid_outage", "door_open"))
                    (sim.faults.discard if fault in sim.faults else sim.faults.add)(fault)
                for sid in ids:
                    fleet.heartbeat(sid)
                    fleet.tick(sid)
                time.sleep(max(0.0, args.interval - (time.monotonic() - t0)))
        except KeyboardInterrupt:
            pass
        finally:
            server.should_exit = True
            thread.join(timeout=10)


if __name__ == "__main__":
    main()
