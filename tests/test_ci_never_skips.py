"""With CI set, a test whose service is missing must fail naming the service, never skip (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CASE = """
import pytest

def test_needs_broker():
    pytest.skip("no MQTT broker on 127.0.0.1:1883: connection refused")

@pytest.fixture
def pg():
    pytest.skip("PostgreSQL unreachable at postgresql://127.0.0.1:5432/test")

def test_needs_pg(pg):
    pass

@pytest.mark.xfail(reason="a known bug stays an expected failure")
def test_known_bug():
    assert False
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_case.py").write_text(CASE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_in_ci_a_missing_service_fails_and_names_it(tmp_path: Path) -> None:
    r = _run(tmp_path, "true")
    assert r.returncode == 1, r.stdout
    assert (
        "FAILED test_case.py::test_needs_broker - CI is set, so this test may not skip: no MQTT broker"
        in r.stdout
    )
    assert (
        "test_case.py::test_needs_pg - CI is set, so this test may not skip: PostgreSQL unreachable"
        in r.stdout
    )
    assert "XFAIL test_case.py::test_known_bug" in r.stdout
    assert " skipped" not in r.stdout.splitlines()[-1]


def test_outside_ci_a_missing_service_skips(tmp_path: Path) -> None:
    for ci in (None, "", "0", "false"):
        r = _run(tmp_path, ci)
        assert r.returncode == 0, r.stdout
        assert "2 skipped, 1 xfailed" in r.stdout.splitlines()[-1]
