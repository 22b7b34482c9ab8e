"""Every problem found in a scenario, each naming where it is and what was expected.

Loading collects all problems before it stops, so a user fixes a file in one pass instead of one
error per run (NetBox-style validation that stops at the first error is what we avoid).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (file, line, field) and what was expected."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" [{self.field}]" if self.field else ""
        return f"{where}{field}: {self.message}"


class ScenarioError(ValueError):
    """Raised when a scenario has one or more problems; carries all of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
