"""`microdc sites import` creates and updates a scenario's workloads by the rules of `workloads apply`:
idempotent, never deletes, a dry run writes nothing, an origin change is a conflict that writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from microdc.cli.control_cmds import register
from microdc.control.db import Database
from microdc.control.models import AuditEntry, Site, Workload
from microdc.control.schemas import SiteIn
from microdc.examples import EXAMPLES_DIR
from microdc.protocol.workload import WorkloadRunSpec, spec_hash

from .conftest import site_body


def _cli(*args: str) -> Any:
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def _state(db_url: str) -> tuple[dict[str, tuple[Any, ...]], int]:
    database = Database(db_url)
    try:
        with database.read_session() as s:
            rows = {
                w.id: (w.data_class, w.origin_jurisdiction, w.cores, w.spec_hash, w.updated_at)
                for w in s.scalars(select(Workload))
            }
            return rows, int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    finally:
        database.dispose()


def test_import_creates_then_changes_nothing_then_updates(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES_DIR / "eu-sovereign", tmp_path / "eu")
    scenario = tmp_path / "eu" / "scenario.yaml"
    db = f"sqlite:///{tmp_path}/fleet.db"

    r = _cli("sites", "import", str(scenario), "--db", db, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would create workload patient-files" in r.output

    r = _cli("sites", "import", str(scenario), "--db", db)
    assert r.exit_code == 0, r.output
    assert "create workload patient-files" in r.output
    rows, audit = _state(db)
    (w,) = rows.values()
    assert w[:3] == ("personal", "DE", 0.5) and w[3] is not None

    r = _cli("sites", "import", str(scenario), "--db", db)
    assert r.exit_code == 0, r.output
    assert "0 of 1 workload(s) were created or updated" in r.output
    assert _state(db) == (rows, audit)  # nothing written, not even an audit entry

    text = scenario.read_text()
    scenario.write_text(text.replace("cores: 0.5", "cores: 1.5").replace("18090", "18091"))
    r = _cli("sites", "import", str(scenario), "--db", db, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "would update workload patient-files: cores, spec" in r.output
    assert _state(db) == (rows, audit)

    r = _cli("sites", "import", str(scenario), "--db", db)
    assert r.exit_code == 0, r.output
    new_rows, _ = _state(db)
    assert new_rows["patient-files"][2] == 1.5
    database = Database(db)
    with database.read_session() as s:
        stored = s.get(Workload, "patient-files")
        assert stored is not None and stored.spec is not None
        assert stored.spec_hash == spec_hash(WorkloadRunSpec.model_validate(stored.spec))
        assert 18091 in stored.spec["ports"]
        actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))[audit:]
    database.dispose()
    assert actions == ["workload.update"]

    # a scenario that no longer lists it: an import never deletes a workload (use the API or --prune)
    text = scenario.read_text()
    scenario.write_text(text[: text.index("\nworkloads:")] + "\nworkloads: []\n")
    r = _cli("sites", "import", str(scenario), "--db", db)
    assert r.exit_code == 0, r.output
    assert "delete" not in r.output
    assert _state(db)[0] == new_rows


def test_origin_change_is_a_conflict_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES_DIR / "eu-sovereign", tmp_path / "eu")
    scenario = tmp_path / "eu" / "scenario.yaml"
    db = f"sqlite:///{tmp_path}/fleet.db"
    assert _cli("sites", "import", str(scenario), "--db", db).exit_code == 0
    before = _state(db)
    text = scenario.read_text()
    scenario.write_text(
        text.replace("origin_jurisdiction: DE", "origin_jurisdiction: FR")
        .replace("jurisdiction: DE}", "jurisdiction: FR}")
        .replace("Patient file server", "Renamed")
    )
    for extra in ((), ("--dry-run",)):
        r = _cli("sites", "import", str(scenario), "--db", db, *extra)
        assert r.exit_code == 2, r.output
        assert "patient-files" in r.output and "origin_jurisdiction DE → FR cannot change" in r.output
        assert _state(db) == before


def test_a_class_the_control_plane_does_not_know_is_refused(services: Any) -> None:
    """The API's rule unknown-data-class holds for an import too (a plane set up with other classes)."""
    import dataclasses

    import pytest

    from microdc.control.site_import import apply_import
    from microdc.protocol.workload import WorkloadIn

    base = services.ctx("test")
    ctx = dataclasses.replace(base, settings=base.settings.model_copy(update={"data_classes": ("public",)}))
    wanted = [WorkloadIn(id="w-personal", data_class="personal", origin_jurisdiction="DE", cores=1)]
    sites = [SiteIn.model_validate(site_body("x"))]
    with (
        pytest.raises(ValueError, match="not one of the control plane's configured classes"),
        services.db.session() as s,
    ):
        apply_import(s, ctx, sites, wanted)
    with services.db.read_session() as s:
        assert s.get(Workload, "w-personal") is None
        assert s.get(Site, "x") is None  # nothing of the import was written
    ok = [WorkloadIn(id="w-public", data_class="public", origin_jurisdiction="DE", cores=1)]
    with services.db.session() as s:
        assert [c.action for c in apply_import(s, ctx, sites, ok).workloads] == ["create"]
