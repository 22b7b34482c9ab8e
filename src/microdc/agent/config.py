"""agent.yaml: the site agent's configuration, validated with every problem named by file, line and field.

Errors are collected like `microdc.model.loader` does (`AgentConfigError.problems` are
`microdc.model.Problem`s), so an installer fixes a file in one pass. Modbus register maps may live in
their own YAML file (`register_map: cooling.yaml`, relative to agent.yaml) and are reported the same way.

Minimal file::

    site_id: munich-1
    policy: {jurisdiction: DE, upstream_jurisdiction: DE}
    sensors:
      - {kind: simulated, name: twin, it_kw: 8}

The full schema, with defaults, is documented in docs/agent.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from microdc.model.errors import Problem
from microdc.model.jurisdiction import Jurisdiction
from microdc.model.policies import DataClassPolicy
from microdc.model.yaml_source import SourceMap, YamlSyntaxError, load_yaml_with_lines
from microdc.protocol.vocab import PhysicalContext, ReadingType

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", min_length=1, max_length=64)]
SensorId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$", min_length=1, max_length=128)]
Pos = Annotated[float, Field(gt=0)]
NonNeg = Annotated[float, Field(ge=0)]


class AgentConfigError(ValueError):
    """agent.yaml (or a register map it names) has problems; carries all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- sensors -------------------------------------------------------------------------------------


class SourceBase(Strict):
    name: Name
    interval_s: Pos | None = Field(None, description="poll period; default intervals.poll_s")
    data_class: str | None = Field(None, description="default: policy.facility_data_class")
    enabled: bool = True


class RedfishSource(SourceBase):
    kind: Literal["redfish"]
    base_url: str = Field(description="e.g. https://bmc-1.site.local (the service root is /redfish/v1)")
    username: str | None = None
    password: str | None = None
    verify_tls: bool = Field(
        True, description="verify the BMC's HTTPS certificate (never turn off in the field)"
    )
    ca_file: str | None = Field(
        None, description="PEM CA bundle that signs the BMC's certificate (default: the system's CAs)"
    )
    timeout_s: Pos = 10.0
    resources: list[str] = Field(
        default_factory=lambda: ["auto"],
        description="'auto' (every chassis' Thermal/Power/Sensors, PowerEquipment and ThermalEquipment) "
        "or explicit resource paths",
    )
    sensor_prefix: str = Field("", description="prefix of sensor ids; default the source name")

    @model_validator(mode="after")
    def _ca_needs_verify(self) -> RedfishSource:
        if self.ca_file and not self.verify_tls:
            raise ValueError("ca_file is set but verify_tls is false: the CA would never be checked")
        return self


class SnmpV3(Strict):
    """SNMPv3 USM, always authPriv: SHA-2 authentication and AES privacy (RFC 7860, RFC 3826)."""

    user: Annotated[str, Field(min_length=1, max_length=32)]
    auth_protocol: Literal["SHA224", "SHA256", "SHA384", "SHA512"] = "SHA256"
    auth_key: Annotated[str, Field(min_length=8, description="passphrase (at least 8 characters)")]
    priv_protocol: Literal["AES128", "AES192", "AES256"] = "AES128"
    priv_key: Annotated[str, Field(min_length=8, description="passphrase (at least 8 characters)")]
    context_name: str = Field("", description="SNMPv3 context (some PDUs/UPS cards need one)")


