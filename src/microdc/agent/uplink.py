"""The uplink to the control plane: compression, a bandwidth budget, backoff, and the real API calls.

* **Compression.** Telemetry batches are sent with ``Content-Encoding: gzip`` (or ``zstd`` when the
  ``zstandard`` package is installed and configured). With ``compression: auto`` the agent starts with
  gzip; if the server cannot read a compressed body (400/415/422 for a compressed batch that it then
  accepts uncompressed), the agent remembers that in its state and sends identity bodies, probing again
  after an hour.
* **Bandwidth budget.** A token bucket in bytes (``budget_bytes_per_s``, ``burst_bytes``) paces every
  request by its size on the wire (request line, headers and body); a large backlog drains at the
  budgeted rate, never faster.
* **Backoff.** Exponential with "equal jitter" from a seedable RNG (same seed, same delays), reset on
  success; a server's ``Retry-After`` wins when it is longer.
* **Accounting.** ``bytes_out``/``bytes_in`` count HTTP/1.1 request and response bytes (lines, headers,
  bodies) — what the idle-bandwidth figure in docs/benchmarks.md is made of.

Errors become `UplinkError` with a ``kind``: ``offline`` (no connection/timeout), ``tls`` (the TLS
handshake failed: wrong CA, expired, hostname or pin mismatch, client certificate refused — the message
says which; see microdc.agent.tls), ``auth`` (401:
credential expired or revoked), ``rate`` (429/503), ``server`` (other 5xx), ``rejected`` (other 4xx:
the request itself is wrong, retrying it would not help).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from microdc.agent.config import BackoffConfig, UplinkConfig
from microdc.agent.state import State
from microdc.agent.tls import AgentTls, describe_tls_failure

Kind = Literal["offline", "tls", "auth", "rate", "server", "rejected"]
USER_AGENT = "microdc-agent"
REPROBE_S = 3600.0


# what a client sees when the server drops a TLS connection over our certificate (see AgentTls.diagnose)
_AMBIGUOUS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ConnectError)


class UplinkError(Exception):
    def __init__(
        self, kind: Kind, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class TokenBucket:
    """Bytes per second with a burst; `take` waits (asynchronously) until the bytes may be sent."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def delay(self, n: int) -> float:
        """Seconds until `n` bytes may go (a request larger than the burst waits for a full bucket)."""
        self._refill()
        need = min(float(n), self.burst)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def consume(self, n: int) -> None:
        self._refill()
        self.tokens -= n  # may go negative for an oversized request: later ones wait longer

    async def take(self, n: int) -> float:
        waited = 0.0
        while (d := self.delay(n)) > 0:
            await asyncio.sleep(d)
            waited += d
        self.consume(n)
        return waited


class Backoff:
    """delay_k = uniform(b_k / 2, b_k), b_k = min(max, initial × multiplier^k) ("equal jitter")."""

    def __init__(self, cfg: BackoffConfig):
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.attempt = 0

    def next(self) -> float:
        base = min(self.cfg.max_s, self.cfg.initial_s * self.cfg.multiplier**self.attempt)
        self.attempt += 1
        return self.rng.uniform(base / 2, base)

    def reset(self) -> None:
        self.attempt = 0


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=6).compress(body)
    return body


def zstd_available() -> bool:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return False
    return True


def _wire_size(method: str, url: httpx.URL, headers: httpx.Headers, body: bytes) -> int:
    line = len(method) + 1 + len(url.raw_path) + len(" HTTP/1.1\r\n")
    return line + sum(len(k) + len(v) + 4 for k, v in headers.raw) + 2 + len(body)


def _resp_size(resp: httpx.Response) -> int:
    return (
        len("HTTP/1.1 200 OK\r\n")
        + sum(len(k) + len(v) + 4 for k, v in resp.headers.raw)
        + 2
        + len(resp.content)
    )


@dataclass
class Stats:
    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    failures: int = 0
    throttled_s: float = 0.0


