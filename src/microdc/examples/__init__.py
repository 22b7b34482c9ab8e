"""Built-in example scenarios shipped inside the package (`microdc examples`)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent


def list_examples() -> dict[str, str]:
    """name → one-line description, read from each scenario's `description`."""
    import yaml

    out: dict[str, str] = {}
    for path in sorted(EXAMPLES_DIR.glob("*/scenario.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out[path.parent.name] = " ".join(str(data.get("description", "")).split())
    return out


def resolve_scenario(name_or_path: str) -> Path:
    """An example name (`melbourne`) or a path to a scenario YAML / folder."""
    candidate = EXAMPLES_DIR / name_or_path / "scenario.yaml"
    if "/" not in name_or_path and candidate.is_file():
        return candidate
    return Path(name_or_path)
