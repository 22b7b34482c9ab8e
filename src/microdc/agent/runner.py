"""The agent's main loop: identity, sensors, local alarms, data plane, uplink, heartbeats, desired state.

Independent asyncio tasks, none of which waits for the cloud to do local work:

* one **poll loop** per sensor source → `Ingestor` (raw store, alarms, sovereignty gate, queue);
* the **MQTT data plane** (paho's own thread) → the same `Ingestor`;
* the **uplink loop**: enroll if needed, renew the credential when due, then drain the durable queue
  (alarm events first, then telemetry batches in ``seq`` order), every ``flush_s`` or at once when an
  alarm is raised or a full batch is waiting; on failure exponential backoff with jitter;
* the **heartbeat loop** (the server's interval), which also learns of new desired-state versions;
* the **desired-state loop**: conditional GET, store, hand to the supervisor, ack (`Reconciler`);
* the **supervise loop**: the `Supervisor` starts, probes, restarts and replaces workloads through the
  executor chosen in agent.yaml (podman or process) every ``supervise_s``, stores their status in the
  state file and reports it (``POST /api/v1/sites/{id}/workload-status``) on change and every
  ``status_s`` — with the uplink down it goes on running the last desired state, indefinitely;
* **housekeeping**: aggregates of aggregate-only data classes, the queue's disk budget, raw retention.

Credentials: the agent rotates its credential after ``renew_after``. If the server refuses it (expired
while the site was offline, or revoked), the agent first tries a rotation anyway (a control plane that
lets an expired, unrevoked credential refresh itself accepts it), then re-enrolls with a token found in
``enroll_token_file`` if an installer dropped one there; until then it keeps running locally, queueing
everything, and retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from microdc import __version__
from microdc.agent.alarms import LocalAlarms
from microdc.agent.config import AgentConfig
from microdc.agent.dataplane import Aggregator, MqttIngest
from microdc.agent.executors import Executor, build_executor
from microdc.agent.health import probe
from microdc.agent.ingest import Ingestor
from microdc.agent.readings import iso, now_utc
from microdc.agent.reconcile import Reconciler
from microdc.agent.sensors import Source, SourceError, build_source
from microdc.agent.sovereignty import SyncGate, build_policy_book, volume_refusal
from microdc.agent.state import State
from microdc.agent.supervisor import Supervisor
from microdc.agent.tls import AgentTls
from microdc.agent.uplink import Backoff, Uplink, UplinkError

log = logging.getLogger("microdc.agent")

#: An enrollment token file younger than this may still be being written; it is taken on a later round.
TOKEN_FILE_SETTLE_S = 0.5


class AgentError(RuntimeError):
    """The agent cannot start (no identity, wrong site, bad enrollment token)."""


def read_credential_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "token" not in doc or "site_id" not in doc:
        raise AgentError(
            f"{path}: expected the JSON answer of /api/v1/enroll (site_id, token, expires_at, …)"
        )
    return doc


def write_credential_file(path: Path, cred: dict[str, Any]) -> None:
    """Atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(cred, fh, indent=2)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Agent:
    def __init__(
        self,
        cfg: AgentConfig,
        *,
        server: str | None = None,
        enroll_token: str | None = None,
        credential_file: Path | None = None,
        state: State | None = None,
        executor: Executor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sources: list[Source] | None = None,
        clock: Callable[[], datetime] = now_utc,
    ):
        self.cfg = cfg
        server = server or cfg.server
        if not server:
            raise AgentError("no control-plane URL: pass --server or set `server:` in agent.yaml")
        self.server = server
        self.state = state or State(cfg.resolve(cfg.state_path))
        self._owns_state = state is None
        self.enroll_token = enroll_token
        self.credential_file = credential_file
        self.clock = clock
        self.book = build_policy_book(cfg.policy, cfg.base_dir)
        self.gate = SyncGate(self.book, cfg.policy.jurisdiction, cfg.policy.upstream_jurisdiction)
        # always an explicit TLS setup: trust comes from agent.yaml (or certifi), never the environment
        self.uplink = Uplink(
            server, self.state, cfg.uplink, transport=transport, tls=AgentTls(cfg.tls, cfg.resolve)
        )
        self.backoff = Backoff(cfg.uplink.backoff)
        self.heartbeat_s = cfg.intervals.heartbeat_s
        self.agent_version = cfg.agent_version or f"microdc-agent/{__version__}"
        self._sources_override = sources
        self._executor = executor
        self.sources: list[Source] = []
        self.mqtt: MqttIngest | None = None
        self.ingestor: Ingestor | None = None
        self.alarms: LocalAlarms | None = None
        self.reconciler: Reconciler | None = None
        self.supervisor: Supervisor | None = None
        self._status_due = asyncio.Event()
        self._supervise_now = asyncio.Event()
        self.aggregator: Aggregator | None = None
        self.online = False
        self.credential_ok = True
        self._stop = asyncio.Event()
        self._kick = asyncio.Event()
        self._polling = True  # False: sources are read no more (pause_polling, before a last flush)
        self._desired_due = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = asyncio.Event()

    # --- identity -------------------------------------------------------------------------------

    @property
    def credential(self) -> dict[str, Any] | None:
        cred: dict[str, Any] | None = self.state.get("credential")
        return cred

    @property
    def site_id(self) -> str | None:
        cred = self.credential
        return cred["site_id"] if cred else self.cfg.site_id

    def _save_credential(self, cred: dict[str, Any], how: str) -> None:
        if self.cfg.site_id and cred.get("site_id") != self.cfg.site_id:
            raise AgentError(
                f"credential is for site {cred.get('site_id')!r}, agent.yaml says {self.cfg.site_id!r}"
            )
        old = self.credential
        if old and old.get("site_id") != cred.get("site_id"):
            raise AgentError(
                f"this state file belongs to site {old.get('site_id')!r}, not {cred.get('site_id')!r}"
            )
        keep: dict[str, Any] = {
            k: cred[k] for k in ("site_id", "token", "token_id", "expires_at", "renew_after") if k in cred
        }
        with self.state.tx() as conn:
            self.state.set("credential", keep, conn)
            self.state.audit(
                f"credential.{how}",
                {"token_id": keep.get("token_id"), "expires_at": keep.get("expires_at")},
                conn,
            )
        if self.credential_file is not None:
            write_credential_file(self.credential_file, keep)
        self.credential_ok = True

    def _load_identity(self) -> None:
        if self.credential is None and self.credential_file is not None:
            cred = read_credential_file(self.credential_file)
            if cred is not None:
                self._save_credential(cred, "loaded")
        if self.credential is not None and self.enroll_token:
            log.info("already enrolled as site %s; ignoring the enrollment token", self.site_id)
            self.enroll_token = None
        if self.credential is None and not self.enroll_token and not self._enroll_file_token(peek=True):
            raise AgentError("no site credential: pass --enroll TOKEN (first start) or --credential FILE")

    def _enroll_file_token(self, *, peek: bool = False) -> str | None:
        if not self.cfg.enroll_token_file:
            return None
        p = self.cfg.resolve(self.cfg.enroll_token_file)
        try:
            st = p.stat()
            token = p.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not token:
            return None  # empty: an installer is still writing it (or wrote nothing); never consume it
        if not peek:
            if time.time() - st.st_mtime < TOKEN_FILE_SETTLE_S:
                return None  # written a moment ago, perhaps not yet in full: take it on the next round
            p.unlink(missing_ok=True)  # one-time: never tried twice
        return token

    async def _enroll(self, token: str) -> None:
        try:
            cred = await self.uplink.enroll(token, self.agent_version, self.cfg.site_id)
        except UplinkError as e:
            if e.kind in ("auth", "rejected"):
                self.state.audit("credential.enroll_failed", {"status": e.status})
                raise AgentError(f"enrollment refused: {e}") from None
            raise
        self._save_credential(cred, "enrolled")
        log.info("enrolled as site %s", cred.get("site_id"))

    async def _renew_if_due(self) -> None:
        cred = self.credential
        if not cred or not cred.get("renew_after"):
            return
        if self.clock() < datetime.fromisoformat(str(cred["renew_after"]).replace("Z", "+00:00")):
            return
        new = await self.uplink.rotate(self.site_id)
        self._save_credential(new, "rotated")
        log.info("site credential rotated (expires %s)", new.get("expires_at"))

    async def _recover_credential(self) -> bool:
        """The server refused the credential: refresh it if the server allows, else re-enroll from a file."""
        self.credential_ok = False
        try:
            new = await self.uplink.rotate()
        except UplinkError as e:
            if e.kind != "auth":
                raise
        else:
            self._save_credential(new, "refreshed")
            return True
        token = self._enroll_file_token()
        if token:
            try:
                await self._enroll(token)
                return True
            except AgentError as e:
                log.error("%s", e)
        self.state.bump("credential_refused")
        log.error(
            "site credential refused (expired or revoked); still running locally. Drop a new enrollment "
            "token in %s to re-enroll.",
            self.cfg.enroll_token_file or "enroll_token_file (not configured)",
        )
        return False

    # --- components -----------------------------------------------------------------------------

    def _build(self, site_id: str) -> None:
        self.alarms = LocalAlarms(self.state, self.cfg, site_id)
        self.ingestor = Ingestor(
            self.state, self.gate, self.alarms, self.cfg.uplink, jurisdiction=self.cfg.policy.jurisdiction
        )
        self.aggregator = Aggregator(self.state, self.gate, self.cfg.policy)
        executor = self._executor or build_executor(self.cfg, site_id)
        self.executor = executor
        self.supervisor = Supervisor(
            executor,
            self.cfg.resolve(self.cfg.executor.work_dir) / "volumes",
            probe=lambda spec, inst: spec.health is not None and probe(spec.health, inst, executor),
        )
        jurisdiction = self.cfg.policy.jurisdiction
        self.reconciler = Reconciler(
            self.state,
            self.supervisor,
            site_id,
            volume_check=lambda v: volume_refusal(self.book, jurisdiction, v.data_class, v.jurisdiction),
            executor_check=executor.check,
        )
        if self._sources_override is not None:
            self.sources = list(self._sources_override)
        else:
            self.sources = [
                build_source(s, self.cfg, site_id=site_id, base_dir=self.cfg.base_dir)
                for s in self.cfg.sensors
                if s.enabled
            ]
        if self.cfg.mqtt.enabled:
            self.mqtt = MqttIngest(
                self.cfg.mqtt,
                site_id,
                self.ingestor,
                self.state,
                facility_class=self.cfg.policy.facility_data_class,
                clock=self.clock,
                on_ingest=self._kick_threadsafe,
            )

    def _kick_threadsafe(self) -> None:
        if self._loop is not None and self.state.pending_count() >= self.cfg.uplink.max_batch_readings:
            self._loop.call_soon_threadsafe(self._kick.set)

    def status(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "online": self.online,
            "credential_ok": self.credential_ok,
            "pending_readings": self.state.pending_count(),
            "batches_unacked": self.state.batch_count(),
            "alarm_events_unsent": self.state.alarm_count(),
            "open_alarms": self.alarms.open_alarms() if self.alarms else {},
            "desired_version": self.reconciler.version if self.reconciler else None,
            "running": sorted(self.state.running()),
            "workloads": {k: v.get("state") for k, v in self.state.workload_status().items()},
            "bytes_out": self.uplink.stats.bytes_out,
            "bytes_in": self.uplink.stats.bytes_in,
            "counters": self.state.counters(),
        }

    # --- loops ----------------------------------------------------------------------------------

    async def _sleep(self, seconds: float, *wake: asyncio.Event) -> None:
        events = [self._stop, *wake]
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _poll_loop(self, src: Source) -> None:
        assert self.ingestor is not None
        interval = src.interval_s or self.cfg.intervals.poll_s
        data_class = src.data_class or self.cfg.policy.facility_data_class
        failing = False
        while not self._stop.is_set() and self._polling:
            t0 = time.monotonic()
            try:
                res = await src.poll(self.clock())
            except SourceError as e:
                self.state.bump(f"source_errors.{src.name}")
                if not failing:
                    log.warning("%s", e)
                failing = True
            except Exception:
                self.state.bump(f"source_errors.{src.name}")
                log.exception("source %s failed", src.name)
                failing = True
            else:
                if failing:
                    log.info("source %s is back", src.name)
                failing = False
                self.state.bump("sensor_values_unknown", res.unknown)
                for why in res.invalid:
                    self.state.reject(f"source:{src.name}", f"invalid: {why}", why)
                readings = [r.tagged(data_class) for r in res.readings]
                out = await asyncio.to_thread(self.ingestor.ingest, readings, src.name)
                if out.alarm_events or self.state.pending_count() >= self.cfg.uplink.max_batch_readings:
                    self._kick.set()
            await self._sleep(interval - (time.monotonic() - t0))

    async def _drain(self, site_id: str) -> int:
        """Send everything queued: alarm events first, then telemetry batches in seq order."""
        sent = 0
        while not self._stop.is_set():
            for a in self.state.next_alarms():
                try:
                    await self.uplink.send_alarm(site_id, a.body)
                except UplinkError as e:
                    if e.kind != "rejected":
                        raise
                    self.state.audit("alarm.refused", {"event_id": a.event_id, "error": str(e)})
                    self.state.bump("alarm_events_refused")
                self.state.ack_alarm(a.id)
                sent += 1
            batch = await asyncio.to_thread(self.state.next_batch, self.cfg.uplink.max_batch_readings)
            if batch is None:
                return sent
            self.state.attempt(batch.seq)
            try:
                ack = await self.uplink.send_batch(site_id, batch.body)
            except UplinkError as e:
                if e.kind != "rejected":
                    raise
                log.error("batch %s refused for good, set aside: %s", batch.seq, e)
                self.state.dead_letter(batch, str(e))
                continue
            self.state.ack_batch(batch.seq, int(ack.get("accepted", 0)), bool(ack.get("duplicate")))
            sent += 1
        return sent

    def _set_online(self, online: bool) -> None:
        if online != self.online:
            log.info("uplink %s", "up" if online else "down")
            self.state.audit("uplink.up" if online else "uplink.down", {})
        self.online = online

    async def _uplink_loop(self) -> None:
        while not self._stop.is_set():
            delay: float | None = None
            try:
                if self.credential is None:
                    token = self.enroll_token or self._enroll_file_token()
                    if token is None:
                        raise AgentError("no credential and no enrollment token")
                    await self._enroll(token)
                    self.enroll_token = None
                    self._desired_due.set()
                await self._renew_if_due()
                site_id = self.site_id
                assert site_id is not None
                await self._drain(site_id)
                self._set_online(True)
                self.backoff.reset()
            except UplinkError as e:
                if e.kind == "auth" and self.credential is not None:
                    delay = 0.0 if await self._recover_credential_safe() else self.backoff.next()
                else:
                    self._set_online(False)
                    delay = max(self.backoff.next(), e.retry_after or 0.0)
                    # a certificate problem needs a person; "offline" heals by itself
                    level = logging.ERROR if e.kind == "tls" else logging.INFO
                    log.log(level, "uplink: %s; retrying in %.1f s", e, delay)
            except AgentError as e:
                log.error("%s", e)
                self.enroll_token = None  # a refused token is not tried again
                delay = self.backoff.next()
            if delay is not None:
                await self._sleep(delay)
            else:
                self._kick.clear()
                await self._sleep(self.cfg.uplink.flush_s, self._kick)

    async def _recover_credential_safe(self) -> bool:
        try:
            return await self._recover_credential()
        except UplinkError:
            self._set_online(False)
            return False

    async def _heartbeat_loop(self) -> None:
        seq = int(self.state.get("heartbeat_seq", 0))
        while not self._stop.is_set():
            site_id = self.site_id
            if self.credential is not None and self.credential_ok and site_id:
                seq += 1
                body = {
                    "seq": seq,
                    "sent_at": iso(self.clock()),
                    "agent_version": self.agent_version[:64],
                    "buffered_batches": self.state.backlog(),
                }
                try:
                    out = await self.uplink.heartbeat(site_id, body)
                except UplinkError as e:
                    if e.kind == "auth":
                        self._kick.set()  # the uplink loop recovers the credential
                    else:
                        self._set_online(False)
                else:
                    self._set_online(True)
                    self.heartbeat_s = float(out.get("heartbeat_interval_s") or self.heartbeat_s)
                    if out.get("audit_checkpoint") is not None:
                        kept = self.state.keep_audit_checkpoint(out["audit_checkpoint"])
                        if kept == "older":
                            log.warning(
                                "the control plane's audit checkpoint went backwards (log truncated?)"
                            )
                    if self.reconciler and (
                        out.get("desired_version") != self.reconciler.version
                        or self.state.get("desired_ack_pending")
                    ):
                        self._desired_due.set()
                    if self.state.backlog():
                        self._kick.set()
                    self.state.set("heartbeat_seq", seq)
            await self._sleep(self.heartbeat_s)

    async def _desired_loop(self) -> None:
        assert self.reconciler is not None
        while not self._stop.is_set():
            await self._sleep(self.cfg.intervals.desired_s, self._desired_due)
            if self._stop.is_set():
                return
            self._desired_due.clear()
            if self.credential is None or not self.credential_ok:
                continue
            try:
                if await self.reconciler.sync(self.uplink):
                    self._supervise_now.set()
                    self._status_due.set()
            except UplinkError as e:
                if e.kind == "auth":
                    self._kick.set()
                log.debug("desired state not fetched: %s", e)

    async def _supervise_loop(self) -> None:
        """Run the supervisor; store and report what it saw (the report waits for a working uplink)."""
        assert self.supervisor is not None
        last: list[dict[str, Any]] | None = None
        sent: list[dict[str, Any]] | None = None
        last_sent = 0.0
        while not self._stop.is_set():
            try:
                statuses = [s.model_dump(mode="json") for s in await asyncio.to_thread(self.supervisor.step)]
            except Exception:
                log.exception("supervisor round failed")
                statuses = last or []
            if statuses != last:
                self.state.set_workload_status(statuses)
                last = statuses
            due = time.monotonic() - last_sent >= self.cfg.intervals.status_s or self._status_due.is_set()
            changed = [{k: v for k, v in s.items() if k != "since"} for s in statuses] != sent
            site_id = self.site_id
            if (changed or due) and self.credential is not None and self.credential_ok and site_id:
                body = {"desired_version": self.reconciler.version if self.reconciler else None,
                        "observed_at": iso(self.clock()), "workloads": statuses}  # fmt: skip
                try:
                    await self.uplink.report_workloads(site_id, body)
                except UplinkError as e:
                    if e.kind == "auth":
                        self._kick.set()
                    log.debug("workload status not reported: %s", e)
                else:
                    sent = [{k: v for k, v in s.items() if k != "since"} for s in statuses]
                    last_sent = time.monotonic()
                    self._status_due.clear()
            await self._sleep(self.cfg.intervals.supervise_s, self._supervise_now)
            self._supervise_now.clear()

    async def _housekeeping_loop(self) -> None:
        assert self.aggregator is not None
        st = self.cfg.storage
        while not self._stop.is_set():
            try:
                n = await asyncio.to_thread(self.aggregator.run, self.clock().timestamp())
                if n:
                    self._kick.set()
                res = await asyncio.to_thread(
                    self.state.enforce_budget, st.max_queue_bytes, st.downsample_bucket_s
                )
                if res.downsampled or res.dropped:
                    log.warning(
                        "queue over budget: %d readings downsampled, %d dropped (%d bytes queued)",
                        res.downsampled, res.dropped, res.queue_bytes,
                    )  # fmt: skip
                await asyncio.to_thread(self.state.prune_raw, st.raw_retention_days * 86400, st.raw_max_bytes)
                self.state.set("status", {k: v for k, v in self.status().items() if k != "counters"})
            except Exception:
                log.exception("housekeeping failed")
            await self._sleep(self.cfg.intervals.housekeeping_s)

    # --- lifecycle ------------------------------------------------------------------------------

    def pause_polling(self) -> None:
        """Read no more sources (a reading already being taken is still queued): before a last flush,
        so the queue only shrinks while everything else (uplink, alarms, heartbeats) goes on."""
        self._polling = False

    def flush_now(self) -> None:
        """Wake the uplink to send what is queued (an uplink backing off after a failure still waits)."""
        self._kick.set()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run until `stop()`; local service starts at once, whatever the uplink does."""
        self._loop = asyncio.get_running_loop()
        self._load_identity()
        if self.site_id is None:
            # no identity yet and no site id in agent.yaml: enrollment must come first
            while self.credential is None and not self._stop.is_set():
                try:
                    await self._enroll(self.enroll_token or self._enroll_file_token() or "")
                except UplinkError as e:
                    d = self.backoff.next()
                    log.log(
                        logging.ERROR if e.kind == "tls" else logging.INFO,
                        "enrollment: %s; retrying in %.1f s",
                        e,
                        d,
                    )
                    await self._sleep(d)
            self.backoff.reset()
        site_id = self.site_id
        if site_id is None:
            return
        self._build(site_id)
        assert self.reconciler is not None
        _ok, msg = self.reconciler.apply_local()  # last desired state, no network needed
        log.info("site %s: local desired state: %s", site_id, msg)
        if self.mqtt is not None:
            self.mqtt.start()
        tasks = [asyncio.create_task(self._poll_loop(s), name=f"poll:{s.name}") for s in self.sources]
        tasks += [
            asyncio.create_task(self._uplink_loop(), name="uplink"),
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._desired_loop(), name="desired"),
            asyncio.create_task(self._supervise_loop(), name="supervise"),
            asyncio.create_task(self._housekeeping_loop(), name="housekeeping"),
        ]
        self._desired_due.set()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            if self.mqtt is not None:
                await asyncio.to_thread(self.mqtt.stop)
            for s in self.sources:
                with contextlib.suppress(Exception):
                    await s.close()
            await self.uplink.close()
            if self._owns_state:
                self.state.close()