class Uplink:
    def __init__(
        self,
        server: str,
        state: State,
        cfg: UplinkConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        tls: AgentTls | None = None,
    ):
        self.server = server.rstrip("/")
        self.state = state
        self.cfg = cfg
        self.clock = clock
        self.tls = tls
        self._transport = transport
        self.bucket = TokenBucket(cfg.budget_bytes_per_s, cfg.burst_bytes)
        self.stats = Stats()
        self.client = self._new_client()

    def _new_client(self) -> httpx.AsyncClient:
        # An explicit SSL context: trust comes from agent.yaml (tls.ca_file) or certifi, never from
        # SSL_CERT_FILE/SSL_CERT_DIR in the environment.
        verify = self.tls.ssl_context() if self.tls is not None else True
        return httpx.AsyncClient(
            base_url=self.server,
            timeout=self.cfg.timeout_s,
            transport=self._transport,
            verify=verify,
            headers={"user-agent": USER_AGENT, "accept": "application/json", "accept-encoding": "gzip"},
        )

    async def reload_tls(self) -> None:
        """New connections with the current client certificate (after enrollment or renewal)."""
        old, self.client = self.client, self._new_client()
        await old.aclose()

    async def close(self) -> None:
        await self.client.aclose()

    # --- plumbing ---------------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        cred = self.state.get("credential")
        return cred.get("token") if cred else None

    def coding(self) -> str:
        want = self.cfg.compression
        if want == "none":
            return "identity"
        if want == "zstd":
            return "zstd" if zstd_available() else "gzip"
        if want == "gzip":
            return "gzip"
        caps = self.state.get("server_compression") or {}
        if caps.get("gzip") is False and self.clock() - caps.get("checked", 0) < REPROBE_S:
            return "identity"
        return "gzip"

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        coding: str = "identity",
        auth: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = (
            b""
            if body is None
            else body
            if isinstance(body, bytes)
            else json.dumps(body, separators=(",", ":")).encode()
        )
        hdrs = dict(headers or {})
        if raw:
            hdrs["content-type"] = "application/json"
            if coding != "identity":
                raw = compress(raw, coding)
                hdrs["content-encoding"] = coding
        if auth:
            token = self.token
            if not token:
                raise UplinkError("auth", "no site credential")
            hdrs["authorization"] = f"Bearer {token}"
        req = self.client.build_request(method, path, content=raw or None, headers=hdrs)
        size = _wire_size(method, req.url, req.headers, raw)
        self.stats.throttled_s += await self.bucket.take(size)
        self.stats.requests += 1
        self.stats.bytes_out += size
        try:
            resp = await self.client.send(req)
        except (httpx.TransportError, OSError) as e:
            self.stats.failures += 1
            why = describe_tls_failure(e, self.tls.ca_file if self.tls else None)
            if why is None and self.tls is not None and isinstance(e, _AMBIGUOUS):
                now = datetime.fromtimestamp(self.clock(), UTC)
                why = await asyncio.to_thread(self.tls.diagnose, self.server, self.cfg.timeout_s, now)
            if why is not None:
                raise UplinkError("tls", f"{method} {path}: TLS to {self.server}: {why}") from None
            raise UplinkError("offline", f"{method} {path}: {type(e).__name__}: {e}") from None
        self.stats.bytes_in += _resp_size(resp)
        if resp.status_code < 400 or resp.status_code == 304:
            return resp
        self.stats.failures += 1
        detail = _detail(resp)
        retry_after = _retry_after(resp)
        if resp.status_code == 401:
            raise UplinkError("auth", f"{method} {path}: 401 {detail}", status=401)
        if resp.status_code in (429, 503):
            raise UplinkError(
                "rate",
                f"{method} {path}: {resp.status_code} {detail}",
                status=resp.status_code,
                retry_after=retry_after,
            )
        if resp.status_code >= 500:
            raise UplinkError(
                "server", f"{method} {path}: {resp.status_code} {detail}", status=resp.status_code
            )
        raise UplinkError(
            "rejected", f"{method} {path}: {resp.status_code} {detail}", status=resp.status_code
        )

    # --- the control plane's API ------------------------------------------------------------------

    async def enroll(
        self, token: str, agent_version: str | None, site_hint: str | None = None
    ) -> dict[str, Any]:
        """POST /api/v1/enroll: a one-time enrollment token → the site credential (SiteCredentialOut),
        with a client certificate for our CSR when tls.request_certificate is on."""
        body: dict[str, Any] = {"token": token, "agent_version": agent_version}
        csr = self._csr(site_hint, enrolling=True)
        if csr:
            body["csr"] = csr
        resp = await self.request("POST", "/api/v1/enroll", body=body, auth=False)
        return await self._took_certificate(dict(resp.json()))

    async def rotate(self, site_hint: str | None = None) -> dict[str, Any]:
        csr = self._csr(site_hint, enrolling=False)
        body = {"csr": csr} if csr else None
        resp = await self.request("POST", "/api/v1/site-credentials/rotate", body=body)
        return await self._took_certificate(dict(resp.json()))

    def _csr(self, site_hint: str | None, *, enrolling: bool) -> str | None:
        if self.tls is None:
            return None
        now = datetime.fromtimestamp(self.clock(), UTC)
        return self.tls.csr(site_hint, now, enrolling=enrolling)

    async def _took_certificate(self, answer: dict[str, Any]) -> dict[str, Any]:
        if self.tls is not None and self.tls.store_issued(answer):
            await self.reload_tls()
        return answer

    async def send_batch(self, site_id: str, body: str) -> dict[str, Any]:
        """POST …/telemetry with the batch's exact bytes; falls back to identity if gzip is refused."""
        coding = self.coding()
        path = f"/api/v1/sites/{site_id}/telemetry"
        try:
            resp = await self.request("POST", path, body=body.encode(), coding=coding)
        except UplinkError as e:
            if coding == "identity" or e.kind != "rejected" or e.status not in (400, 415, 422):
                raise
            resp = await self.request("POST", path, body=body.encode(), coding="identity")
            if self.cfg.compression == "auto":
                # one transaction: whoever sees the capability flag also sees its audit entry
                with self.state.tx() as conn:
                    details = {"coding": coding, "status": e.status}
                    self.state.audit("uplink.compression_refused", details, conn)
                    self.state.set("server_compression", {"gzip": False, "checked": self.clock()}, conn)
            return dict(resp.json())
        if coding != "identity" and self.cfg.compression == "auto":
            caps = self.state.get("server_compression") or {}
            if caps.get("gzip") is not True:
                self.state.set("server_compression", {"gzip": True, "checked": self.clock()})
        return dict(resp.json())

    async def send_alarm(self, site_id: str, body: dict[str, Any]) -> int:
        resp = await self.request("POST", f"/api/v1/sites/{site_id}/alarm-events", body=body)
        return resp.status_code

    async def heartbeat(self, site_id: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.request("POST", f"/api/v1/sites/{site_id}/heartbeat", body=body)
        return dict(resp.json())

    async def get_desired(
        self, site_id: str, etag: str | None
    ) -> tuple[int, dict[str, Any] | None, str | None]:
        headers = {"if-none-match": etag} if etag else None
        resp = await self.request("GET", f"/api/v1/sites/{site_id}/desired-state", headers=headers)
        if resp.status_code == 304:
            return 304, None, etag
        return resp.status_code, dict(resp.json()), resp.headers.get("etag")

    async def ack_desired(self, site_id: str, version: int, status: str, message: str = "") -> dict[str, Any]:
        resp = await self.request(
            "POST",
            f"/api/v1/sites/{site_id}/desired-state/ack",
            body={"version": version, "status": status, "message": message[:1024]},
        )
        return dict(resp.json())

    async def report_workloads(self, site_id: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.request("POST", f"/api/v1/sites/{site_id}/workload-status", body=body)
        return dict(resp.json())


def _detail(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("title") or "")[:300]
    return ""


def _retry_after(resp: httpx.Response) -> float | None:
    v = resp.headers.get("retry-after")
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None
