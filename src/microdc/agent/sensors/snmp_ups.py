"""UPSes over SNMP (pysnmp 7, asyncio API): the standard UPS-MIB, RFC 1628 (1.3.6.1.2.1.33).

SNMP v1/v2c (community) or v3 with USM authPriv only: HMAC-SHA-2 authentication (RFC 7860) and AES
privacy (RFC 3826). MD5, SHA-1 and DES are not offered; a wrong key is a SourceError that names the user
and the setting to check.

| UPS-MIB object                        | reading (sensor id suffix)         | type, unit, context        |
|---------------------------------------|------------------------------------|----------------------------|
| upsOutputSource (.1.4.1)              | ``state``                          | UPSState, 1, PowerSupply   |
| upsEstimatedMinutesRemaining (.1.2.3) | ``runtime``                        | Runtime, min, Battery      |
| upsEstimatedChargeRemaining (.1.2.4)  | ``charge``                         | Percent, %, Battery        |
| upsBatteryVoltage (.1.2.5, 0.1 V)     | ``battery_voltage``                | Voltage, V, Battery        |
| upsBatteryTemperature (.1.2.7)        | ``battery_temp``                   | Temperature, Cel, Battery  |
| upsInputTruePower (.1.3.3.1.5.n)      | ``input_power`` (sum of lines)     | Power, W, ACInput          |
| upsInputVoltage (.1.3.3.1.3.n)        | ``input_voltage.<n>``              | Voltage, V, ACInput        |
| upsInputFrequency (.1.3.3.1.2.n, 0.1) | ``input_frequency``  (line 1)      | Frequency, Hz, ACInput     |
| upsOutputPower (.1.4.4.1.4.n)         | ``output_power`` (sum of lines)    | Power, W, ACOutput         |
| upsOutputPercentLoad (.1.4.4.1.5.n)   | ``load`` (max of lines)            | Percent, %, ACOutput       |

upsOutputSource maps to the control plane's UPSState: normal(3), booster(6), reducer(7) → 0 on line;
battery(5) → 1; bypass(4) → 2; none(2) → 3 fault (no output); other(1) → unknown.

**Unknown values.** Many UPS firmwares answer −1 (or 0) for what they do not know. −1 is always
unknown (no UPS-MIB gauge is negative except temperatures, which are read as they are). 0 minutes of
runtime or 0 % charge while ``upsBatteryStatus`` is normal(2) or unknown(1) is a placeholder, not an
empty battery, so it is unknown too; so are 0 V battery and 0 Hz. Unknown values produce no reading and
are counted (``PollResult.unknown`` → the ``sensor_values_unknown`` counter); a reading of an
absent OID (noSuchObject/noSuchInstance) is counted the same way.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from microdc.agent.config import AgentConfig, SnmpUpsSource
from microdc.agent.sensors.base import PollResult, SourceError

UPS = "1.3.6.1.2.1.33.1"
OID = {
    "battery_status": f"{UPS}.2.1.0",
    "minutes_remaining": f"{UPS}.2.3.0",
    "charge_remaining": f"{UPS}.2.4.0",
    "battery_voltage": f"{UPS}.2.5.0",
    "battery_temperature": f"{UPS}.2.7.0",
    "input_num_lines": f"{UPS}.3.2.0",
    "output_source": f"{UPS}.4.1.0",
    "output_num_lines": f"{UPS}.4.3.0",
}
INPUT_FREQ, INPUT_VOLT, INPUT_POWER = f"{UPS}.3.3.1.2", f"{UPS}.3.3.1.3", f"{UPS}.3.3.1.5"
OUTPUT_POWER, OUTPUT_LOAD = f"{UPS}.4.4.1.4", f"{UPS}.4.4.1.5"
OUTPUT_SOURCE_STATE = {3: 0, 6: 0, 7: 0, 5: 1, 4: 2, 2: 3}  # other(1) → unknown
BATTERY_UNKNOWN_OR_NORMAL = (1, 2)
MAX_LINES = 3
AUTH_PROTOCOLS = {
    "SHA224": "usmHMAC128SHA224AuthProtocol",
    "SHA256": "usmHMAC192SHA256AuthProtocol",
    "SHA384": "usmHMAC256SHA384AuthProtocol",
    "SHA512": "usmHMAC384SHA512AuthProtocol",
}
PRIV_PROTOCOLS = {
    "AES128": "usmAesCfb128Protocol",
    "AES192": "usmAesCfb192Protocol",
    "AES256": "usmAesCfb256Protocol",
}


def _int(v: Any) -> int | None:
    """An SNMP value as int, or None for noSuchObject/noSuchInstance/endOfMibView/non-numbers."""
    name = type(v).__name__
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class SnmpUpsPoller:
    def __init__(self, cfg: SnmpUpsSource, agent: AgentConfig):
        self.cfg = cfg
        self.name = cfg.name
        self.interval_s = cfg.interval_s
        self.data_class = cfg.data_class
        self.prefix = cfg.sensor_prefix or cfg.name
        self._engine: Any = None

    def _auth(self) -> Any:
        """CommunityData for v1/v2c, UsmUserData (authPriv, SHA-2 + AES) for v3."""
        from pysnmp.hlapi.v3arch import asyncio as hl

        v3 = self.cfg.v3
        if v3 is None:
            return hl.CommunityData(self.cfg.community, mpModel=0 if self.cfg.version == "1" else 1)
        return hl.UsmUserData(
            v3.user,
            authKey=v3.auth_key,
            privKey=v3.priv_key,
            authProtocol=getattr(hl, AUTH_PROTOCOLS[v3.auth_protocol]),
            privProtocol=getattr(hl, PRIV_PROTOCOLS[v3.priv_protocol]),
        )

    async def _get(self, oids: list[str]) -> dict[str, int | None]:
        from pysnmp.hlapi.v3arch.asyncio import (
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            get_cmd,
        )

        if self._engine is None:
            self._engine = SnmpEngine()
        context = ContextData(contextName=self.cfg.v3.context_name) if self.cfg.v3 else ContextData()
        try:
            target = await UdpTransportTarget.create(
                (self.cfg.host, self.cfg.port), timeout=self.cfg.timeout_s, retries=self.cfg.retries
            )
            err_ind, err_status, err_index, var_binds = await get_cmd(
                self._engine,
                self._auth(),
                target,
                context,
                *[ObjectType(ObjectIdentity(o)) for o in oids],
            )
        except Exception as e:
            raise SourceError(f"{self.name}: SNMP {type(e).__name__}: {e}") from None
        if err_ind:
            raise SourceError(f"{self.name}: SNMP {self._explain(err_ind)}")
        if err_status:
            raise SourceError(f"{self.name}: SNMP error {err_status.prettyPrint()} at {err_index}")
        return {str(oid): _int(val) for oid, val in var_binds}

    def _explain(self, err_ind: Any) -> str:
        """pysnmp's USM error indications, in words that say which setting to check."""
        v3 = self.cfg.v3
        name = type(err_ind).__name__ if not isinstance(err_ind, str) else err_ind
        if v3 is not None:
            who = f"SNMPv3 user {v3.user!r} at {self.cfg.host}:{self.cfg.port}"
            hints = {
                "WrongDigest": f"authentication failed for {who}: wrong auth_key or auth_protocol "
                f"({v3.auth_protocol})",
                "UnknownUserName": f"{who} is unknown to the device",
                "DecryptionError": f"decryption failed for {who}: wrong priv_key or priv_protocol "
                f"({v3.priv_protocol})",
                "UnsupportedSecurityLevel": f"{who} does not support authPriv (SHA-2 + AES)",
                "RequestTimedOut": f"no answer from {who}: host/port wrong, or a wrong priv_key "
                "(the device drops what it cannot decrypt)",
            }
            for key, text in hints.items():
                if key.lower() in str(name).lower() or key.lower() in str(err_ind).replace(" ", "").lower():
                    return f"{text} ({err_ind})"
        return str(err_ind)

    async def poll(self, now: datetime) -> PollResult:
        out = PollResult()
        v = await self._get(list(OID.values()))
        get = {name: v.get(oid) for name, oid in OID.items()}
        n_in = max(1, min(get["input_num_lines"] or 1, MAX_LINES))
        n_out = max(1, min(get["output_num_lines"] or 1, MAX_LINES))
        lines = [f"{c}.{i}" for c in (INPUT_FREQ, INPUT_VOLT, INPUT_POWER) for i in range(1, n_in + 1)]
        lines += [f"{c}.{i}" for c in (OUTPUT_POWER, OUTPUT_LOAD) for i in range(1, n_out + 1)]
        lv = await self._get(lines)
        p, ts = self.prefix, now
        battery = get["battery_status"]

        def known(x: int | None, *, zero_unknown: bool = False) -> int | None:
            if x is None or x == -1 or (zero_unknown and x == 0):
                return None
            return x

        src = known(get["output_source"])
        out.add(
            f"{p}.state", "UPSState", "1", "PowerSupply", ts, OUTPUT_SOURCE_STATE.get(src) if src else None
        )
        placeholder = battery in BATTERY_UNKNOWN_OR_NORMAL or battery is None
        out.add(
            f"{p}.runtime", "Runtime", "min", "Battery", ts,
            known(get["minutes_remaining"], zero_unknown=placeholder),
        )  # fmt: skip
        out.add(
            f"{p}.charge",
            "Percent",
            "%",
            "Battery",
            ts,
            known(get["charge_remaining"], zero_unknown=placeholder),
        )
        bv = known(get["battery_voltage"], zero_unknown=True)
        out.add(f"{p}.battery_voltage", "Voltage", "V", "Battery", ts, bv / 10.0 if bv is not None else None)
        bt = get["battery_temperature"]
        out.add(f"{p}.battery_temp", "Temperature", "Cel", "Battery", ts, bt)

        def line_vals(col: str, n: int) -> list[int | None]:
            return [known(lv.get(f"{col}.{i}")) for i in range(1, n + 1)]

        def total(vals: list[int | None]) -> float | None:
            got = [x for x in vals if x is not None]
            out.unknown += len(vals) - len(got) - (1 if not got else 0)
            return float(sum(got)) if got else None

        out.add(f"{p}.input_power", "Power", "W", "ACInput", ts, total(line_vals(INPUT_POWER, n_in)))
        for i, volts in enumerate(line_vals(INPUT_VOLT, n_in), start=1):
            # 0 V on the input is real (a mains failure), so only −1/absent are unknown here
            out.add(f"{p}.input_voltage.{i}", "Voltage", "V", "ACInput", ts, volts)
        freq = known(lv.get(f"{INPUT_FREQ}.1"), zero_unknown=src != 5)
        out.add(
            f"{p}.input_frequency",
            "Frequency",
            "Hz",
            "ACInput",
            ts,
            freq / 10.0 if freq is not None else None,
        )
        out.add(f"{p}.output_power", "Power", "W", "ACOutput", ts, total(line_vals(OUTPUT_POWER, n_out)))
        loads = [x for x in line_vals(OUTPUT_LOAD, n_out) if x is not None]
        out.add(f"{p}.load", "Percent", "%", "ACOutput", ts, float(max(loads)) if loads else None)
        return out

    async def close(self) -> None:
        if self._engine is not None:
            with contextlib.suppress(Exception):
                self._engine.close_dispatcher()
            self._engine = None
