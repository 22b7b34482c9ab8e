"""`microdc sites import` on a live fleet: idempotent, never touches an existing site's status, liveness
or desired state, never deletes inventory; `--dry-run` shows the diff and writes nothing.
SQLite by default; the same on PostgreSQL (marked `services`)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from microdc.cli.control_cmds import register
from microdc.control.app import create_app
from microdc.control.models import AuditHead, Module, Server
from microdc.control.schemas import SiteIn
from microdc.control.security import Role
from microdc.control.site_import import apply_import, plan_import
from microdc.examples import EXAMPLES_DIR

from .conftest import Clock, Fleet, make_user, site_body, test_settings


def _cli(*args: str) -> Any:
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def _scenario_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "scenario"
    shutil.copytree(EXAMPLES_DIR / "eu-sovereign", dst)
    return dst / "scenario.yaml"


def _edit_sites(scenario: Path, site_id: str, **changes: Any) -> None:
    path = scenario.parent / "sites.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    for r in rows:
        if r["id"] == site_id:
            r.update({k: str(v) for k, v in changes.items()})
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def _add_site_row(scenario: Path, site_id: str) -> None:
    path = scenario.parent / "sites.csv"
    with path.open() as f:
        rows = list(csv.DictReader(f))
    new = {**rows[0], "id": site_id, "name": "New Site", "lat": "48.2", "lon": "11.6"}
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(new)


def _snapshot(c: TestClient, h: dict[str, str]) -> dict[str, Any]:
    sites = {
        s["id"]: (s["status"], s["state"], s["liveness"], s["desired_version"], s["name"], s["grid_power_kw"])
        for s in c.get("/api/v1/sites", headers=h).json()
    }
    workloads = {
        w["id"]: (w["site_id"], w["placement_state"]) for w in c.get("/api/v1/workloads", headers=h).json()
    }
    return {"sites": sites, "workloads": workloads}


def _audit_seq(app: Any) -> int:
    with app.state.services.db.read_session() as s:
        head = s.get(AuditHead, 1)
        return int(head.last_seq)


def _live_fleet_reimport(db_url: str, tmp_path: Path) -> None:
    scenario = _scenario_copy(tmp_path)
    r = _cli("sites", "import", str(scenario), "--db", db_url)
    assert r.exit_code == 0, r.output
    assert "20 site(s) added, 0 updated, 0 unchanged" in r.output

    clock = Clock()
    app = create_app(test_settings(db_url), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as c:
        admin = make_user(app.state.services, "root", Role.ADMIN)
        fleet = Fleet(c, admin)
        # bring three sites live (active, enrolled, heartbeating) and put one in maintenance
        for sid in ("munich-1", "munich-2", "frankfurt-1"):
            assert (
                c.patch(f"/api/v1/sites/{sid}", json={"status": "active"}, headers=admin).status_code == 200
            )
            module = site_body(sid)["modules"][0]  # the scenario lists none: the operator adds one
            assert c.post(f"/api/v1/sites/{sid}/modules", json=module, headers=admin).status_code == 201
            r = c.post(f"/api/v1/sites/{sid}/enrollment-tokens", headers=admin)
            tok = c.post("/api/v1/enroll", json={"token": r.json()["token"]}).json()["token"]
            fleet.site_h[sid] = {"Authorization": f"Bearer {tok}"}
            assert (
                c.post(f"/api/v1/sites/{sid}/heartbeat", json={}, headers=fleet.site_h[sid]).status_code
                == 200
            )
        assert (
            c.patch("/api/v1/sites/frankfurt-2", json={"status": "maintenance"}, headers=admin).status_code
            == 200
        )
        for i in range(3):
            body = {"id": f"w{i}", "data_class": "public", "origin_jurisdiction": "DE", "cores": 2}
            assert c.post("/api/v1/workloads", json=body, headers=admin).status_code == 201
        before = _snapshot(c, admin)
        assert {before["workloads"][w][1] for w in before["workloads"]} == {"assigned"}
        assert sum(v[3] for v in before["sites"].values()) > 0  # desired state is not empty
        seq = _audit_seq(app)

        # re-running the same import on the live fleet changes nothing and writes nothing
        r = _cli("sites", "import", str(scenario), "--db", db_url)
        assert r.exit_code == 0, r.output
        assert "0 site(s) added, 0 updated, 20 unchanged" in r.output
        assert "status stays 'active' (import says 'planned')" in r.output
        assert "status stays 'maintenance'" in r.output
        assert _snapshot(c, admin) == before
        assert _audit_seq(app) == seq

        # the scenario changes: a live site is renamed and gets more grid power, a site is added
        _edit_sites(scenario, "munich-1", name="Munich One", grid_power_kw=45.0)
        _add_site_row(scenario, "munich-9")
        r = _cli("sites", "import", str(scenario), "--db", db_url, "--dry-run")
        assert r.exit_code == 0, r.output
        assert "dry run: nothing written" in r.output
        assert "1 site(s) would be added, 1 would be updated, 19 unchanged" in r.output
        out = " ".join(r.output.split())
        for text in (
            "munich-1",
            "updated",
            "Munich MDC 1",
            "Munich One",
            "grid_power_kw",
            "munich-9",
            "added",
        ):
            assert text in out, (text, r.output)
        assert _snapshot(c, admin) == before
        assert _audit_seq(app) == seq

        r = _cli("sites", "import", str(scenario), "--db", db_url)
        assert r.exit_code == 0, r.output
        assert "1 site(s) added, 1 updated, 19 unchanged" in r.output
        after = _snapshot(c, admin)
        status, state, liveness, version, name, grid = after["sites"]["munich-1"]
        assert (status, state, liveness, name, grid) == ("active", "up", "up", "Munich One", 45.0)
        assert version == before["sites"]["munich-1"][3]
        assert after["sites"]["munich-9"][:3] == ("planned", "unknown", "unknown")
        assert after["workloads"] == before["workloads"]
        for sid, row in before["sites"].items():
            if sid != "munich-1":
                assert after["sites"][sid] == row, sid
        new = c.get("/api/v1/audit", params={"after_seq": seq}, headers=admin).json()
        assert sorted((e["action"], e["target"]) for e in new) == [
            ("site.create", "site:munich-9"),
            ("site.import_update", "site:munich-1"),
        ]


def test_reimport_on_live_fleet_sqlite(tmp_path: Path) -> None:
    _live_fleet_reimport(f"sqlite:///{tmp_path}/fleet.db", tmp_path)


@pytest.mark.services
def test_reimport_on_live_fleet_postgres(pg_url: str, tmp_path: Path) -> None:
    _live_fleet_reimport(pg_url, tmp_path)


def test_import_sites_via_api(client: TestClient, admin_h: dict[str, str], services: Any) -> None:
    sites = [SiteIn.model_validate(site_body("x")), SiteIn.model_validate(site_body("y", jurisdiction="FR"))]
    ctx = services.ctx("test")
    with services.db.session() as s:
        report = apply_import(s, ctx, sites)
    assert (report.created, report.updated, report.unchanged) == (["x", "y"], [], [])
    def rows() -> tuple[list[int], list[int]]:
        with services.db.read_session() as s:
            mods = list(s.scalars(select(Module.id).where(Module.site_id == "x")))
            return mods, list(s.scalars(select(Server.id).where(Server.module_id.in_(mods))))

    module_ids, server_ids = rows()
    # the same again: unchanged, module rows kept (not deleted and re-created)
    with services.db.session() as s:
        report = apply_import(s, ctx, sites)
    assert (report.created, report.updated, report.unchanged) == ([], [], ["x", "y"])
    assert rows() == (module_ids, server_ids)
    renamed = SiteIn.model_validate({**site_body("x"), "name": "Renamed"})
    with services.db.session() as s:
        assert apply_import(s, ctx, [renamed]).updated == ["x"]
    assert rows() == (module_ids, server_ids)  # the site updated; its unchanged module and servers kept
    changed = SiteIn.model_validate({**site_body("x", cores=8), "name": "Renamed"})
    with services.db.read_session() as s:
        plan = plan_import(s, [changed])
    fields = {c.field: (c.old, c.new) for c in plan.sites[0].changes}
    assert "name" not in fields
    assert fields["module m1.servers"] == ("1x r650 (64 cores)", "1x r650 (8 cores)")
    with services.db.session() as s:
        report = apply_import(s, ctx, [changed])
    assert (report.created, report.updated) == ([], ["x"])
    got = client.get("/api/v1/sites/x", headers=admin_h).json()
    assert got["name"] == "Renamed" and got["capacity_cores"] == 8
    assert rows()[0] == module_ids  # the module updated in place; its servers replaced

    # the API: dry run first (nothing written), then for real
    z = site_body("z")
    r = client.post(
        "/api/v1/sites/import", params={"dry_run": True}, json=[z, site_body("x", cores=8)], headers=admin_h
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["unchanged"], body["dry_run"]) == (["z"], [], True)
    assert [s["action"] for s in body["sites"]] == ["added", "updated"]  # x's name differs from "Renamed"
    assert client.get("/api/v1/sites/z", headers=admin_h).status_code == 404
    r = client.post("/api/v1/sites/import", json=[z], headers=admin_h)
    assert (r.json()["created"], r.json()["dry_run"]) == (["z"], False)
    assert {s["id"] for s in client.get("/api/v1/sites", headers=admin_h).json()} == {"x", "y", "z"}
    r = client.post("/api/v1/sites/import", json=[z, z], headers=admin_h)
    assert r.status_code == 409 and "appears twice" in r.text


def test_status_rules(client: TestClient, admin_h: dict[str, str], services: Any) -> None:
    """Only planned -> active; active, maintenance and decommissioned sites keep their status."""
    ctx = services.ctx("test")
    bodies = {sid: site_body(sid) for sid in ("p", "a", "m", "d")}
    with services.db.session() as s:
        apply_import(s, ctx, [SiteIn.model_validate({**b, "status": "planned"}) for b in bodies.values()])
    for sid, status in (("a", "active"), ("m", "maintenance"), ("d", "decommissioned")):
        assert (
            client.patch(f"/api/v1/sites/{sid}", json={"status": status}, headers=admin_h).status_code == 200
        )
    for wanted in ("active", "planned", "decommissioned"):
        with services.db.session() as s:
            report = apply_import(
                s, ctx, [SiteIn.model_validate({**b, "status": wanted}) for b in bodies.values()]
            )
        got = {x["id"]: x["status"] for x in client.get("/api/v1/sites", headers=admin_h).json()}
        assert got == {"p": "active", "a": "active", "m": "maintenance", "d": "decommissioned"}, (wanted, got)
        if wanted == "active":
            assert report.updated == ["p"]
            assert all("status stays" in c.notes[0] for c in report.sites if c.site_id in ("m", "d"))


def test_kept_inventory_is_reported(client: TestClient, admin_h: dict[str, str], services: Any) -> None:
    ctx = services.ctx("test")
    with services.db.session() as s:
        apply_import(s, ctx, [SiteIn.model_validate(site_body("x"))])
    extra = {**site_body("x")["modules"][0], "name": "m2"}
    assert client.post("/api/v1/sites/x/modules", json=extra, headers=admin_h).status_code == 201
    with services.db.session() as s:
        report = apply_import(s, ctx, [SiteIn.model_validate(site_body("x"))])
    assert report.unchanged == ["x"]
    assert report.sites[0].notes == (
        "module m2 is not in the import; kept (an import never deletes inventory)",
    )
    assert client.get("/api/v1/sites/x", headers=admin_h).json()["capacity_cores"] == 128


def test_cli_dry_run_on_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    r = _cli("sites", "import", "eu-sovereign", "--db", url, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "20 site(s) would be added, 0 would be updated, 0 unchanged" in r.output
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        assert inspect(engine).get_table_names() == []  # not even migrated
    finally:
        engine.dispose()