class SnmpUpsSource(SourceBase):
    kind: Literal["snmp_ups"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 161
    community: str = "public"
    version: Literal["1", "2c", "3"] = "2c"
    v3: SnmpV3 | None = Field(None, description="with version '3': user, SHA-2 auth and AES priv keys")
    timeout_s: Pos = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    sensor_prefix: str = ""

    @model_validator(mode="after")
    def _v3_settings(self) -> SnmpUpsSource:
        if self.version == "3" and self.v3 is None:
            raise ValueError("version '3' needs a `v3:` block (user, auth_key, priv_key)")
        if self.version != "3" and self.v3 is not None:
            raise ValueError(f"`v3:` is set but version is {self.version!r}; set version: '3'")
        return self


RegisterType = Literal["int16", "uint16", "int32", "uint32", "float32", "bool"]


class ModbusPoint(Strict):
    sensor_id: SensorId
    address: Annotated[int, Field(ge=0, le=65535)]
    table: Literal["holding", "input", "coil", "discrete"] = "holding"
    type: RegisterType = "uint16"
    scale: float = 1.0
    offset: float = 0.0
    reading_type: ReadingType
    unit: str
    physical_context: PhysicalContext = PhysicalContext.ROOM
    byte_order: Literal["big", "little"] = "big"
    word_order: Literal["big", "little"] = "big"
    invert: bool = Field(False, description="bool points: 1 means normal (normally-closed contacts)")

    @model_validator(mode="after")
    def _bits_are_bool(self) -> ModbusPoint:
        if self.table in ("coil", "discrete") and self.type != "bool":
            self.type = "bool"
        if self.type == "bool" and self.table in ("holding", "input"):
            raise ValueError("type bool needs table coil or discrete")
        return self


class ModbusSource(SourceBase):
    kind: Literal["modbus"]
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    device_id: Annotated[int, Field(ge=0, le=255)] = 1
    timeout_s: Pos = 3.0
    registers: list[ModbusPoint] = Field(default_factory=list)
    register_map: str | None = Field(None, description="YAML file with a `registers:` list (relative path)")

    @model_validator(mode="after")
    def _has_points(self) -> ModbusSource:
        if not self.registers and not self.register_map:
            raise ValueError("give `registers` or `register_map`")
        return self


class ContactInput(Strict):
    sensor_id: SensorId
    path: str = Field(description="file holding 0/1 (sysfs GPIO `value` files, or any text file)")
    reading_type: Literal["Door", "Smoke", "Leak", "Intrusion"]
    physical_context: PhysicalContext | None = None
    active_low: bool = Field(False, description="0 in the file means 'active' (open / detected)")


class ContactsSource(SourceBase):
    kind: Literal["contacts"]
    inputs: list[ContactInput] = Field(min_length=1)


class SimulatedSource(SourceBase):
    kind: Literal["simulated"]
    scenario: str | None = Field(None, description="scenario file whose site, module and weather drive it")
    site: str | None = Field(None, description="scenario site id (default: the agent's site_id)")
    module: str | None = Field(None, description="catalog module (default: the site's, else the first)")
    servers: Annotated[int, Field(ge=1, le=10000)] = 4
    idle_w: NonNeg = 150.0
    peak_w: Pos = 450.0
    it_capacity_kw: Pos = 10.0
    ups_energy_kwh: Pos = 5.0
    outdoor_c: float | None = Field(None, description="constant outdoor temperature (else weather/diurnal)")
    setpoint_c: float = 22.0
    noise: NonNeg = Field(0.05, description="relative noise on power, K on temperatures")
    seed: int = 0
    time_scale: Pos = Field(1.0, description="simulated seconds per wall second")
    door: bool = True
    ups: bool = True


SourceConfig = Annotated[
    RedfishSource | SnmpUpsSource | ModbusSource | ContactsSource | SimulatedSource,
    Field(discriminator="kind"),
]


# --- policy, uplink, storage, alarms, mqtt ------------------------------------------------------


class PolicyConfig(Strict):
    jurisdiction: str = Field(description="where this site is: the origin of the data it makes")
    upstream_jurisdiction: str = Field(description="where the control plane keeps what is synced")
    scenario: str | None = Field(None, description="take the jurisdiction tree and data classes from here")
    jurisdictions: list[Jurisdiction] = Field(default_factory=list, description="inline tree")
    data_classes: dict[str, DataClassPolicy] = Field(default_factory=dict, description="merged over scenario")
    facility_data_class: str = Field("operational", description="class of facility sensor readings")
    aggregate_window_s: Pos = 300.0
    min_group_size: Annotated[int, Field(ge=1)] = Field(
        3, description="aggregates over fewer distinct sensors are withheld (k-anonymity)"
    )


class BackoffConfig(Strict):
    initial_s: Pos = 1.0
    max_s: Pos = 300.0
    multiplier: Annotated[float, Field(ge=1.0)] = 2.0
    seed: int | None = None


class UplinkConfig(Strict):
    compression: Literal["auto", "gzip", "zstd", "none"] = "auto"
    budget_bytes_per_s: Pos = Field(4096.0, description="token bucket refill: sustained upstream bytes/s")
    burst_bytes: Annotated[int, Field(ge=1024)] = 262_144
    max_batch_readings: Annotated[int, Field(ge=1, le=5000)] = 1000
    flush_s: Pos = Field(30.0, description="send queued telemetry at least this often")
    report_every_s: NonNeg = Field(300.0, description="resend an unchanged value after this long (0: always)")
    deadband: dict[str, NonNeg] = Field(
        default_factory=lambda: {
            "Temperature": 0.2,
            "Humidity": 1.0,
            "Voltage": 2.0,
            "Frequency": 0.05,
            "Percent": 1.0,
            "Runtime": 1.0,
        },
        description="absolute change that counts as new, per reading type",
    )
    deadband_relative: dict[str, NonNeg] = Field(
        default_factory=lambda: {"Power": 0.02, "Current": 0.02},
        description="relative change that counts as new, per reading type",
    )
    timeout_s: Pos = 15.0
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)


