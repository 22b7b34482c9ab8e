"""Engine, sessions and migrations. One `Database` per app; nothing is created at import time.

SQLite: WAL journal, foreign keys on, and every transaction starts with ``BEGIN IMMEDIATE`` so that
writers (including audit-log appends) are serialized across threads and processes.
PostgreSQL: psycopg 3; migrations hold an advisory lock so concurrent starts don't race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from microdc.control.auditkeys import Keyring, default_key_path, load_or_create

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK_KEY = 0x6D6463  # "mdc"


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            readonly = conn.get_execution_options().get("mdc_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    # no pre-ping: it costs a round trip per checkout; a connection that died is invalidated on first use
    return create_engine(url, pool_size=pool_size, max_overflow=max(2, pool_size // 2), pool_recycle=1800)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def run_migrations(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision` (idempotent)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


class Database:
    """Engine plus session factory for one app instance, and the audit keyring its sessions append with.

    The keyring is read (or created, 0600) from `audit_key_file` on first use — default: see
    `auditkeys.default_key_path`. Sessions carry the Database in ``session.info["microdc_db"]``.
    """

    def __init__(self, url: str, *, pool_size: int = 20, audit_key_file: str | Path | None = None) -> None:
        self.url = url
        self.audit_key_file = Path(audit_key_file) if audit_key_file else default_key_path(url)
        self._keyring: Keyring | None = None
        self._keyring_lock = threading.Lock()
        self.engine = make_engine(url, pool_size=pool_size)
        info = {"microdc_db": self}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self.read_sessions = sessionmaker(
            self.engine.execution_options(mdc_readonly=True), expire_on_commit=False, info=info
        )
        # single-statement lookups (authentication) on PostgreSQL skip BEGIN/COMMIT round trips
        self.lookup_sessions = (
            sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False, info=info
            )
            if self.engine.dialect.name == "postgresql"
            else self.read_sessions
        )

    @property
    def audit_keyring(self) -> Keyring:
        with self._keyring_lock:
            if self._keyring is None:
                path = self.audit_key_file
                self._keyring = Keyring.ephemeral() if path is None else load_or_create(path)
            return self._keyring

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Upgrade the schema, then re-key a chain written before audit keying (once; see audit.py)."""
        from microdc.control.audit import rekey_legacy

        run_migrations(self.engine)
        ring = self.audit_keyring
        with self.session() as s:
            rekeyed = rekey_legacy(s, ring)
        if rekeyed and ring.path is not None:
            ring.save()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: commit on success, roll back on error."""
        with self.sessions() as s, s.begin():
            yield s

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only unit of work (on SQLite a deferred BEGIN, so readers don't queue behind writers)."""
        with self.read_sessions() as s, s.begin():
            yield s

    @contextmanager
    def lookup_session(self) -> Iterator[Session]:
        """For one read-only statement: autocommit on PostgreSQL, a deferred transaction on SQLite."""
        if self.lookup_sessions is self.read_sessions:
            with self.read_session() as s:
                yield s
        else:
            with self.lookup_sessions() as s:
                yield s

    def dispose(self) -> None:
        self.engine.dispose()
