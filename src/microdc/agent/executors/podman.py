"""Podman executor: workloads as containers, driven through the podman CLI (no daemon to keep alive).

Every call passes ``--runtime`` and ``--cgroup-manager`` (default ``runc`` and ``cgroupfs``, what edge
hosts without systemd-managed cgroups need) and, if configured, points ``CONTAINERS_CONF`` at a
containers.conf (``deploy/podman/containers.conf``: no default ulimits, cgroupfs). Containers run with
host networking, no restart policy of podman's own (the agent's supervisor restarts with backoff) and
three labels — site, workload, spec hash — by which `instances` finds them again after an agent restart.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from microdc.agent.executors.base import LABEL_SITE, LABEL_SPEC, LABEL_WORKLOAD, ExecutorError, Instance
from microdc.protocol.workload import WorkloadRunSpec


class PodmanExecutor:
    name = "podman"

    def __init__(
        self,
        site_id: str,
        *,
        podman: str = "podman",
        runtime: str = "runc",
        cgroup_manager: str = "cgroupfs",
        containers_conf: str | None = None,
        network: str = "host",
        timeout_s: float = 120.0,
    ):
        self.site_id = site_id
        self.base = [podman, "--runtime", runtime, "--cgroup-manager", cgroup_manager]
        self.env = dict(os.environ)
        if containers_conf:
            self.env["CONTAINERS_CONF"] = containers_conf
        self.network = network
        self.timeout_s = timeout_s

    def _run(self, args: Sequence[str], *, timeout: float | None = None, check: bool = True) -> str:
        cmd = [*self.base, *args]
        try:
            r = subprocess.run(
                cmd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout or self.timeout_s,
                check=False,
            )
        except FileNotFoundError:
            raise ExecutorError(
                f"podman not found ({self.base[0]!r}); install Debian's podman and runc"
            ) from None
        except subprocess.TimeoutExpired:
            raise ExecutorError(f"podman {args[0]} timed out after {timeout or self.timeout_s:g} s") from None
        if check and r.returncode != 0:
            raise ExecutorError(f"podman {args[0]} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
        return r.stdout

    def check(self, spec: WorkloadRunSpec) -> str | None:
        if spec.image is None:
            return (
                "the podman executor runs images; this spec has only a command (configure executor: process)"
            )
        return None

    def container_name(self, workload_id: str, spec_hash: str) -> str:
        safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in f"{self.site_id}-{workload_id}")
        return f"microdc-{safe}-{spec_hash[:12]}-{int(time.time() * 1000) % 10**8}"

    def run_args(
        self, workload_id: str, spec: WorkloadRunSpec, spec_hash: str, volumes: dict[str, str]
    ) -> list[str]:
        """The `podman run` arguments for a spec (pure: what is run is visible and testable)."""
        assert spec.image is not None
        args = [
            "run", "--detach", "--network", self.network, "--restart", "no",
            "--name", self.container_name(workload_id, spec_hash),
            "--label", f"{LABEL_SITE}={self.site_id}",
            "--label", f"{LABEL_WORKLOAD}={workload_id}",
            "--label", f"{LABEL_SPEC}={spec_hash}",
            "--stop-timeout", str(round(spec.stop_timeout_s)),
        ]  # fmt: skip
        if spec.cpus is not None:
            args += ["--cpus", f"{spec.cpus:g}"]
        if spec.memory_mb is not None:
            args += ["--memory", f"{spec.memory_mb}m"]
        for k, v in sorted(spec.env.items()):
            args += ["--env", f"{k}={v}"]
        for vol in spec.volumes:
            args += ["--volume", f"{volumes[vol.name]}:{vol.path}:{'ro' if vol.read_only else 'rw'}"]
        if spec.command:
            args += ["--entrypoint", json.dumps(spec.command)]
        args.append(spec.image)
        args += spec.args
        return args

    def start(
        self, workload_id: str, spec: WorkloadRunSpec, spec_hash: str, volumes: dict[str, str]
    ) -> Instance:
        why = self.check(spec)
        if why:
            raise ExecutorError(why)
        args = self.run_args(workload_id, spec, spec_hash, volumes)
        try:
            cid = self._run(args).strip().splitlines()[-1]
        except ExecutorError:
            # a container that was created but could not start must not linger as a "dead copy"
            self._run(["rm", "--force", args[args.index("--name") + 1]], check=False)
            raise
        return Instance(cid, workload_id, spec_hash, True, None, time.time())

    def instances(self) -> list[Instance]:
        out = self._run(
            [
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                f"label={LABEL_SITE}={self.site_id}",
                "--format",
                "json",
            ]
        )
        rows: list[dict[str, Any]] = json.loads(out or "[]") or []
        insts = [_instance(r) for r in rows]
        return sorted(insts, key=lambda i: (i.workload_id, i.started_at, i.handle))

    def stop(self, inst: Instance, timeout_s: float) -> None:
        self._run(["rm", "--force", "--time", str(round(timeout_s)), inst.handle], timeout=timeout_s + 60)

    def remove(self, inst: Instance) -> None:
        self._run(["rm", "--force", inst.handle], check=False)

    def exec_check(self, inst: Instance, command: list[str], timeout_s: float) -> bool:
        try:
            r = subprocess.run(
                [*self.base, "exec", inst.handle, *command], env=self.env, capture_output=True,
                timeout=timeout_s, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return False
        return r.returncode == 0


BUSYBOX_APPLETS = ("sh", "httpd", "sleep", "echo", "cat", "ls", "wget", "nc", "test", "true", "false", "kill")


def busybox_rootfs(busybox: Path = Path("/bin/busybox")) -> bytes:
    """A tarball of a one-binary root file system: a static busybox and its applets as symlinks."""
    if not busybox.is_file():
        raise ExecutorError(f"{busybox} not found: install Debian's busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "www", "data"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        page = b"<html><body>microdc busybox</body></html>\n"
        info = tarfile.TarInfo("www/index.html")
        info.size, info.mode = len(page), 0o644
        tar.addfile(info, io.BytesIO(page))
    return buf.getvalue()


def import_busybox_image(ex: PodmanExecutor, tag: str, busybox: Path = Path("/bin/busybox")) -> str:
    """Build a local image `tag` from busybox with `podman import` (no registry needed); returns its id."""
    try:
        r = subprocess.run(
            [*ex.base, "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
            input=busybox_rootfs(busybox), env=ex.env, capture_output=True, timeout=ex.timeout_s, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        raise ExecutorError(f"podman not found ({ex.base[0]!r})") from None
    if r.returncode != 0:
        raise ExecutorError(f"podman import failed: {r.stderr.decode(errors='replace').strip()[-800:]}")
    return r.stdout.decode().strip().splitlines()[-1]


def _instance(row: dict[str, Any]) -> Instance:
    labels = row.get("Labels") or {}
    state = str(row.get("State", ""))
    running = state in ("running", "paused", "stopping")  # "created" after `run -d` returned: it failed
    started = row.get("StartedAt") or row.get("Created") or 0
    if isinstance(started, str):
        try:
            started = datetime.fromisoformat(started).timestamp()
        except ValueError:
            started = 0
    return Instance(
        handle=str(row["Id"]),
        workload_id=str(labels.get(LABEL_WORKLOAD, "")),
        spec_hash=str(labels.get(LABEL_SPEC, "")),
        running=running,
        exit_code=None if running else int(row.get("ExitCode") or 0),
        started_at=float(started),
    )