class StorageConfig(Strict):
    max_queue_bytes: Annotated[int, Field(ge=4096)] = 64 * 1024 * 1024
    downsample_bucket_s: Pos = 300.0
    raw_retention_days: Pos = 30.0
    raw_max_bytes: Annotated[int, Field(ge=4096)] = 512 * 1024 * 1024


class MaintenanceWindowConfig(Strict):
    start: Any
    end: Any


class AlarmsConfig(Strict):
    thresholds: dict[str, float | bool] = Field(
        default_factory=dict, description="overrides of microdc.protocol.alarm_rules.Thresholds"
    )
    maintenance: list[MaintenanceWindowConfig] = Field(default_factory=list)


class TopicRule(Strict):
    filter: str = Field(description="MQTT topic filter, e.g. 'mdc/munich-1/meters/#'")
    data_class: str | None = None
    aggregate_group: str | None = Field(None, description="aggregate these sensors together")


class MqttConfig(Strict):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(None, description="default microdc-agent-<site>; stable → durable session")
    topics: list[TopicRule] = Field(default_factory=list, description="default: mdc/<site>/#")
    session_expiry_s: Annotated[int, Field(ge=0)] = 7 * 86400
    qos: Literal[0, 1, 2] = 1


class TlsConfig(Strict):
    """TLS to the control plane (docs/agent.md, docs/security.md)."""

    ca_file: str | None = Field(
        None, description="PEM CA bundle that signs the control plane's certificate (only it is trusted)"
    )
    pins: list[str] = Field(
        default_factory=list,
        description="accept only these server keys/certs: 'sha256//BASE64' (SPKI) or 'cert-sha256:HEX'",
    )
    client_cert: str | None = Field(None, description="PEM client certificate presented (mutual TLS)")
    client_key: str | None = Field(None, description="its private key (0600)")
    request_certificate: bool = Field(
        True, description="make a key and send a CSR at enrollment (and near expiry) to get client_cert"
    )
    renew_before_days: Annotated[float, Field(ge=0)] = Field(30.0, description="renew client_cert this early")
    key_type: Literal["ec", "ed25519"] = "ec"

    @model_validator(mode="after")
    def _check(self) -> TlsConfig:
        from microdc.protocol.pki import PkiError, parse_pin

        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("give both client_cert and client_key, or neither")
        for pin in self.pins:
            try:
                parse_pin(pin)
            except PkiError as e:
                raise ValueError(str(e)) from None
        return self

    @property
    def configured(self) -> bool:
        return bool(self.ca_file or self.pins or self.client_cert)


class Intervals(Strict):
    poll_s: Pos = 10.0
    heartbeat_s: Pos = Field(30.0, description="until the server says otherwise")
    desired_s: Pos = Field(300.0, description="fallback poll; heartbeats announce new versions")
    housekeeping_s: Pos = 30.0
    supervise_s: Pos = Field(1.0, description="how often workloads are listed, probed and restarted")
    status_s: Pos = Field(30.0, description="report workload status at least this often (and on change)")


