"""What TLS and mutual TLS cost an agent's calls: heartbeats over plain HTTP, TLS and mTLS.

Starts `microdc serve` twice as subprocesses on one SQLite file — plain HTTP, and HTTPS with client
certificates (`--tls-client-ca`, `--site-cert-required`, the site's certificate minted from the agent's
CSR at enrollment) — and times `POST /api/v1/sites/{id}/heartbeat` sequentially from one httpx client:

* **keep-alive**: one connection for all requests (what the agent does between reconnects);
* **new connection**: a fresh connection (TCP + TLS handshake) per request (after every outage).

    python benchmarks/tls_links.py               # 400 requests per case
    python benchmarks/tls_links.py -n 100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from microdc.protocol import pki

SITE = "bench-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def microdc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microdc.cli.main", *args], capture_output=True, text=True, check=True
    )


def serve(db: str, port: int, *tls: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "microdc.cli.main", "serve", "--db", db, "--port", str(port),
           "--log-level", "warning", *tls]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait(url: str, verify: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/healthz", verify=verify, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(url)


def timed(n: int, make: Any, url: str, token: str, *, reuse: bool) -> dict[str, float]:
    """`n` sequential heartbeats; without `reuse` no connection is kept alive, so each request pays a
    TCP (and TLS) handshake — the SSL context itself is built once, as in the agent."""
    headers = {"Authorization": f"Bearer {token}"}
    lat: list[float] = []
    limits = httpx.Limits(max_keepalive_connections=None if reuse else 0)
    with make(limits) as c:
        t0 = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            r = c.post(f"{url}/api/v1/sites/{SITE}/heartbeat", json={"seq": i}, headers=headers)
            lat.append(time.perf_counter() - s)
            assert r.status_code == 200, r.text
        total = time.perf_counter() - t0
    lat.sort()
    return {
        "req_per_s": n / total,
        "p50_ms": 1000 * statistics.median(lat),
        "p95_ms": 1000 * lat[int(0.95 * (n - 1))],
    }


def handshakes(n: int, port: int, ctx: ssl.SSLContext | None) -> float:
    """Median ms of a TCP connect (+ TLS handshake with `ctx`), nothing sent."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            if ctx is not None:
                ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()
        out.append(time.perf_counter() - t)
    return 1000 * statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=400, help="requests per case")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="microdc-tls-bench-"))
    db = f"sqlite:///{d / 'cp.db'}"
    ca = pki.init_ca(d / "ca")
    key = pki.new_key()
    pki.write_private(d / "server.key", pki.key_pem(key))
    pki.write_public(d / "server.pem", pki.cert_pem(pki.issue_server(ca, ["127.0.0.1"], key)))
    admin = microdc("admin", "create", "bench", "--db", db).stdout.strip()
    hp, tp = free_port(), free_port()
    tls_args = [
        "--tls-cert",
        str(d / "server.pem"),
        "--tls-key",
        str(d / "server.key"),
        "--tls-client-ca",
        str(d / "ca" / "ca.pem"),
        "--ca-dir",
        str(d / "ca"),
        "--site-cert-required",
    ]
    procs = [serve(db, hp), serve(db, tp, *tls_args)]  # fmt: skip
    try:
        plain, secure = f"http://127.0.0.1:{hp}", f"https://127.0.0.1:{tp}"
        trust = ssl.create_default_context(cafile=str(d / "ca" / "ca.pem"))
        wait(plain, True)
        wait(secure, trust)
        with httpx.Client(base_url=plain, headers={"Authorization": f"Bearer {admin}"}) as c:
            site = {"id": SITE, "name": "Bench", "lat": 48.1, "lon": 11.5, "jurisdiction": "DE",
                    "jurisdiction_ancestors": ["EU"], "security_tier": 3, "grid_power_kw": 30.0}  # fmt: skip
            c.post("/api/v1/sites", json=site).raise_for_status()
            et = c.post(f"/api/v1/sites/{SITE}/enrollment-tokens").json()["token"]
        site_key = pki.new_key()
        csr = pki.csr_pem(pki.make_csr(site_key, SITE)).decode()
        with httpx.Client(verify=trust) as c:
            cred = c.post(f"{secure}/api/v1/enroll", json={"token": et, "csr": csr}).json()
        pki.write_private(d / "site.key", pki.key_pem(site_key))
        (d / "site.pem").write_text(cred["client_certificate"])
        mtls = ssl.create_default_context(cafile=str(d / "ca" / "ca.pem"))
        mtls.load_cert_chain(str(d / "site.pem"), str(d / "site.key"))
        token = cred["token"]
        cases = {
            "plain HTTP": (lambda lim: httpx.Client(limits=lim), plain),
            "mutual TLS (site cert, bound)": (lambda lim: httpx.Client(verify=mtls, limits=lim), secure),
        }
        results: dict[str, Any] = {}
        for name, (make, url) in cases.items():
            for reuse in (True, False):
                label = f"{name}, {'keep-alive' if reuse else 'new connection'}"
                timed(min(20, a.n), make, url, token, reuse=reuse)  # warm-up
                results[label] = timed(a.n, make, url, token, reuse=reuse)
                r = results[label]
                rate = f"{r['req_per_s']:8.1f} req/s"
                print(f"{label:48s} {rate}  p50 {r['p50_ms']:6.2f} ms  p95 {r['p95_ms']:6.2f} ms")
        for label, port, ctx in (
            ("TCP connect", hp, None),
            ("TCP + TLS 1.3 handshake, client cert", tp, mtls),
        ):
            results[label] = {"p50_ms": handshakes(a.n, port, ctx)}
            print(f"{label:48s} p50 {results[label]['p50_ms']:6.2f} ms")
        meta = {"n": a.n, "cpus": os.cpu_count(), "python": sys.version.split()[0]}
        if a.json:
            a.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=15)


if __name__ == "__main__":
    main()
