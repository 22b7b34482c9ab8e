"""Redfish (DMTF) for servers, PDUs and cooling units, through the `sushy` client's HTTP connector.

What is read (``resources: [auto]``):

* every chassis under ``/redfish/v1/Chassis``: ``Thermal`` (``Temperatures[].ReadingCelsius``,
  ``Fans[]`` in percent), ``Power`` (``PowerControl[].PowerConsumedWatts``, ``Voltages[].ReadingVolts``)
  and the ``Sensors`` collection (``Sensor.ReadingType``/``Reading``/``ReadingUnits``/``PhysicalContext``);
* ``/redfish/v1/PowerEquipment`` → ``RackPDUs``, ``FloorPDUs``, ``TransferSwitches``, ``PowerShelves``:
  each one's ``Sensors`` and ``Metrics`` (``PowerWatts``, ``EnergykWh``);
* ``/redfish/v1/ThermalEquipment`` → ``CDUs``, ``HeatExchangers``, ``ImmersionUnits``, ``CRACs``…: each
  one's ``Sensors`` and ``EnvironmentMetrics`` (``TemperatureCelsius``, ``HumidityPercent``,
  ``PowerWatts``, ``EnergykWh``).

Explicit ``resources`` may list any of those resource paths instead. Sensor ids are
``<prefix>.<resource id>.<member>``. Absent/disabled members and null readings are counted as unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from microdc.agent.config import AgentConfig, RedfishSource
from microdc.agent.sensors.base import PollResult, SourceError, slug
from microdc.protocol.vocab import UNITS, PhysicalContext, ReadingType

ROOT = "/redfish/v1"
CONTEXTS = {c.value for c in PhysicalContext}
SENSOR_TYPES: dict[str, tuple[str, str]] = {  # Redfish ReadingType → (our type, default unit)
    "Temperature": ("Temperature", "Cel"),
    "Humidity": ("Humidity", "%"),
    "Power": ("Power", "W"),
    "EnergykWh": ("EnergykWh", "kW.h"),
    "Voltage": ("Voltage", "V"),
    "Current": ("Current", "A"),
    "Frequency": ("Frequency", "Hz"),
    "Percent": ("Percent", "%"),
}
METRIC_FIELDS: dict[str, tuple[str, str]] = {  # excerpt fields of *Metrics resources
    "TemperatureCelsius": ("Temperature", "Cel"),
    "HumidityPercent": ("Humidity", "%"),
    "PowerWatts": ("Power", "W"),
    "EnergykWh": ("EnergykWh", "kW.h"),
}
POWER_EQUIPMENT = ("RackPDUs", "FloorPDUs", "TransferSwitches", "PowerShelves", "ElectricalBuses")
THERMAL_EQUIPMENT = ("CDUs", "HeatExchangers", "ImmersionUnits", "CRACs", "CoolingUnits")


def _context(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value in CONTEXTS else default


def _absent(member: dict[str, Any]) -> bool:
    state = (member.get("Status") or {}).get("State")
    return state in ("Absent", "Disabled", "UnavailableOffline")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class RedfishPoller:
    def __init__(self, cfg: RedfishSource, agent: AgentConfig):
        self.cfg = cfg
        self.name = cfg.name
        self.interval_s = cfg.interval_s
        self.data_class = cfg.data_class
        self.prefix = cfg.sensor_prefix or cfg.name
        self.ca_file = str(agent.resolve(cfg.ca_file)) if cfg.ca_file else None
        self._conn: Any = None

    def _connector(self) -> Any:
        if self._conn is None:
            from sushy import connector

            conn = connector.Connector(
                self.cfg.base_url.rstrip("/"),
                username=self.cfg.username,
                password=self.cfg.password,
                verify=self.ca_file or self.cfg.verify_tls,  # requests: a CA bundle path or a bool
                default_request_timeout=self.cfg.timeout_s,
                connect_timeout=self.cfg.timeout_s,
            )
            self._conn = conn
        return self._conn

    def _get(self, path: str) -> dict[str, Any] | None:
        from sushy import exceptions

        try:
            resp = self._connector().get(path=path)
        except exceptions.ResourceNotFoundError:
            return None
        except exceptions.SushyError as e:
            raise SourceError(f"{self.name}: GET {path}: {self._tls_hint(str(e))}{e}") from None
        try:
            data = resp.json()
        except ValueError:
            raise SourceError(f"{self.name}: GET {path}: not JSON") from None
        return data if isinstance(data, dict) else None

    def _tls_hint(self, message: str) -> str:
        """A certificate failure says which CA was used and which setting to fix."""
        if "CERTIFICATE_VERIFY_FAILED" not in message and "certificate verify failed" not in message:
            return ""
        trust = f"the CA in ca_file {self.ca_file}" if self.ca_file else "the system's CAs (set ca_file)"
        if "hostname" in message.lower() or "IP address mismatch" in message:
            return "TLS: the BMC's certificate does not name the host in base_url — "
        return f"TLS: the BMC's certificate is not trusted by {trust} — "

    def _members(self, path: str) -> list[str]:
        coll = self._get(path) or {}
        return [m["@odata.id"] for m in coll.get("Members", []) if isinstance(m, dict) and "@odata.id" in m]

    @staticmethod
    def _link(res: dict[str, Any], name: str) -> str | None:
        v = res.get(name)
        return v.get("@odata.id") if isinstance(v, dict) else None

    # --- readers -------------------------------------------------------------------------------

    def _thermal(self, path: str, rid: str, ts: datetime, out: PollResult) -> None:
        th = self._get(path) or {}
        for t in th.get("Temperatures", []):
            if not isinstance(t, dict) or _absent(t):
                continue
            member = slug(str(t.get("MemberId") or t.get("Name") or len(out.readings)))
            out.add(
                f"{self.prefix}.{rid}.temp.{member}",
                "Temperature",
                "Cel",
                _context(t.get("PhysicalContext"), "Chassis"),
                ts,
                _num(t.get("ReadingCelsius")),
            )
        for f in th.get("Fans", []):
            if not isinstance(f, dict) or _absent(f) or f.get("ReadingUnits") != "Percent":
                continue
            member = slug(str(f.get("MemberId") or f.get("Name") or "fan"))
            out.add(f"{self.prefix}.{rid}.fan.{member}", "Percent", "%", "Fan", ts, _num(f.get("Reading")))

    def _power(self, path: str, rid: str, ts: datetime, out: PollResult) -> None:
        pw = self._get(path) or {}
        for p in pw.get("PowerControl", []):
            if not isinstance(p, dict) or _absent(p):
                continue
            member = slug(str(p.get("MemberId") or "0"))
            out.add(
                f"{self.prefix}.{rid}.power.{member}",
                "Power",
                "W",
                _context(p.get("PhysicalContext"), "PowerSupply"),
                ts,
                _num(p.get("PowerConsumedWatts")),
            )
        for v in pw.get("Voltages", []):
            if not isinstance(v, dict) or _absent(v):
                continue
            member = slug(str(v.get("MemberId") or v.get("Name") or "v"))
            out.add(
                f"{self.prefix}.{rid}.volt.{member}",
                "Voltage",
                "V",
                _context(v.get("PhysicalContext"), "PowerSupply"),
                ts,
                _num(v.get("ReadingVolts")),
            )

    def _sensor(self, s: dict[str, Any], rid: str, default_ctx: str, ts: datetime, out: PollResult) -> None:
        if _absent(s):
            return
        kind = SENSOR_TYPES.get(str(s.get("ReadingType")))
        if kind is None:
            return  # e.g. Rotational, AirFlow: not in the control plane's vocabulary
        rtype, unit = kind
        units = s.get("ReadingUnits")
        if isinstance(units, str) and units in UNITS[ReadingType(rtype)]:
            unit = units
        sid = slug(str(s.get("Id") or s.get("Name") or "sensor"))
        out.add(
            f"{self.prefix}.{rid}.{sid}",
            rtype,
            unit,
            _context(s.get("PhysicalContext"), default_ctx),
            ts,
            _num(s.get("Reading")),
        )

    def _sensors(self, path: str, rid: str, default_ctx: str, ts: datetime, out: PollResult) -> None:
        coll = self._get(path) or {}
        for m in coll.get("Members", []):
            if not isinstance(m, dict):
                continue
            # members may be expanded ($expand) or links
            s = m if "ReadingType" in m else (self._get(m["@odata.id"]) if "@odata.id" in m else None)
            if s:
                self._sensor(s, rid, default_ctx, ts, out)

    def _metrics(self, path: str, rid: str, default_ctx: str, ts: datetime, out: PollResult) -> None:
        met = self._get(path) or {}
        for field, (rtype, unit) in METRIC_FIELDS.items():
            ex = met.get(field)
            if isinstance(ex, dict) and "Reading" in ex:
                out.add(
                    f"{self.prefix}.{rid}.{slug(field)}",
                    rtype,
                    unit,
                    _context(ex.get("PhysicalContext"), default_ctx),
                    ts,
                    _num(ex.get("Reading")),
                )

    def _equipment(self, path: str, default_ctx: str, ts: datetime, out: PollResult) -> None:
        res = self._get(path)
        if not res:
            return
        rid = slug(str(res.get("Id") or path.rstrip("/").rsplit("/", 1)[-1]))
        if link := self._link(res, "Sensors"):
            self._sensors(link, rid, default_ctx, ts, out)
        for name in ("Metrics", "EnvironmentMetrics"):
            if link := self._link(res, name):
                self._metrics(link, rid, default_ctx, ts, out)

    def _chassis(self, path: str, ts: datetime, out: PollResult) -> None:
        ch = self._get(path)
        if not ch:
            return
        rid = slug(str(ch.get("Id") or path.rstrip("/").rsplit("/", 1)[-1]))
        if link := self._link(ch, "Thermal"):
            self._thermal(link, rid, ts, out)
        if link := self._link(ch, "Power"):
            self._power(link, rid, ts, out)
        if link := self._link(ch, "Sensors"):
            self._sensors(link, rid, "Chassis", ts, out)

    def _discover(self) -> list[tuple[str, str]]:
        """(kind, path) of every resource to read."""
        root = self._get(ROOT)
        if root is None:
            raise SourceError(f"{self.name}: no Redfish service root at {self.cfg.base_url}{ROOT}")
        found: list[tuple[str, str]] = []
        if link := self._link(root, "Chassis"):
            found += [("chassis", p) for p in self._members(link)]
        for svc, kinds, ctx in (
            ("PowerEquipment", POWER_EQUIPMENT, "PowerSubsystem"),
            ("ThermalEquipment", THERMAL_EQUIPMENT, "CoolingSubsystem"),
        ):
            link = self._link(root, svc)
            res = self._get(link) if link else None
            for kind in kinds if res else ():
                assert res is not None
                if coll := self._link(res, kind):
                    found += [(f"equipment:{ctx}", p) for p in self._members(coll)]
        return found

    def _poll_sync(self, now: datetime) -> PollResult:
        out = PollResult()
        if self.cfg.resources == ["auto"]:
            targets = self._discover()
        else:
            targets = []
            for p in self.cfg.resources:
                path = p if p.startswith("/") else f"{ROOT}/{p}"
                if "/Chassis/" in path:
                    targets.append(("chassis", path))
                elif "/ThermalEquipment/" in path:
                    targets.append(("equipment:CoolingSubsystem", path))
                else:
                    targets.append(("equipment:PowerSubsystem", path))
        for kind, path in targets:
            if kind == "chassis":
                self._chassis(path, now, out)
            else:
                self._equipment(path, kind.split(":", 1)[1], now, out)
        return out

    async def poll(self, now: datetime) -> PollResult:
        try:
            return await asyncio.to_thread(self._poll_sync, now)
        except SourceError:
            raise
        except Exception as e:  # connection refused, TLS, …: sushy raises requests' errors too
            raise SourceError(f"{self.name}: {type(e).__name__}: {e}") from None

    async def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