class PodmanConfig(Strict):
    binary: str = "podman"
    runtime: str = Field("runc", description="OCI runtime passed as --runtime")
    cgroup_manager: Literal["cgroupfs", "systemd"] = "cgroupfs"
    containers_conf: str | None = Field(
        None, description="containers.conf for podman (CONTAINERS_CONF), e.g. deploy/podman/containers.conf"
    )
    network: str = Field("host", description="podman --network; health checks probe 127.0.0.1")
    timeout_s: Pos = Field(120.0, description="longest a podman command may take")


class ExecutorConfig(Strict):
    kind: Literal["process", "podman"] = Field(
        "process", description="podman (containers) or process (plain process groups, no container engine)"
    )
    work_dir: str = Field(
        "agent-state/workloads", description="volumes, logs and working dirs (relative to agent.yaml)"
    )
    podman: PodmanConfig = Field(default_factory=PodmanConfig)


class AgentConfig(Strict):
    site_id: Name | None = Field(None, description="learned at enrollment; if set, must match")
    server: str | None = None
    state_path: str = Field("agent-state/agent.db", description="SQLite file (relative to agent.yaml)")
    enroll_token_file: str | None = Field(
        None, description="re-enroll with a token dropped here if the credential is revoked or expired"
    )
    agent_version: str | None = None
    intervals: Intervals = Field(default_factory=Intervals)
    uplink: UplinkConfig = Field(default_factory=UplinkConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    policy: PolicyConfig
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    sensors: list[SourceConfig] = Field(default_factory=list)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    _base_dir: Path = Path(".")

    @model_validator(mode="after")
    def _unique_names(self) -> AgentConfig:
        names = [s.name for s in self.sensors]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"sensor names must be unique; repeated: {', '.join(dup)}")
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else (self._base_dir / p)


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return "missing required field"
    if kind == "extra_forbidden":
        return "unknown field (check its spelling; see docs/agent.md)"
    if kind == "union_tag_invalid":
        got = err.get("input")
        kind = got.get("kind") if isinstance(got, dict) else got
        return f"unknown sensor kind {kind!r}; use redfish, snmp_ups, modbus, contacts, simulated"
    msg = str(err.get("msg", "invalid value"))
    if "input" in err and kind not in ("model_type", "dict_type", "list_type", "model_attributes_type"):
        return f"{msg} (got {err['input']!r})"
    return msg


def _problems(
    exc: ValidationError, smap: SourceMap, file_: str, prefix: tuple[Any, ...] = ()
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p in _KIND_TAGS))
        where, line = smap.lookup((*prefix, *loc), file_)
        out.append(Problem(where, line, ".".join(str(p) for p in (*prefix, *loc)), _describe(dict(err))))
    return out


_KIND_TAGS = {"redfish", "snmp_ups", "modbus", "contacts", "simulated"}


def _load_register_map(path: Path, problems: list[Problem], field: str, owner: str, line: int | None) -> Any:
    if not path.is_file():
        problems.append(Problem(owner, line, field, f"register map not found: {path}"))
        return None
    smap = SourceMap()
    try:
        data = load_yaml_with_lines(path, smap)
    except YamlSyntaxError as exc:
        problems.append(Problem(exc.file, exc.line, "", exc.message))
        return None
    items = data.get("registers") if isinstance(data, dict) else data
    if not isinstance(items, list):
        problems.append(
            Problem(str(path), 1, "registers", "expected a list of registers (or {registers: [...]})")
        )
        return None
    points: list[ModbusPoint] = []
    prefix: tuple[Any, ...] = ("registers",) if isinstance(data, dict) else ()
    for i, item in enumerate(items):
        try:
            points.append(ModbusPoint.model_validate(item))
        except ValidationError as exc:
            problems.extend(_problems(exc, smap, str(path), (*prefix, i)))
    return points


