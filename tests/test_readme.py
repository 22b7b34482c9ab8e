"""The README's first screen: exactly two set-up commands, and CI runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _first_screen_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = text.split("\n---\n", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", first_screen, flags=re.S)]


def test_readme_gives_exactly_two_setup_commands() -> None:
    cmds = _first_screen_commands()
    assert len(cmds) == 2, cmds
    run, test = cmds
    assert "\n" not in run and "\n" not in test
    assert run.endswith("microdc run") and "-c constraints.txt" in run
    assert test.endswith("python -m pytest") and "-c constraints.txt" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test = _first_screen_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f'bash -c "{test}"' in ci


def test_constraints_pin_every_tool_that_has_broken_ci() -> None:
    pins = {
        line.split("==")[0].lower()
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    }
    for tool in ("pytest", "schemathesis", "hypothesis", "ruff", "mypy", "pip", "numpy", "highspy"):
        assert tool in pins, f"constraints.txt does not pin {tool}"
