from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

DATA = Path(__file__).parent / "data"


def in_ci() -> bool:
    """CI is set (GitHub Actions, GitLab, our `.ci/run`): every test must really run there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# Property tests explore new random examples on every local run (that is how they find bugs); in CI they
# replay one fixed sequence, so a red CI names a change, not the draw of the day, and the mutation check
# kills the same mutants every time. A failing example is printed with the blob that reproduces it.
settings.register_profile("ci", derandomize=True, print_blob=True)
if in_ci():
    settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With CI set, a test that skips (a service, binary or library it needs is missing) fails instead,
    with the skip's reason, which names what is missing; a green CI run then means everything ran."""
    outcome = yield
    rep: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not in_ci() or not rep.skipped or hasattr(rep, "wasxfail"):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = f"CI is set, so this test may not skip: {reason.removeprefix('Skipped: ')}"


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A private copy of the tiny scenario that a test may edit."""
    dst = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", dst)
    return dst
