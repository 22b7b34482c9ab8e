"""An audit trail that survives its own database: a rogue operator with write access to the database
(but not the audit key file, and not the checkpoints kept elsewhere) truncates, rewrites or wipes the
log. The keyed chain catches a rewrite; signed checkpoints published outside the database catch
truncation and wipe — and each report names the first bad sequence.

Rules: ``audit-keyed`` (HMAC-SHA256 with a key outside the database), ``audit-checkpoints`` (Ed25519
over seq, head hash, time, key id; `microdc audit verify --checkpoints DIR`).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import typer
from sqlalchemy import select, text
from typer.testing import CliRunner

from microdc.cli.control_cmds import register
from microdc.control import audit, checkpoints
from microdc.control.auditkeys import Keyring, KeyringError, load
from microdc.control.db import Database
from microdc.control.models import AuditEntry

from .conftest import T0

N = 8


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path}/audit.db", audit_key_file=tmp_path / "keys" / "audit.key")
    database.migrate()
    for i in range(N):
        with database.session() as s:
            audit.append(s, actor="user:alice", action="thing.do", target=f"t:{i}", details={"i": i}, now=T0)
    return database


def _publish(db: Database, folder: Path) -> checkpoints.Checkpoint:
    with db.read_session() as s:
        cp = checkpoints.of_head(s, db.audit_keyring, T0)
    checkpoints.publish(folder, cp)
    return cp


def _check(db: Database, folder: Path) -> checkpoints.CheckResult:
    with db.read_session() as s:
        return checkpoints.check_against(s, db.audit_keyring, checkpoints.load_folder(folder))


def _verify(db: Database) -> audit.VerifyResult:
    with db.read_session() as s:
        return audit.verify(s)


def _truncate(db: Database, keep: int) -> None:
    """Cut the tail and fix the head row to the new last entry: needs no key."""
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log WHERE seq > :k"), {"k": keep})
        last = s.execute(text("SELECT hash FROM audit_log WHERE seq = :k"), {"k": keep}).scalar_one()
        s.execute(text("UPDATE audit_head SET last_seq = :k, last_hash = :h"), {"k": keep, "h": last})


def _wipe(db: Database) -> None:
    with db.session() as s:
        s.execute(text("DELETE FROM audit_log"))
        s.execute(text("UPDATE audit_head SET last_seq = 0, last_hash = :g"), {"g": audit.GENESIS_HASH})


def _rewrite_without_key(db: Database, from_seq: int = 1) -> None:
    """Edit an entry and recompute every hash from there with plain SHA-256, the way someone without
    the key would (keeping the key_id column so the rows look keyed)."""
    with db.session() as s:
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
        prev = audit.GENESIS_HASH
        for e in rows:
            if e.seq == from_seq:
                e.actor = "user:mallory"
            if e.seq >= from_seq:
                e.prev_hash = prev
                fields = {k: getattr(e, k) for k in ("seq", "ts", "actor", "action", "target", "outcome")}
                fields |= {"client_ip": e.client_ip, "details": e.details}
                e.hash = audit.legacy_hash({**fields, "key_id": e.key_id}, prev)
            prev = e.hash
        s.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})


# --- the keyed chain ----------------------------------------------------------------------------------


def test_key_file_is_created_0600_outside_the_database(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    ring = load(path)
    assert ring.current_id == db.audit_keyring.current_id
    with db.read_session() as s:
        kids = set(s.scalars(select(AuditEntry.key_id)))
        dumped = "\n".join(str(r) for r in s.execute(text("SELECT * FROM audit_log")).all())
    assert kids == {ring.current_id}
    assert ring.current.hmac_key.hex() not in dumped


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    Keyring.ephemeral().save(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyringError, match=r"mode 644 lets others read it"):
        load(path)


def test_rewrite_without_the_key_is_caught_at_the_first_rewritten_entry(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    _publish(db, folder)
    _rewrite_without_key(db, from_seq=3)
    r = _verify(db)
    assert not r.ok and r.first_bad_seq == 3 and r.reason.startswith("hash:"), r
    c = _check(db, folder)  # the checkpoint disagrees too
    assert not c.ok and c.first_bad_seq == N and c.reason.startswith("rewrite:"), c


def test_rewrite_with_a_stolen_key_is_still_caught_by_the_checkpoints(db: Database, tmp_path: Path) -> None:
    """Even someone holding the key who recomputes every HMAC cannot re-sign the published checkpoints."""
    folder = tmp_path / "cp"
    _publish(db, folder)
    key = db.audit_keyring.current
    with db.session() as s:
        prev = audit.GENESIS_HASH
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            if e.seq == 2:
                e.action = "nothing.happened"
            e.prev_hash = prev
            e.hash = audit.keyed_hash(audit._fields(e), prev, key.id, key.hmac_key)
            prev = e.hash
        s.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    assert _verify(db).ok  # the chain alone cannot tell
    c = _check(db, folder)
    assert not c.ok and c.reason.startswith("rewrite:") and c.first_bad_seq == N


# --- truncation and wipe: only the checkpoints can tell ------------------------------------------------


def test_truncation_with_the_head_fixed_is_caught_by_a_checkpoint(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    _publish(db, folder)
    _truncate(db, keep=5)
    assert _verify(db).ok, "the chain alone cannot see a cut tail whose head row was fixed"
    c = _check(db, folder)
    assert not c.ok and c.first_bad_seq == 6 and c.reason.startswith("truncation:"), c
    assert "seq=5" in c.reason and f"seq={N}" in c.reason


def test_wipe_is_caught_by_a_checkpoint(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    _publish(db, folder)
    _wipe(db)
    assert _verify(db).ok and _verify(db).checked == 0
    c = _check(db, folder)
    assert not c.ok and c.first_bad_seq == 1 and c.reason.startswith("wipe:"), c


def test_an_older_checkpoint_still_catches_a_deeper_cut(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    _publish(db, folder)  # at seq N
    with db.session() as s:
        audit.append(s, actor="user:alice", action="more", now=T0)
    _publish(db, folder)  # at seq N+1; both files are kept
    assert sorted(p.name for p in folder.iterdir()) == [
        f"checkpoint-{N:012d}.json",
        f"checkpoint-{N + 1:012d}.json",
        "latest.json",
    ]
    assert _check(db, folder).ok
    _truncate(db, keep=3)
    c = _check(db, folder)
    assert not c.ok and c.first_bad_seq == 4


def test_a_forged_checkpoint_is_an_error_not_evidence(db: Database, tmp_path: Path) -> None:
    """Checkpoints are evidence only if their signature holds: a hand-edited one is reported, not used."""
    folder = tmp_path / "cp"
    _publish(db, folder)
    latest = folder / "latest.json"
    data = json.loads(latest.read_text())
    data["seq"] = 3  # pretend the log was shorter
    latest.write_text(json.dumps(data))
    c = _check(db, folder)
    assert not c.ok and c.reason.startswith("checkpoint:") and "signature does not verify" in c.reason
    other = Keyring.ephemeral()  # signed with a key that is not ours
    (folder / "latest.json").write_text(json.dumps(checkpoints.sign(other, N, "0" * 64, T0).to_json()))
    c = _check(db, folder)
    assert not c.ok and "not in the audit key file" in c.reason


def test_clean_chain_agrees_with_its_checkpoints(db: Database, tmp_path: Path) -> None:
    folder = tmp_path / "cp"
    _publish(db, folder)
    with db.session() as s:  # life goes on after the checkpoint
        audit.append(s, actor="user:alice", action="later", now=T0)
    assert _verify(db).ok
    c = _check(db, folder)
    assert c.ok and c.checkpoints == 2, c  # the numbered file and latest.json


# --- the CLI: `microdc audit verify --checkpoints DIR` -------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    return app


@pytest.mark.parametrize(
    ("attack", "first_bad", "check"),
    [
        ("truncate", 6, "truncation:"),
        ("wipe", 1, "wipe:"),
        ("rewrite", 2, "hash:"),
    ],
)
def test_cli_verify_names_the_attack_and_the_first_bad_sequence(
    db: Database, tmp_path: Path, attack: str, first_bad: int, check: str
) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    key = str(tmp_path / "keys" / "audit.key")
    folder = tmp_path / "cp"
    runner = CliRunner()
    out = runner.invoke(
        _cli(), ["audit", "checkpoint", "--db", url, "--key-file", key, "--checkpoints", str(folder)]
    )
    assert out.exit_code == 0, out.output
    args = ["audit", "verify", "--db", url, "--key-file", key, "--checkpoints", str(folder)]
    ok = runner.invoke(_cli(), args)
    assert ok.exit_code == 0 and "checkpoints agree" in ok.output, ok.output
    {
        "truncate": lambda: _truncate(db, 5),
        "wipe": lambda: _wipe(db),
        "rewrite": lambda: _rewrite_without_key(db, 2),
    }[attack]()
    bad = runner.invoke(_cli(), args)
    assert bad.exit_code == 1, bad.output
    assert check in bad.output and f"first bad sequence: {first_bad}" in bad.output, bad.output


def test_cli_verify_without_the_key_file_says_so(db: Database, tmp_path: Path) -> None:
    out = CliRunner().invoke(
        _cli(),
        ["audit", "verify", "--db", f"sqlite:///{tmp_path}/audit.db", "--key-file", str(tmp_path / "no")],
    )
    assert out.exit_code == 2 and "not found" in out.output


def test_rotated_key_keeps_old_entries_verifiable(db: Database, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    key = tmp_path / "keys" / "audit.key"
    old = db.audit_keyring.current_id
    db.dispose()
    out = CliRunner().invoke(_cli(), ["audit", "rotate-key", "--db", url, "--key-file", str(key)])
    assert out.exit_code == 0, out.output
    ring = load(key)
    assert ring.current_id != old and old in ring.keys
    db2 = Database(url, audit_key_file=key)
    with db2.session() as s:
        audit.append(s, actor="user:alice", action="after.rotation", now=T0)
    with db2.read_session() as s:
        kids = [k for (k,) in s.execute(select(AuditEntry.key_id).order_by(AuditEntry.seq))]
        r = audit.verify(s)
    assert r.ok and kids[:N] == [old] * N and kids[-1] == ring.current_id
    with db2.read_session() as s:
        [rot] = s.scalars(select(AuditEntry).where(AuditEntry.action == "audit.key_rotated"))
    assert json.loads(rot.details) == {"old_key_id": old, "new_key_id": ring.current_id}


# --- migration of a plain SHA-256 chain ---------------------------------------------------------------


def _legacy_chain(url: str, n: int) -> None:
    """A chain as versions before keying wrote it: schema 0002, plain SHA-256, no key_id column."""
    from microdc.control.db import make_engine, run_migrations

    engine = make_engine(url)
    run_migrations(engine, "0002")
    prev = audit.GENESIS_HASH
    with engine.begin() as conn:
        for seq in range(1, n + 1):
            fields = {
                "seq": seq,
                "ts": T0.isoformat(),
                "actor": "user:old",
                "action": "old.thing",
                "target": "",
                "outcome": "success",
                "client_ip": "",
                "details": "{}",
            }
            h = audit.legacy_hash(fields, prev)
            conn.execute(
                text(
                    "INSERT INTO audit_log (seq, ts, actor, action, target, outcome, client_ip, details, "
                    "prev_hash, hash) VALUES (:seq, :ts, :actor, :action, :target, :outcome, :client_ip, "
                    ":details, :prev, :h)"
                ),
                {**fields, "prev": prev, "h": h},
            )
            prev = h
        conn.execute(text("UPDATE audit_head SET last_seq = :n, last_hash = :h"), {"n": n, "h": prev})
    engine.dispose()


def test_legacy_chain_is_rekeyed_once_with_an_audit_entry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    _legacy_chain(url, 4)
    key = tmp_path / "audit.key"
    db = Database(url, audit_key_file=key)
    db.migrate()
    with db.read_session() as s:
        assert audit.verify(s).ok
        rows = list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    assert [e.key_id for e in rows] == [db.audit_keyring.current_id] * 5
    assert rows[-1].action == "audit.rekeyed"
    details = json.loads(rows[-1].details)
    assert details["rekeyed_entries"] == 4 and details["legacy_chain"] == "intact"
    assert details["legacy_head_seq"] == 4 and len(details["legacy_head_sha256"]) == 64
    assert load(key).legacy_rekeyed
    db.migrate()  # idempotent
    with db.read_session() as s:
        assert audit.verify(s).ok and audit.verify(s).checked == 5


def test_a_plain_entry_after_rekeying_is_a_rewrite_not_a_legacy_entry(tmp_path: Path) -> None:
    """Downgrade attack: rewrite the whole log as 'legacy' plain SHA-256 and hope it is re-keyed."""
    url = f"sqlite:///{tmp_path}/old.db"
    _legacy_chain(url, 3)
    key = tmp_path / "audit.key"
    db = Database(url, audit_key_file=key)
    db.migrate()
    with db.session() as s:
        prev = audit.GENESIS_HASH
        for e in s.scalars(select(AuditEntry).order_by(AuditEntry.seq)):
            e.key_id = None
            e.prev_hash = prev
            e.hash = audit.legacy_hash(audit._fields(e), prev)
            prev = e.hash
        s.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    db.dispose()
    db = Database(url, audit_key_file=key)
    db.migrate()  # must not launder it
    with db.read_session() as s:
        r = audit.verify(s)
    assert not r.ok and r.first_bad_seq == 1 and r.reason.startswith("key:"), r


def test_broken_legacy_chain_is_rekeyed_but_the_break_is_recorded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    _legacy_chain(url, 4)
    from microdc.control.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2"))
    engine.dispose()
    db = Database(url, audit_key_file=tmp_path / "audit.key")
    db.migrate()
    with db.read_session() as s:
        [e] = s.scalars(select(AuditEntry).where(AuditEntry.action == "audit.rekeyed"))
    assert e.outcome == "warning"
    assert "BROKEN at entry seq=2: hash:" in json.loads(e.details)["legacy_chain"]
