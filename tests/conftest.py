from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    """A private copy of the tiny scenario that a test may edit."""
    dst = tmp_path / "tiny"
    shutil.copytree(DATA / "tiny", dst)
    return dst
