"""Read YAML and remember where each value came from, so errors can name the line.

PyYAML's composed node tree carries line marks; we walk it once and record, for every path of
keys and indexes, the 1-based line of that value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


class SourceMap:
    """Maps a location path (as pydantic reports it) to (file, line)."""

    def __init__(self) -> None:
        self._lines: dict[Loc, tuple[str, int]] = {}

    def add(self, loc: Loc, file: str, line: int) -> None:
        self._lines[loc] = (file, line)

    def lookup(self, loc: Loc, default_file: str) -> tuple[str, int | None]:
        """The deepest recorded prefix of loc, so a missing field points at its parent."""
        for cut in range(len(loc), -1, -1):
            hit = self._lines.get(tuple(loc[:cut]))
            if hit is not None:
                return hit
        return default_file, None


def _walk(node: yaml.Node, loc: Loc, file: str, smap: SourceMap) -> None:
    smap.add(loc, file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            smap.add((*loc, key), file, key_node.start_mark.line + 1)
            _walk(value_node, (*loc, key), file, smap)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), file, smap)


class YamlSyntaxError(ValueError):
    def __init__(self, file: str, line: int | None, message: str):
        self.file, self.line, self.message = file, line, message
        super().__init__(f"{file}:{line}: {message}")


def load_yaml_with_lines(path: Path, smap: SourceMap, loc: Loc = ()) -> Any:
    """Parse a YAML file, recording line numbers of every value in smap under loc."""
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(str(path), line, f"YAML syntax error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(path), None, f"YAML error: {exc}") from None
    if node is not None:
        _walk(node, loc, str(path), smap)
    return data
