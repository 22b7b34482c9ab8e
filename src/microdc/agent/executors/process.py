"""Process executor: workloads as plain processes, for hosts with no container engine.

Each copy is a process group of its own (a new session), so stopping it signals everything it started
and it outlives the agent. Its labels are environment variables (``MICRODC_SITE_ID``,
``MICRODC_WORKLOAD_ID``, ``MICRODC_SPEC_HASH``) that `instances` reads back from ``/proc/<pid>/environ``: an
agent that restarts finds its workloads by label, never by a file that could be stale. A handle carries
the process's start time too, so a recycled pid is never mistaken for a workload.

Limits: ``memory_mb`` becomes an address-space limit (RLIMIT_AS); a ``cpus`` limit needs cgroups, so a
spec with one is refused with a message pointing at the podman executor. Images are refused too.
Volume directories are handed over as ``MICRODC_VOLUME_<NAME>`` (upper case, ``-`` → ``_``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

from microdc.agent.executors.base import ExecutorError, Instance
from microdc.protocol.workload import WorkloadRunSpec

ENV_SITE = "MICRODC_SITE_ID"
ENV_WORKLOAD = "MICRODC_WORKLOAD_ID"
ENV_SPEC = "MICRODC_SPEC_HASH"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def volume_env(name: str) -> str:
    return "MICRODC_VOLUME_" + name.upper().replace("-", "_")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start time in clock ticks) of a pid, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return rest[0], int(rest[2]), int(rest[19])


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep and k.startswith(b"MICRODC_"):
            out[k.decode(errors="replace")] = v.decode(errors="replace")
    return out


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return 0.0


class ProcessExecutor:
    name = "process"

    def __init__(self, site_id: str, work_dir: Path):
        self.site_id = site_id
        self.work_dir = work_dir
        self._children: dict[str, tuple[subprocess.Popen[bytes], Instance]] = {}
        self._seen: dict[str, Instance] = {}  # adopted (not our children): remembered to report their end
        self._btime = _boot_time()

    def check(self, spec: WorkloadRunSpec) -> str | None:
        if spec.image is not None:
            return f"the process executor cannot run image {spec.image!r}; configure executor: podman"
        if spec.cpus is not None:
            return (
                "the process executor cannot enforce a cpus limit; configure executor: podman, or drop cpus"
            )
        return None

    def _handle(self, pid: int, ticks: int) -> str:
        return f"pid:{pid}:{ticks}"

    def start(
        self, workload_id: str, spec: WorkloadRunSpec, spec_hash: str, volumes: dict[str, str]
    ) -> Instance:
        why = self.check(spec)
        if why:
            raise ExecutorError(why)
        assert spec.command
        argv = [*spec.command, *spec.args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **spec.env}
        env |= {volume_env(n): d for n, d in volumes.items()}
        env |= {ENV_SITE: self.site_id, ENV_WORKLOAD: workload_id, ENV_SPEC: spec_hash}
        cwd = self.work_dir / workload_id
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / f"{workload_id}.log"
        limit = spec.memory_mb * 1024 * 1024 if spec.memory_mb else None

        def limits() -> None:  # runs in the child, before exec
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        with open(log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=limits if limit is not None else None, close_fds=True,
                )  # fmt: skip
            except OSError as e:
                raise ExecutorError(f"cannot start {argv[0]!r}: {e.strerror or e}") from None
        st = _stat(proc.pid)
        ticks = st[2] if st else 0
        inst = Instance(self._handle(proc.pid, ticks), workload_id, spec_hash, True, None, time.time())
        self._children[inst.handle] = (proc, inst)
        return inst

    def _started_at(self, ticks: int) -> float:
        return self._btime + ticks / _CLK_TCK

    def instances(self) -> list[Instance]:
        out: dict[str, Instance] = {}
        for handle, (proc, inst) in list(self._children.items()):
            code = proc.poll()  # our own children: running until the kernel hands us their exit code
            out[handle] = (
                inst
                if code is None
                else Instance(handle, inst.workload_id, inst.spec_hash, False, code, inst.started_at)
            )
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            st = _stat(pid)
            if st is None or st[1] != pid or st[0] in ("Z", "X"):
                continue  # gone, not a group leader (a workload's own child), or a zombie
            env = _environ(pid)
            if env.get(ENV_SITE) != self.site_id or ENV_WORKLOAD not in env:
                continue
            handle = self._handle(pid, st[2])
            if handle in out:
                continue
            inst = Instance(
                handle, env[ENV_WORKLOAD], env.get(ENV_SPEC, ""), True, None, self._started_at(st[2])
            )
            out[handle] = inst
            if handle not in self._children:
                self._seen[handle] = inst
        for handle, inst in list(self._seen.items()):
            if handle not in out:  # an adopted process ended: its exit code went to its real parent
                out[handle] = Instance(handle, inst.workload_id, inst.spec_hash, False, None, inst.started_at)
        return sorted(out.values(), key=lambda i: (i.workload_id, i.started_at, i.handle))

    def _alive(self, handle: str) -> bool:
        child = self._children.get(handle)
        if child is not None:
            return child[0].poll() is None
        _, pid_s, ticks_s = handle.split(":")
        st = _stat(int(pid_s))
        return st is not None and st[2] == int(ticks_s) and st[0] not in ("Z", "X")

    def stop(self, inst: Instance, timeout_s: float) -> None:
        pid = int(inst.handle.split(":")[1])
        if self._alive(inst.handle):
            _killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self._alive(inst.handle) and time.monotonic() < deadline:
                time.sleep(0.05)
        _killpg(
            pid, signal.SIGKILL
        )  # whatever is left of the group (a leader that ignored SIGTERM, children)
        child = self._children.get(inst.handle)
        if child is not None:
            try:
                child[0].wait(5)
            except subprocess.TimeoutExpired:
                raise ExecutorError(
                    f"process {pid} of {inst.workload_id} did not die after SIGKILL"
                ) from None
        self.remove(inst)

    def remove(self, inst: Instance) -> None:
        self._children.pop(inst.handle, None)
        self._seen.pop(inst.handle, None)

    def exec_check(self, inst: Instance, command: list[str], timeout_s: float) -> bool:
        try:
            r = subprocess.run(
                command, cwd=self.work_dir / inst.workload_id, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout_s, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
