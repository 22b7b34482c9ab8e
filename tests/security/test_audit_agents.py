"""Every agent holds a copy of the latest signed audit checkpoint (from its heartbeat answer), off the
control plane's database: a rogue operator who truncates or wipes the log would have to reach every site
too. The copy is exported with `microdc agent-checkpoint` and checked by `microdc audit verify
--checkpoints`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from microdc.agent.state import State
from microdc.cli.agent_cmds import register as register_agent
from microdc.cli.control_cmds import register as register_control
from microdc.control import audit, checkpoints
from microdc.control.services import Services

from .conftest import Fleet


@pytest.fixture
def settings_kw(tmp_path: Path) -> dict[str, Any]:
    return {
        "audit_key_file": str(tmp_path / "audit.key"),
        "audit_checkpoint_dir": str(tmp_path / "published"),
    }


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register_control(app)
    register_agent(app)
    return app


def test_heartbeat_hands_out_a_signed_checkpoint_of_the_head(
    client: TestClient, fleet: Fleet, services: Services
) -> None:
    h = fleet.add_site("a", heartbeat=False)
    out = client.post("/api/v1/sites/a/heartbeat", json={}, headers=h).json()
    cp = checkpoints.Checkpoint.from_json(out["audit_checkpoint"], "heartbeat")
    checkpoints.check_signature(cp, services.db.audit_keyring, "heartbeat")
    with services.db.read_session() as s:
        head = s.execute(text("SELECT last_seq, last_hash FROM audit_head")).one()
        assert (cp.seq, cp.head_hash) == tuple(head) and cp.seq > 0
        assert audit.verify(s).ok


def test_agent_keeps_the_latest_and_flags_one_that_went_backwards(tmp_path: Path) -> None:
    st = State(tmp_path / "agent.db")
    try:
        cp5 = {"format": checkpoints.FORMAT, "seq": 5, "head_hash": "a" * 64, "signature": "x"}
        assert st.keep_audit_checkpoint(cp5) == "kept"
        assert st.keep_audit_checkpoint(cp5) == "same"
        assert st.keep_audit_checkpoint({**cp5, "seq": 9, "head_hash": "b" * 64}) == "kept"
        assert st.keep_audit_checkpoint({**cp5, "seq": 3}) == "older"  # the server's log shrank
        assert st.keep_audit_checkpoint({"seq": "x"}) == "invalid"
        kept = st.audit_checkpoint()
        assert kept is not None and kept["seq"] == 9
        assert st.counter("audit_checkpoint_regressions") == 1
    finally:
        st.close()


def test_an_agents_copy_catches_a_truncated_log(
    client: TestClient, fleet: Fleet, services: Services, tmp_path: Path
) -> None:
    h = fleet.add_site("a", heartbeat=False)
    fleet.add_site("b")  # more audited changes after a's heartbeat below
    out = client.post("/api/v1/sites/a/heartbeat", json={}, headers=h).json()
    st = State(tmp_path / "agent.db")
    assert st.keep_audit_checkpoint(out["audit_checkpoint"]) == "kept"
    st.close()
    seq = out["audit_checkpoint"]["seq"]
    folder = tmp_path / "from-agents"
    runner = CliRunner()
    res = runner.invoke(_cli(), ["agent-checkpoint", str(tmp_path / "agent.db"), "--out", str(folder)])
    assert res.exit_code == 0, res.output
    with services.db.session() as s:  # the rogue operator cuts the log back to before a's heartbeat
        s.execute(text("DELETE FROM audit_log WHERE seq >= :k"), {"k": seq - 2})
        last = s.execute(text("SELECT hash FROM audit_log WHERE seq = :k"), {"k": seq - 3}).scalar_one()
        s.execute(text("UPDATE audit_head SET last_seq = :k, last_hash = :h"), {"k": seq - 3, "h": last})
    db_url = services.settings.db_url
    args = ["audit", "verify", "--db", db_url, "--key-file", str(tmp_path / "audit.key"), "--checkpoints"]
    res = runner.invoke(_cli(), [*args, str(folder)])
    assert res.exit_code == 1, res.output
    assert "truncation:" in res.output and f"first bad sequence: {seq - 2}" in res.output


def test_checkpoints_are_published_on_demand_to_the_named_folder(
    client: TestClient, fleet: Fleet, services: Services, tmp_path: Path
) -> None:
    r = client.post("/api/v1/audit/checkpoints", headers=fleet.admin_h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["path"] is not None and Path(body["path"]).parent == tmp_path / "published"
    with services.db.read_session() as s:
        res = checkpoints.check_against(
            s, services.db.audit_keyring, checkpoints.load_folder(tmp_path / "published")
        )
    assert res.ok and res.checkpoints == 2
    # operators cannot sign checkpoints (admins only)
    from microdc.control.security import Role

    from .conftest import make_user

    assert (
        client.post("/api/v1/audit/checkpoints", headers=make_user(services, "op", Role.OPERATOR)).status_code
        == 403
    )
