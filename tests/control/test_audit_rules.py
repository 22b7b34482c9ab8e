"""Guard tests for audit verification: each way of tampering with the hash chain breaks exactly one named
check (``sequence``, ``link``, ``hash``, ``head``), and the report names that check and the entry's seq.

Mutants in tools/mutants/ops.toml disable each check in turn; these tests must then fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from microdc.cli.control_cmds import register
from microdc.control import audit
from microdc.control.db import Database

from .conftest import T0

N = 6


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/audit.db")
    database.migrate()
    for i in range(N):
        with database.session() as s:
            audit.append(s, actor="user:alice", action="thing.do", target=f"t:{i}", details={"i": i}, now=T0)
    return database


def _verify(db: Database) -> audit.VerifyResult:
    with db.read_session() as s:
        return audit.verify(s)


def _broken(db: Database, rule: str, seq: int) -> audit.VerifyResult:
    r = _verify(db)
    assert not r.ok, f"tampering not detected ({rule} at seq={seq})"
    assert r.reason.startswith(f"{rule}:"), r.reason
    assert r.first_bad_seq == seq, r
    assert f"seq={seq}" in r.describe() and rule in r.describe()
    return r


def _row(db: Database, seq: int) -> dict[str, object]:
    with db.read_session() as s:
        row = s.execute(text("SELECT * FROM audit_log WHERE seq = :q"), {"q": seq}).mappings().one()
    return dict(row)


def test_clean_chain_verifies(db: Database) -> None:
    r = _verify(db)
    assert r.ok and r.checked == N and r.first_bad_seq is None and r.reason == ""
    assert r.describe() == f"audit chain intact: {N} entries verified"


def test_edited_payload_breaks_the_hash(db: Database) -> None:
    with db.session() as s:
        s.execute(text("UPDATE audit_log SET details = :d WHERE seq = 3"), {"d": json.dumps({"i": 99})})
    _broken(db, "hash", 3)


def test_edited_hash_breaks_the_hash_check_at_that_entry(db: Database) -> None:
    with db.session() as s:
        s.execute(text("UPDATE audit_log SET hash = :h WHERE seq = 3"), {"h": "f" * 64})
    _broken(db, "hash", 3)  # not only the link of seq 4


def _rehash_entry_3(db: Database, secret: bytes | None) -> None:
    """Edit entry 3's details and recompute its hash: with `secret` (someone holding the audit key) as
    HMAC, without it as the plain SHA-256 anyone can compute."""
    row = _row(db, 3)
    fields = {k: row[k] for k in ("seq", "ts", "actor", "action", "target", "outcome", "client_ip")}
    fields["details"] = audit.canonical_json({"i": 99})
    prev = str(row["prev_hash"])
    kid = str(row["key_id"])
    new_hash = audit.keyed_hash(fields, prev, kid, secret) if secret else audit.legacy_hash(fields, prev)
    with db.session() as s:
        s.execute(
            text("UPDATE audit_log SET details = :d, hash = :h WHERE seq = 3"),
            {"d": fields["details"], "h": new_hash},
        )


def test_edited_and_rehashed_entry_breaks_the_link_of_the_next(db: Database) -> None:
    """Even someone with the key who recomputes the edited entry's hash is caught by the next link."""
    _rehash_entry_3(db, db.audit_keyring.current.hmac_key)
    _broken(db, "link", 4)


def test_rehash_without_the_key_breaks_the_hash(db: Database) -> None:
    """Without the audit key, a recomputed hash (plain SHA-256) does not match: caught at that entry."""
    _rehash_entry_3(db, None)
    _broken(db, "hash", 3)


def test_deleted_middle_entry_is_a_sequence_gap(db: Database) -> None:
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    r = _broken(db, "sequence", 4)
    assert "seq=5" in r.reason  # and says where the chain resumes


def test_reordered_entries_break_the_link(db: Database) -> None:
    with db.session() as s:  # swap entries 2 and 3 (their seq numbers)
        s.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = 2"))
        s.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        s.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = -1"))
    _broken(db, "link", 2)


def test_deleted_tail_disagrees_with_the_head(db: Database) -> None:
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = :q"), {"q": N})
    _broken(db, "head", N)


def test_cli_names_the_entry_and_the_check(db: Database, tmp_path: Path) -> None:
    """`microdc audit verify` (the control-plane commands, without importing the whole CLI)."""
    cli_app = typer.Typer()
    cli_app.callback()(lambda: None)
    register(cli_app)
    url = f"sqlite:///{tmp_path}/audit.db"
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["audit", "verify", "--db", url])
    assert ok.exit_code == 0, ok.output
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    bad = runner.invoke(cli_app, ["audit", "verify", "--db", url])
    assert bad.exit_code == 1
    assert "BROKEN at entry seq=2: sequence:" in bad.output
