"""Alembic migrations: upgrade to head matches the models, downgrade and re-upgrade work.

SQLite runs by default; PostgreSQL is marked `services` (skips only when the server is unreachable).
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from microdc.control.db import Database, alembic_config, current_revision, downgrade
from microdc.control.models import Base


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _check(url: str) -> None:
    db = Database(url)
    try:
        db.migrate()
        db.migrate()  # idempotent
        assert current_revision(db.engine) == _head()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diffs == [], diffs
        tables = set(inspect(db.engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with db.session() as s:
            assert s.execute(text("SELECT last_seq FROM audit_head WHERE id = 1")).scalar() == 0
        downgrade(db.engine, "base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.migrate()
        assert current_revision(db.engine) == _head()
    finally:
        db.dispose()


def test_sqlite_migrations(tmp_path: Any) -> None:
    _check(f"sqlite:///{tmp_path}/m.db")


@pytest.mark.services
def test_postgres_migrations(pg_url: str) -> None:
    _check(pg_url)


def test_app_migrates_on_start(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from microdc.control.app import create_app

    from .conftest import test_settings

    url = f"sqlite:///{tmp_path}/start.db"
    app = create_app(test_settings(url))
    with TestClient(app) as c:
        assert c.get("/health").json()["database"] == "ok"
    db = Database(url)
    assert current_revision(db.engine) == _head()
    db.dispose()