def parse_config(
    data: Any, *, file: str = "<config>", smap: SourceMap | None = None, base_dir: Path | None = None
) -> AgentConfig:
    """Validate an already-parsed config mapping (collecting every problem)."""
    smap = smap or SourceMap()
    if not isinstance(data, dict):
        raise AgentConfigError([Problem(file, 1, "", "expected a mapping at the top level")])
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise AgentConfigError(_problems(exc, smap, file)) from None
    cfg._base_dir = base_dir if base_dir is not None else Path(".")
    problems: list[Problem] = []
    for i, src in enumerate(cfg.sensors):
        if isinstance(src, ModbusSource) and src.register_map:
            where, line = smap.lookup(("sensors", i, "register_map"), file)
            pts = _load_register_map(
                cfg.resolve(src.register_map), problems, f"sensors.{i}.register_map", where, line
            )
            if pts is not None:
                src.registers = [*src.registers, *pts]
    problems.extend(_policy_problems(cfg, smap, file))
    problems.extend(_tls_problems(cfg, smap, file))
    if problems:
        raise AgentConfigError(problems)
    return cfg


def _tls_problems(cfg: AgentConfig, smap: SourceMap, file: str) -> list[Problem]:
    """TLS settings with a plain-HTTP server would silently do nothing; a CA file must exist."""
    out: list[Problem] = []
    if cfg.tls.configured and cfg.server and cfg.server.lower().startswith("http://"):
        where, line = smap.lookup(("server",), file)
        out.append(Problem(where, line, "server", "tls: is set but the server URL is http:// (use https://)"))
    if cfg.tls.ca_file and not cfg.resolve(cfg.tls.ca_file).is_file():
        where, line = smap.lookup(("tls", "ca_file"), file)
        out.append(
            Problem(where, line, "tls.ca_file", f"CA bundle not found: {cfg.resolve(cfg.tls.ca_file)}")
        )
    for i, src in enumerate(cfg.sensors):
        if isinstance(src, RedfishSource) and src.ca_file and not cfg.resolve(src.ca_file).is_file():
            where, line = smap.lookup(("sensors", i, "ca_file"), file)
            out.append(
                Problem(
                    where, line, f"sensors.{i}.ca_file", f"CA bundle not found: {cfg.resolve(src.ca_file)}"
                )
            )
    tls = cfg.tls
    if tls.client_cert and tls.client_key and not tls.request_certificate:
        for field in ("client_cert", "client_key"):
            path = cfg.resolve(getattr(tls, field))
            if not path.is_file():
                where, line = smap.lookup(("tls", field), file)
                out.append(
                    Problem(
                        where, line, f"tls.{field}", f"file not found: {path} (or set request_certificate)"
                    )
                )
    return out


def _policy_problems(cfg: AgentConfig, smap: SourceMap, file: str) -> list[Problem]:
    """Data classes named by sensors and topics must exist (unless a scenario supplies them later)."""
    if cfg.policy.scenario:
        return []
    known = set(cfg.policy.data_classes) | {cfg.policy.facility_data_class}
    out: list[Problem] = []
    for i, src in enumerate(cfg.sensors):
        if src.data_class and src.data_class not in known:
            where, line = smap.lookup(("sensors", i, "data_class"), file)
            out.append(
                Problem(where, line, f"sensors.{i}.data_class", f"unknown data class {src.data_class!r}")
            )
    for i, rule in enumerate(cfg.mqtt.topics):
        if rule.data_class and rule.data_class not in known:
            where, line = smap.lookup(("mqtt", "topics", i, "data_class"), file)
            out.append(
                Problem(where, line, f"mqtt.topics.{i}.data_class", f"unknown data class {rule.data_class!r}")
            )
    return out


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate agent.yaml; raise AgentConfigError listing every problem found."""
    p = Path(path)
    if not p.is_file():
        raise AgentConfigError([Problem(str(p), None, "", "agent config file not found")])
    smap = SourceMap()
    try:
        data = load_yaml_with_lines(p, smap)
    except YamlSyntaxError as exc:
        raise AgentConfigError([Problem(exc.file, exc.line, "", exc.message)]) from None
    return parse_config(data, file=str(p), smap=smap, base_dir=p.parent.resolve())
