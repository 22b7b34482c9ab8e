"""The folder layout is the architecture: lower layers never import higher ones.

Checked statically (every `import`, including ones inside functions), so a lazy import cannot hide a
dependency that would pull the control plane into a site install.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "microdc"

# what each package may import from microdc (besides itself)
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),  # the bottom: both sides of the wire and the scenario read it
    # protocol: a scenario declares workloads with the API's own model (WorkloadIn);
    # physics: ASHRAE envelopes and psychrometrics are constants/pure functions of physics
    "model": {"physics", "protocol"},
    "physics": {"model"},
    "policy": {"model", "physics"},
    "placement": {"model", "physics", "policy"},
    "sim": {"model", "physics", "policy", "placement"},
    "agent": {"model", "physics", "policy", "protocol"},
    "control": {"model", "physics", "policy", "protocol", "placement", "report", "cli"},
    "report": {"model", "physics", "policy", "placement", "sim"},
    "sweep": {"model", "physics", "policy", "placement", "sim", "report", "examples"},
    "demo": {"model", "physics", "policy", "protocol", "placement", "sim", "agent", "control"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "microdc" and len(parts) > 1:
                found.add(parts[1])
    return found


def _violations(package: str) -> list[str]:
    allowed = ALLOWED[package] | {package}
    problems = []
    for path in sorted((SRC / package).rglob("*.py")):
        bad = {
            p for p in _imports(path) - allowed if (SRC / p).is_dir() or (SRC / f"{p}.py").exists()
        }
        # `control/__main__.py` is an entry point (python -m microdc.control), not part of the library
        if package == "control" and path.name == "__main__.py":
            bad -= {"cli"}
        if bad:
            problems.append(f"{path.relative_to(SRC)} imports microdc.{', microdc.'.join(sorted(bad))}")
    return problems


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layer_imports_only_lower_layers(package: str) -> None:
    assert _violations(package) == []


def test_site_agent_never_imports_the_control_plane() -> None:
    assert "control" not in ALLOWED["agent"] and "control" not in ALLOWED["protocol"]
    for path in (SRC / "agent").rglob("*.py"):
        assert "control" not in _imports(path), path


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from microdc.control.app import create_app\n    import microdc.report\n")
    assert _imports(f) == {"control", "report"}
