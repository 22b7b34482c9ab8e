"""CLI: `admin create` prints the token once, `serve` is registered, settings round-trip via env."""

from __future__ import annotations

from typing import Any

import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from microdc.cli.control_cmds import log_config, register
from microdc.control.app import create_app
from microdc.control.settings import Settings

from .conftest import test_settings


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    register(app)
    return app


def test_admin_create_prints_a_working_token_once(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    runner = CliRunner()
    r = runner.invoke(_cli(), ["admin", "create", "root", "--db", url])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("mdc_u_")
    app = create_app(test_settings(url))
    with TestClient(app) as c:
        who = c.get("/api/v1/auth/whoami", headers={"Authorization": f"Bearer {token}"}).json()
        assert who["name"] == "root" and who["role"] == "admin"
        tokens = c.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).json()
        assert all("token" not in t for t in tokens)
    again = runner.invoke(_cli(), ["admin", "create", "root", "--db", url])
    assert again.exit_code == 1 and "already exists" in again.output


def test_admin_create_with_password_prompts_on_stderr_and_prints_only_the_token(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/pw.db"
    pw = "Vq7-mdc-seaweed-Orbit-41"
    r = CliRunner().invoke(
        _cli(), ["admin", "create", "root", "--db", url, "--password"], input=f"{pw}\n{pw}\n"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().startswith("mdc_u_") and len(r.stdout.strip().splitlines()) == 1
    assert "Password" in r.stderr and "Repeat" in r.stderr
    assert "Password" not in r.stdout and pw not in r.stdout + r.stderr


def test_admin_create_rejects_bad_names(tmp_path: Any) -> None:
    r = CliRunner().invoke(_cli(), ["admin", "create", "bad name!", "--db", f"sqlite:///{tmp_path}/x.db"])
    assert r.exit_code == 2


def test_serve_is_registered() -> None:
    r = CliRunner().invoke(_cli(), ["serve", "--help"])
    assert r.exit_code == 0
    for opt in ("--db", "--host", "--port", "--workers", "--metrics-public"):
        assert opt in r.output


def test_settings_round_trip_through_env() -> None:
    s = Settings(
        db_url="postgresql+psycopg://x@h/db", workers=3, metrics_public=True, heartbeat_interval_s=7.5
    )
    assert Settings.from_env(s.to_env()) == s


def test_log_config_redacts() -> None:
    cfg = log_config()
    assert all("redact" in h.get("filters", []) for h in cfg["handlers"].values())
