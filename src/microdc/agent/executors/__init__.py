"""Executors: how a site runs its workloads (podman containers, or plain processes), chosen in agent.yaml."""

from __future__ import annotations

from microdc.agent.config import AgentConfig
from microdc.agent.executors.base import Executor, ExecutorError, Instance
from microdc.agent.executors.podman import PodmanExecutor
from microdc.agent.executors.process import ProcessExecutor

__all__ = ["Executor", "ExecutorError", "Instance", "PodmanExecutor", "ProcessExecutor", "build_executor"]


def build_executor(cfg: AgentConfig, site_id: str) -> Executor:
    ex = cfg.executor
    if ex.kind == "podman":
        p = ex.podman
        conf = str(cfg.resolve(p.containers_conf)) if p.containers_conf else None
        return PodmanExecutor(
            site_id, podman=p.binary, runtime=p.runtime, cgroup_manager=p.cgroup_manager,
            containers_conf=conf, network=p.network, timeout_s=p.timeout_s,
        )  # fmt: skip
    return ProcessExecutor(site_id, cfg.resolve(ex.work_dir) / "run")
