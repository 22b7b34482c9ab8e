from __future__ import annotations

from pathlib import Path

import pytest

from microdc.agent.config import AgentConfigError, ModbusSource, load_config

GOOD = """\
site_id: munich-1
policy: {jurisdiction: DE, upstream_jurisdiction: DE}
sensors:
  - {kind: simulated, name: twin}
  - kind: modbus
    name: crac
    host: 127.0.0.1
    register_map: crac.yaml
"""

MAP = """\
registers:
  - {sensor_id: crac.supply, address: 0, type: int16, scale: 0.1, reading_type: Temperature, unit: Cel,
     physical_context: Intake}
"""


def test_valid_config_with_register_map(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(GOOD)
    (tmp_path / "crac.yaml").write_text(MAP)
    cfg = load_config(tmp_path / "agent.yaml")
    assert cfg.site_id == "munich-1"
    modbus = cfg.sensors[1]
    assert isinstance(modbus, ModbusSource)
    assert modbus.registers[0].sensor_id == "crac.supply"
    assert cfg.uplink.compression == "auto"


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        "site_id: s1\n"
        "policy: {jurisdiction: DE, upstream_jurisdiction: DE}\n"
        "uplink:\n"
        "  budget_bytes_per_sec: 10\n"  # line 4: misspelt
        "sensors:\n"
        "  - {kind: teleport, name: x}\n"  # line 6: unknown kind
        "  - {kind: snmp_ups, name: ups}\n"  # line 7: host missing
    )
    with pytest.raises(AgentConfigError) as e:
        load_config(tmp_path / "agent.yaml")
    text = str(e.value)
    probs = {(p.line, p.field): p.message for p in e.value.problems}
    assert (4, "uplink.budget_bytes_per_sec") in probs and "unknown field" in probs[
        (4, "uplink.budget_bytes_per_sec")
    ]
    assert any(line == 6 and "teleport" in msg for (line, _f), msg in probs.items()), text
    assert (7, "sensors.1.host") in probs, text
    assert str(tmp_path / "agent.yaml") in text


def test_register_map_problems_point_into_the_map_file(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(GOOD)
    (tmp_path / "crac.yaml").write_text(
        "registers:\n  - {sensor_id: a, address: 0, type: int64, reading_type: Temperature, unit: Cel}\n"
    )
    with pytest.raises(AgentConfigError) as e:
        load_config(tmp_path / "agent.yaml")
    (p,) = e.value.problems
    assert p.file.endswith("crac.yaml") and p.line == 2 and p.field == "registers.0.type"


def test_missing_register_map_and_unknown_data_class(tmp_path: Path) -> None:
    (tmp_path / "agent.yaml").write_text(
        GOOD.replace("{kind: simulated, name: twin}", "{kind: simulated, name: twin, data_class: secret}")
    )
    with pytest.raises(AgentConfigError) as e:
        load_config(tmp_path / "agent.yaml")
    msgs = [str(p) for p in e.value.problems]
    assert any("register map not found" in m and ":8 " in m for m in msgs), msgs
    assert any("unknown data class 'secret'" in m and "sensors.0.data_class" in m for m in msgs), msgs


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    bad = "site_id: munich-1: oops"  # a second ':' on one line: "mapping values are not allowed here"
    text = GOOD.replace("site_id: munich-1", bad)
    (tmp_path / "agent.yaml").write_text(text)
    with pytest.raises(AgentConfigError) as e:
        load_config(tmp_path / "agent.yaml")
    (p,) = e.value.problems
    assert p.file.endswith("agent.yaml")
    assert p.line == text.splitlines().index(bad) + 1  # the line holding the error, not just any number
