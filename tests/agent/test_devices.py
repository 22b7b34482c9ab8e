"""Sensors against the real emulators: sushy-emulator and sushy-static (Redfish), snmpsim (UPS-MIB),
pymodbus's TCP server, file contacts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from microdc.agent.config import (
    AgentConfigError,
    ContactsSource,
    ModbusSource,
    RedfishSource,
    SnmpUpsSource,
    parse_config,
)
from microdc.agent.sensors.base import PollResult, SourceError
from microdc.agent.sensors.contacts import ContactsPoller
from microdc.agent.sensors.modbus import ModbusPoller, encode
from microdc.agent.sensors.redfish import RedfishPoller
from microdc.agent.sensors.snmp_ups import SnmpUpsPoller
from microdc.control.devserver import free_port

from .emulators import ModbusServer, snmpsim, sushy_emulator, sushy_static

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
CFG = parse_config({"policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"}})


def values(res: PollResult) -> dict[str, tuple[str, str, str, float]]:
    return {r.sensor_id: (r.reading_type, r.unit, r.physical_context, r.value) for r in res.readings}


@pytest.mark.services
def test_redfish_static_mockup_servers_pdus_and_cdus(tmp_path: Path) -> None:
    proc, url = sushy_static(tmp_path)
    try:
        src = RedfishPoller(RedfishSource(kind="redfish", name="rf", base_url=url), CFG)
        res = asyncio.run(src.poll(NOW))
        v = values(res)
        assert v["rf.srv1.temp.0"] == ("Temperature", "Cel", "Intake", 23.5)
        assert v["rf.srv1.temp.1"][3] == 61 and "rf.srv1.temp.2" not in v  # absent member skipped
        assert v["rf.srv1.power.0"] == ("Power", "W", "PowerSupply", 344)
        assert v["rf.srv1.Humidity"] == ("Humidity", "%", "Intake", 41.0)
        assert v["rf.srv1.fan.0"] == ("Percent", "%", "Fan", 45)
        assert v["rf.pdu1.PowerWatts"] == ("Power", "W", "PowerSubsystem", 2870.0)
        assert v["rf.pdu1.EnergykWh"][:2] == ("EnergykWh", "kW.h")
        assert v["rf.pdu1.VoltageL1"] == ("Voltage", "V", "ACInput", 229.8)
        assert v["rf.pdu1.CurrentL1"] == ("Current", "A", "ACInput", 12.5)
        assert v["rf.cdu1.TemperatureCelsius"] == ("Temperature", "Cel", "LiquidInlet", 18.2)
        assert v["rf.cdu1.PowerWatts"][3] == 950
        assert not res.invalid
    finally:
        proc.stop()


@pytest.mark.services
def test_redfish_dynamic_emulator_thermal(tmp_path: Path) -> None:
    proc, url = sushy_emulator(tmp_path)
    try:
        src = RedfishPoller(RedfishSource(kind="redfish", name="bmc", base_url=url), CFG)
        res = asyncio.run(src.poll(NOW))
        intake = [
            r for r in res.readings if r.physical_context == "Intake" and r.reading_type == "Temperature"
        ]
        assert intake and intake[0].value == 25  # sushy-emulator's chassis intake temperature
    finally:
        proc.stop()
    with pytest.raises(SourceError):
        asyncio.run(
            RedfishPoller(RedfishSource(kind="redfish", name="bmc", base_url=url, timeout_s=1), CFG).poll(NOW)
        )


@pytest.mark.services
def test_snmp_ups_mib_and_unknown_values(tmp_path: Path) -> None:
    proc, port = snmpsim(tmp_path, ["ups", "ups-unknown", "ups-onbattery"])
    try:

        def poll(community: str) -> PollResult:
            cfg = SnmpUpsSource(kind="snmp_ups", name="ups", host="127.0.0.1", port=port, community=community)
            src = SnmpUpsPoller(cfg, CFG)
            try:
                return asyncio.run(src.poll(NOW))
            finally:
                asyncio.run(src.close())

        ok = poll("ups")
        v = values(ok)
        assert v["ups.state"] == ("UPSState", "1", "PowerSupply", 0)
        assert v["ups.runtime"] == ("Runtime", "min", "Battery", 42)
        assert v["ups.charge"][3] == 97 and v["ups.battery_voltage"][3] == 54.5
        assert v["ups.input_power"] == ("Power", "W", "ACInput", 3650)
        assert v["ups.output_power"] == ("Power", "W", "ACOutput", 3450)
        assert v["ups.input_frequency"][3] == 50.0 and v["ups.load"][3] == 35
        assert ok.unknown == 0

        unk = poll("ups-unknown")
        v = values(unk)
        # −1 minutes, 0 % charge and 0 V while the battery is "normal", −1 W input, output source other(1),
        # a missing load OID: all unknown (None), counted, no reading
        for sid in (
            "ups.runtime",
            "ups.charge",
            "ups.battery_voltage",
            "ups.input_power",
            "ups.state",
            "ups.load",
        ):
            assert sid not in v
        assert unk.unknown >= 6
        assert v["ups.output_power"][3] == 3450

        bat = poll("ups-onbattery")
        v = values(bat)
        assert v["ups.state"][3] == 1 and v["ups.runtime"][3] == 4 and v["ups.input_voltage.1"][3] == 0
    finally:
        proc.stop()
    with pytest.raises(SourceError):
        cfg = SnmpUpsSource(
            kind="snmp_ups", name="ups", host="127.0.0.1", port=port, timeout_s=0.3, retries=0
        )
        asyncio.run(SnmpUpsPoller(cfg, CFG).poll(NOW))


@pytest.mark.services
def test_redfish_over_https_verifies_the_bmc_certificate(tmp_path: Path) -> None:
    """sushy-emulator over HTTPS with a certificate of a CA minted here: trusted through ca_file, refused
    (with the reason) without it or with another CA."""
    from microdc.protocol import pki

    ca = pki.init_ca(tmp_path / "ca", "site BMC CA")
    key = pki.new_key()
    pki.write_private(tmp_path / "bmc.key", pki.key_pem(key))
    pki.write_public(tmp_path / "bmc.pem", pki.cert_pem(pki.issue_server(ca, ["127.0.0.1"], key)))
    pki.init_ca(tmp_path / "other", "another CA")
    proc, url = sushy_emulator(
        tmp_path, (tmp_path / "bmc.pem", tmp_path / "bmc.key", tmp_path / "ca" / "ca.pem")
    )
    assert url.startswith("https://")

    def poll(**kw: object) -> PollResult:
        src = RedfishSource.model_validate(
            {"kind": "redfish", "name": "bmc", "base_url": url, "timeout_s": 3, **kw}
        )
        return asyncio.run(RedfishPoller(src, CFG).poll(NOW))

    try:
        res = poll(ca_file=str(tmp_path / "ca" / "ca.pem"))
        assert any(r.reading_type == "Temperature" for r in res.readings)
        for kw, trust in (({}, "system's CAs"), ({"ca_file": str(tmp_path / "other" / "ca.pem")}, "other")):
            with pytest.raises(SourceError) as ei:
                poll(**kw)
            assert "TLS: the BMC's certificate is not trusted" in str(ei.value) and trust in str(ei.value)
    finally:
        proc.stop()


def test_redfish_ca_file_must_exist_and_needs_verification(tmp_path: Path) -> None:
    data = {
        "policy": {"jurisdiction": "DE", "upstream_jurisdiction": "DE"},
        "sensors": [{"kind": "redfish", "name": "bmc", "base_url": "https://b", "ca_file": "missing.pem"}],
    }
    with pytest.raises(AgentConfigError) as ei:
        parse_config(data, file="agent.yaml", base_dir=tmp_path)
    assert any(p.field == "sensors.0.ca_file" and "not found" in p.message for p in ei.value.problems)
    data["sensors"][0]["verify_tls"] = False  # type: ignore[index]
    with pytest.raises(AgentConfigError) as ei:
        parse_config(data, file="agent.yaml", base_dir=tmp_path)
    assert any("verify_tls" in p.message for p in ei.value.problems)


V3_USER, V3_AUTH, V3_PRIV = "microdc", "auth-secret-8", "priv-secret-8"


@pytest.mark.services
def test_snmp_v3_authpriv_sha256_aes(tmp_path: Path) -> None:
    """SNMPv3 with SHA-256 authentication and AES-128 privacy; wrong keys fail with a clear error."""
    v3_args = ["--v3-user", V3_USER, "--v3-auth-key", V3_AUTH, "--v3-auth-proto", "SHA256",
               "--v3-priv-key", V3_PRIV, "--v3-priv-proto", "AES"]  # fmt: skip
    proc, port = snmpsim(tmp_path, ["ups"], v3=v3_args)

    def source(**v3: str) -> SnmpUpsSource:
        block = {"user": V3_USER, "auth_key": V3_AUTH, "priv_key": V3_PRIV, "context_name": "ups", **v3}
        return SnmpUpsSource.model_validate(
            {"kind": "snmp_ups", "name": "ups", "host": "127.0.0.1", "port": port, "version": "3",
             "v3": block, "timeout_s": 1.0, "retries": 0}
        )  # fmt: skip

    try:
        res = asyncio.run(SnmpUpsPoller(source(), CFG).poll(NOW))
        v = values(res)
        assert v["ups.output_power"][3] > 0 and "ups.state" in v
        with pytest.raises(SourceError) as ei:
            asyncio.run(SnmpUpsPoller(source(auth_key="not-the-key"), CFG).poll(NOW))
        assert "authentication failed" in str(ei.value) and V3_USER in str(ei.value)
        with pytest.raises(SourceError) as ei:
            asyncio.run(SnmpUpsPoller(source(auth_protocol="SHA512"), CFG).poll(NOW))
        assert "auth_protocol" in str(ei.value)
        with pytest.raises(SourceError) as ei:
            asyncio.run(SnmpUpsPoller(source(priv_key="not-the-priv"), CFG).poll(NOW))
        assert "priv_key" in str(ei.value)
        with pytest.raises(SourceError) as ei:
            asyncio.run(SnmpUpsPoller(source(user="intruder"), CFG).poll(NOW))
        assert "intruder" in str(ei.value)
    finally:
        proc.stop()


def test_snmp_v3_config_is_authpriv_with_sha2_and_aes() -> None:
    base = {"kind": "snmp_ups", "name": "u", "host": "h", "version": "3"}
    with pytest.raises(ValueError, match="v3"):
        SnmpUpsSource.model_validate(base)
    with pytest.raises(ValueError, match="auth_protocol"):
        SnmpUpsSource.model_validate(
            base
            | {"v3": {"user": "u", "auth_key": "12345678", "priv_key": "12345678", "auth_protocol": "MD5"}}
        )
    with pytest.raises(ValueError, match="priv_key"):
        SnmpUpsSource.model_validate(base | {"v3": {"user": "u", "auth_key": "12345678"}})


MODBUS_MAP = [
    {
        "sensor_id": "crac.supply",
        "address": 0,
        "type": "int16",
        "scale": 0.1,
        "reading_type": "Temperature",
        "unit": "Cel",
        "physical_context": "Intake",
    },
    {
        "sensor_id": "crac.power",
        "address": 2,
        "type": "float32",
        "word_order": "little",
        "reading_type": "Power",
        "unit": "W",
        "physical_context": "CoolingSubsystem",
    },
    {
        "sensor_id": "meter.energy",
        "address": 10,
        "table": "input",
        "type": "uint32",
        "scale": 0.01,
        "reading_type": "EnergykWh",
        "unit": "kW.h",
        "physical_context": "ACUtilityInput",
    },
    {
        "sensor_id": "door.front",
        "address": 0,
        "table": "discrete",
        "reading_type": "Door",
        "unit": "1",
        "physical_context": "Door",
        "invert": True,
    },
    {"sensor_id": "leak.floor", "address": 1, "table": "discrete", "reading_type": "Leak", "unit": "1"},
]


def _modbus_poll(values: dict[str, dict[int, list[int]]]) -> dict[str, tuple[str, str, str, float]]:
    srv = ModbusServer(values).start()
    try:
        cfg = ModbusSource.model_validate(
            {"kind": "modbus", "name": "crac", "host": "127.0.0.1", "port": srv.port, "registers": MODBUS_MAP}
        )
        poller = ModbusPoller(cfg, CFG)

        async def go() -> PollResult:
            try:
                return await poller.poll(NOW)
            finally:
                await poller.close()

        return values_of(asyncio.run(go()))
    finally:
        srv.stop()


values_of = values


@pytest.mark.services
def test_modbus_register_map_against_pymodbus_server() -> None:
    cfg = ModbusSource.model_validate({"kind": "modbus", "name": "x", "host": "h", "registers": MODBUS_MAP})
    pts = {p.sensor_id: p for p in cfg.registers}
    regs = {
        "holding": {0: encode(-5.5, pts["crac.supply"]), 2: encode(1234.5, pts["crac.power"])},
        "input": {10: encode(98765.43, pts["meter.energy"])},
    }
    v = _modbus_poll({**regs, "discrete": {0: [1, 0]}})  # normally-closed door contact closed; no leak
    assert v["crac.supply"][3] == pytest.approx(-5.5)
    assert v["crac.power"] == ("Power", "W", "CoolingSubsystem", 1234.5)
    assert v["meter.energy"][3] == pytest.approx(98765.43)
    assert v["door.front"][3] == 0 and v["leak.floor"][3] == 0
    v = _modbus_poll({**regs, "discrete": {0: [0, 1]}})  # door opened, leak detected
    assert v["door.front"][3] == 1 and v["leak.floor"][3] == 1
    with pytest.raises(SourceError):  # nobody listening
        dead = cfg.model_copy(update={"host": "127.0.0.1", "port": free_port(), "timeout_s": 0.5})
        asyncio.run(ModbusPoller(dead, CFG).poll(NOW))


def test_file_contacts(tmp_path: Path) -> None:
    (tmp_path / "door").write_text("1\n")
    (tmp_path / "smoke").write_text("0")
    cfg = ContactsSource.model_validate(
        {
            "kind": "contacts",
            "name": "io",
            "inputs": [
                {"sensor_id": "door", "path": "door", "reading_type": "Door", "active_low": True},
                {"sensor_id": "smoke", "path": "smoke", "reading_type": "Smoke"},
                {"sensor_id": "leak", "path": "missing", "reading_type": "Leak"},
            ],
        }
    )
    res = asyncio.run(ContactsPoller(cfg, CFG, tmp_path).poll(NOW))
    assert values(res) == {"door": ("Door", "1", "Door", 0.0), "smoke": ("Smoke", "1", "Room", 0.0)}
    assert len(res.invalid) == 1 and "missing" in res.invalid[0]
    (tmp_path / "door").write_text("0")
    (tmp_path / "smoke").write_text("garbage")
    res = asyncio.run(ContactsPoller(cfg, CFG, tmp_path).poll(NOW))
    assert values(res)["door"][3] == 1.0 and len(res.invalid) == 2
