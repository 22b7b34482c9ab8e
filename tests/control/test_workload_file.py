"""workloads.yaml: every problem named by file, line and field; a dry run that says what apply changes;
`microdc workloads apply` against a live control plane (create, update the spec, prune)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.control.workload_file import json_schema, load_workloads, plan_changes
from microdc.demo.fleet import ControlPlaneThread, create_admin
from microdc.model import ScenarioError

from .conftest import site_body

GOOD = """\
workloads:
  - id: web
    data_class: public
    origin_jurisdiction: DE
    cores: 1
    spec:
      command: [sleep, "600"]
      health: {probe: {kind: tcp, port: 18099}}
  - id: batch
    data_class: public
    origin_jurisdiction: DE
    cores: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "workloads.yaml"
    p.write_text(text)
    return p


def test_problems_name_file_line_and_field(tmp_path: Path) -> None:
    bad = GOOD.replace("kind: tcp, port: 18099", "kind: tcp, port: 0").replace("cores: 2", "cores: -1")
    with pytest.raises(ScenarioError) as ei:
        load_workloads(write(tmp_path, bad))
    got = [(p.line, p.field) for p in ei.value.problems]
    assert got == [(8, "workloads.0.spec.health.probe.tcp.port"), (12, "workloads.1.cores")]
    assert all(p.file.endswith("workloads.yaml") for p in ei.value.problems)
    dup = GOOD + "  - id: web\n    data_class: public\n    origin_jurisdiction: DE\n    cores: 1\n"
    with pytest.raises(ScenarioError) as ei:
        load_workloads(write(tmp_path, dup))
    assert [(p.line, p.field) for p in ei.value.problems] == [(13, "workloads.2.id")]
    assert "repeats workloads.0" in str(ei.value)
    with pytest.raises(ScenarioError, match="expected a mapping with a list under"):
        load_workloads(write(tmp_path, "- id: x\n"))


def test_plan_changes_is_a_faithful_diff(tmp_path: Path) -> None:
    wanted = load_workloads(write(tmp_path, GOOD))
    assert [(c.action, c.workload_id) for c in plan_changes([], wanted, prune=False)] == [
        ("create", "web"),
        ("create", "batch"),
    ]
    have: list[dict[str, Any]] = [
        {**w.model_dump(mode="json"), "spec_hash": None} for w in wanted
    ]  # as the API would list them, but with web's spec hash unknown → web's spec is sent again
    have.append({"id": "old", "origin_jurisdiction": "DE"})
    changes = plan_changes(have, wanted, prune=True)
    assert [(c.action, c.workload_id, c.why) for c in changes] == [
        ("update", "web", "spec"),
        ("delete", "old", ""),
    ]
    moved = [{**have[1], "origin_jurisdiction": "FR"}]
    (c,) = plan_changes(moved, [wanted[1]], prune=False)
    assert c.action == "conflict" and "cannot change" in c.why


def test_schema_describes_the_run_spec() -> None:
    s = json_schema()
    assert s["properties"]["workloads"]["items"]["properties"]["spec"]
    assert "WorkloadRunSpec" in s["$defs"] and "HealthCheck" in s["$defs"]


def test_apply_against_a_live_control_plane(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cp.db"
    token = create_admin(db)
    cp = ControlPlaneThread(db, settings={"password_memory_kib": 19456, "password_time_cost": 2}).start()
    try:
        h = {"Authorization": f"Bearer {token}"}
        httpx.post(f"{cp.url}/api/v1/sites", json=site_body("de1"), headers=h).raise_for_status()
        tok = tmp_path / "token"
        tok.write_text(token)
        path = write(tmp_path, GOOD)
        runner = CliRunner()
        args = ["workloads", "apply", str(path), "--server", cp.url, "--token-file", str(tok)]
        r = runner.invoke(app, [*args, "--dry-run"])
        assert r.exit_code == 0, r.output
        assert "would create web" in r.output and "would create batch" in r.output
        assert httpx.get(f"{cp.url}/api/v1/workloads", headers=h).json() == []
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        listed = {w["id"]: w for w in httpx.get(f"{cp.url}/api/v1/workloads", headers=h).json()}
        assert set(listed) == {"web", "batch"} and listed["web"]["spec"]["command"] == ["sleep", "600"]
        r = runner.invoke(app, args)
        assert "nothing to change" in r.output
        path.write_text(GOOD.replace('"600"', '"900"').split("  - id: batch")[0])
        r = runner.invoke(app, [*args, "--prune"])
        assert r.exit_code == 0, r.output
        assert "update web: spec" in r.output and "delete batch" in r.output
        listed = {w["id"]: w for w in httpx.get(f"{cp.url}/api/v1/workloads", headers=h).json()}
        assert set(listed) == {"web"} and listed["web"]["spec"]["command"] == ["sleep", "900"]
        bad = write(tmp_path, GOOD.replace("cores: 2", "cores: zero"))
        r = runner.invoke(app, ["workloads", "apply", str(bad), "--server", cp.url, "--token-file", str(tok)])
        assert r.exit_code == 2 and "workloads.yaml:12" in r.output and "workloads.1.cores" in r.output
    finally:
        cp.stop()
