"""The mutation tool must not be able to pass vacuously: stale mutants are errors, survivors fail the run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutate_tool", ROOT / "tools" / "mutate.py")
assert spec is not None and spec.loader is not None
mutate = importlib.util.module_from_spec(spec)
sys.modules["mutate_tool"] = mutate
spec.loader.exec_module(mutate)

RULES = "src/microdc/policy/rules.py"


def _toml(
    tmp_path: Path, find: str, replace: str, tests: str = '["tests/policy/test_policy_rules.py"]'
) -> Path:
    p = tmp_path / "m.toml"
    p.write_text(
        f'[[mutant]]\nrule = "demo"\nfile = "{RULES}"\nfind = """{find}"""\nreplace = """{replace}"""\n'
        f"tests = {tests}\n",
        encoding="utf-8",
    )
    return p


def test_every_mutant_file_in_the_repo_loads_and_matches_the_code() -> None:
    mutants = mutate.load_mutants(sorted((ROOT / "tools" / "mutants").glob("*.toml")))
    assert len(mutants) >= 50
    assert len({(m.file, m.find, m.replace) for m in mutants}) == len(mutants), "duplicate mutants"


def test_a_mutant_whose_text_is_gone_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(mutate.MutantError, match="occurs 0 times"):
        mutate.load_mutants([_toml(tmp_path, "this text is not in rules.py", "x")])


def test_a_mutant_that_changes_nothing_is_an_error(tmp_path: Path) -> None:
    find = "return np.asarray(ok_proc & ok_store)"
    with pytest.raises(mutate.MutantError, match="nothing is mutated"):
        mutate.load_mutants([_toml(tmp_path, find, find)])


def test_a_mutant_without_tests_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(mutate.MutantError, match="non-empty list"):
        mutate.load_mutants([_toml(tmp_path, "return np.asarray(ok_proc & ok_store)", "x", tests="[]")])


@pytest.mark.slow
def test_a_surviving_mutant_fails_the_run_and_a_killed_one_passes(tmp_path: Path) -> None:
    # the store rule is not guarded by the geometry tests: that mutant must survive and fail the run
    unguarded = _toml(
        tmp_path,
        "return np.asarray(ok_proc & ok_store)",
        "return np.asarray(ok_proc)",
        '["tests/physics/test_geo.py"]',
    )
    assert mutate.main([str(unguarded), "--jobs", "1"]) == 1
    guarded = _toml(tmp_path, "return np.asarray(ok_proc & ok_store)", "return np.asarray(ok_proc)")
    assert mutate.main([str(guarded), "--jobs", "1"]) == 0
