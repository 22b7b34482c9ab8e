"""Start the real device emulators for tests: sushy-emulator / sushy-static (Redfish), snmpsim (SNMP),
pymodbus's TCP server (in-process), and check the MQTT broker."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from microdc.control.devserver import free_port

DATA = Path(__file__).parent / "data"
MQTT_HOST, MQTT_PORT = "127.0.0.1", int(os.environ.get("MICRODC_TEST_MQTT_PORT", "1883"))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[ops]')")
    return path


def need_broker() -> None:
    try:
        with socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=2):
            return
    except OSError as e:
        pytest.skip(f"no MQTT broker on {MQTT_HOST}:{MQTT_PORT}: {e}")


class Proc:
    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None):
        self.log = log
        fh = open(log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_http(url: str, proc: Proc, timeout: float = 30.0, verify: str | bool = True) -> None:
    ctx = ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"emulator exited: {proc.log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0, verify=ctx).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer: {proc.log.read_text()[-2000:]}")


def sushy_static(tmp: Path) -> tuple[Proc, str]:
    exe = need_binary("sushy-static")
    port = free_port()
    p = Proc([exe, "-i", "127.0.0.1", "-p", str(port), "-m", str(DATA / "redfish")], tmp / "sushy-static.log")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/redfish/v1/", p)
    return p, url


def sushy_emulator(tmp: Path, tls: tuple[Path, Path, Path] | None = None) -> tuple[Proc, str]:
    """sushy-emulator with its fake driver; `tls` = (certificate, key, CA that signed it) serves HTTPS."""
    exe = need_binary("sushy-emulator")
    port = free_port()
    extra = ["--ssl-certificate", str(tls[0]), "--ssl-key", str(tls[1])] if tls else []
    p = Proc([exe, "--fake", "-i", "127.0.0.1", "-p", str(port), *extra], tmp / "sushy-emulator.log")
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    wait_http(f"{url}/redfish/v1/", p, verify=str(tls[2]) if tls else True)
    return p, url


# snmpsim refuses to run as root unless it can drop privileges, and after dropping them it cannot read a
# Python installed under /root; as root we run its entry point with the privilege switch disabled.
SNMPSIM_AS_ROOT = (
    "import sys, contextlib, snmpsim.daemon as d\n"
    "d.PrivilegesOf = lambda *a, **k: contextlib.nullcontext()\n"
    "from snmpsim.commands.responder import main\n"
    "sys.argv[0] = 'snmpsim-command-responder'\n"
    "sys.exit(main())\n"
)


def snmpsim(tmp: Path, recordings: list[str], v3: list[str] | None = None) -> tuple[Proc, int]:
    """snmpsim serving `recordings` (v1/v2c community = recording name); `v3` adds USM options after
    ``--v3-engine-id auto`` (e.g. --v3-user, --v3-auth-proto SHA256, --v3-priv-proto AES); with v3 the
    recording is chosen by the SNMPv3 context name."""
    exe = need_binary("snmpsim-command-responder")
    try:
        import pysmi  # noqa: F401  (snmpsim imports it without declaring it)
    except ImportError:
        pytest.skip("snmpsim needs pysmi (pip install pysmi)")
    data = tmp / "snmp"
    data.mkdir(exist_ok=True)
    for name in recordings:
        shutil.copy(DATA / "snmp" / f"{name}.snmprec", data / f"{name}.snmprec")
    port = free_udp_port()
    args = [
        f"--cache-dir={tmp / 'snmpcache'}",
        *(["--v3-engine-id", "auto", *v3] if v3 else []),
        f"--data-dir={data}",
        f"--agent-udpv4-endpoint=127.0.0.1:{port}",
    ]
    cmd = [sys.executable, "-c", SNMPSIM_AS_ROOT, *args] if os.geteuid() == 0 else [exe, *args]
    p = Proc(cmd, tmp / "snmpsim.log")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not p.alive():
            raise RuntimeError(f"snmpsim exited: {p.log.read_text()[-2000:]}")
        if "Listening at" in p.log.read_text(errors="replace") or _snmp_answers(port, recordings[0]):
            return p, port
        time.sleep(0.2)
    raise TimeoutError(f"snmpsim did not start: {p.log.read_text()[-2000:]}")


def _snmp_answers(port: int, community: str) -> bool:
    async def q() -> bool:
        from pysnmp.hlapi.v3arch.asyncio import (
            CommunityData,
            ContextData,
            ObjectIdentity,
            ObjectType,
            SnmpEngine,
            UdpTransportTarget,
            get_cmd,
        )

        eng = SnmpEngine()
        try:
            t = await UdpTransportTarget.create(("127.0.0.1", port), timeout=0.5, retries=0)
            err, *_ = await get_cmd(
                eng,
                CommunityData(community),
                t,
                ContextData(),
                ObjectType(ObjectIdentity("1.3.6.1.2.1.33.1.2.1.0")),
            )
            return not err
        finally:
            eng.close_dispatcher()

    return asyncio.run(q())


class ModbusServer:
    """pymodbus's asyncio TCP server (its 3.x SimDevice datastore) in a background thread.

    `values` maps a table (coil, discrete, holding, input) to {address: [values]}; pymodbus 3.16's
    simulator blocks are fixed once the server runs, so tests change values by starting a new server.
    """

    SIZE = 200

    def __init__(self, values: dict[str, dict[int, list[int]]] | None = None) -> None:
        from pymodbus.simulator import SimData, SimDevice
        from pymodbus.simulator.simdata import DataType

        self.port = free_port()
        tables: dict[str, list[int]] = {t: [0] * self.SIZE for t in ("coil", "discrete", "holding", "input")}
        for table, by_addr in (values or {}).items():
            for addr, vals in by_addr.items():
                tables[table][addr : addr + len(vals)] = vals

        def blk(t: str) -> list[Any]:
            if t in ("coil", "discrete"):  # BITS blocks hold 16 bits per value, bit k of word k // 16
                words = [0] * (self.SIZE // 16)
                for k, bit in enumerate(tables[t][: len(words) * 16]):
                    words[k // 16] |= (1 if bit else 0) << (k % 16)
                return [SimData(0, values=words, datatype=DataType.BITS)]
            return [SimData(0, values=tables[t], datatype=DataType.REGISTERS)]

        self.device = SimDevice(id=1, simdata=(blk("coil"), blk("discrete"), blk("holding"), blk("input")))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    def start(self) -> ModbusServer:
        from pymodbus.server import ModbusTcpServer

        self.thread.start()

        async def go() -> None:
            self.server = ModbusTcpServer(self.device, address=("127.0.0.1", self.port))
            self.task = asyncio.ensure_future(self.server.serve_forever())
            for _ in range(100):
                try:
                    _r, w = await asyncio.open_connection("127.0.0.1", self.port)
                    w.close()
                    return
                except OSError:
                    await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(go(), self.loop).result(10)
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self.server is not None:
                await self.server.shutdown()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
