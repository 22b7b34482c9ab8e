"""Hash-chained audit log: verification catches edits, deletions and reordering; appends never fork."""

from __future__ import annotations

import threading
from typing import Any

import typer
from sqlalchemy import text
from typer.testing import CliRunner

from microdc.cli.control_cmds import register
from microdc.control import audit
from microdc.control.db import Database

from .conftest import T0


def _fill(db: Database, n: int = 6) -> None:
    for i in range(n):
        with db.session() as s:
            audit.append(
                s, actor="user:alice", action="thing.do", target=f"t:{i}", details={"i": i, "x": 1.5}, now=T0
            )


def _db(tmp_path: Any) -> Database:
    db = Database(f"sqlite:///{tmp_path}/audit.db")
    db.migrate()
    return db


def _verify(db: Database) -> audit.VerifyResult:
    with db.read_session() as s:
        return audit.verify(s)


def test_chain_links_and_verifies(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    r = _verify(db)
    assert r.ok and r.checked == 6
    with db.read_session() as s:
        rows = s.execute(text("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")).all()
    assert rows[0][1] == audit.GENESIS_HASH
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, len(rows)))


def test_detects_an_edited_entry(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    with db.session() as s:
        s.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 3"))
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 3 and "edited" in r.reason


def test_detects_a_deleted_entry(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 4 and "missing" in r.reason


def test_detects_a_deleted_entry_renumbered(tmp_path: Any) -> None:
    """Deleting an entry and renumbering the rest still breaks the links."""
    db = _db(tmp_path)
    _fill(db)
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
        for seq in range(3, 7):
            s.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": seq - 1, "o": seq})
        s.execute(text("UPDATE audit_head SET last_seq = 5"))
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 2


def test_detects_a_deleted_tail(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 6"))
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 6 and "tail" in r.reason


def test_detects_reordered_entries(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    with db.session() as s:  # swap entries 2 and 3
        s.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = 2"))
        s.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        s.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = -1"))
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 2 and "reordered" in r.reason


def test_concurrent_appends_never_fork(tmp_path: Any) -> None:
    db = _db(tmp_path)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(15):
                with db.session() as s:
                    audit.append(s, actor=f"w{k}", action="race", details={"i": i})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    r = _verify(db)
    assert r.ok and r.checked == 90


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test app"""

    register(app)
    return app


def test_cli_audit_verify_exit_codes(tmp_path: Any) -> None:
    db = _db(tmp_path)
    _fill(db)
    url = f"sqlite:///{tmp_path}/audit.db"
    runner = CliRunner()
    ok = runner.invoke(_cli(), ["audit", "verify", "--db", url])
    assert ok.exit_code == 0 and "6 entries verified" in ok.output
    with db.session() as s:
        s.execute(text("UPDATE audit_log SET details = :d WHERE seq = 5"), {"d": '{"i":99}'})
    bad = runner.invoke(_cli(), ["audit", "verify", "--db", url])
    assert bad.exit_code == 1
    assert "seq=5" in bad.output
