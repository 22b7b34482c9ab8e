"""Write the generated scenario reference into docs/scenario.md (or, with --check, fail if it is stale).

    python tools/scenario_docs.py [--check]

The reference comes from the pydantic model (`microdc.model.reference`); the how-to around it is
hand-written. tests/model/test_scenario_docs.py runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path

from microdc.model.reference import replace_reference, scenario_reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "scenario.md"


def main(check: bool) -> int:
    current = DOC.read_text(encoding="utf-8")
    fresh = replace_reference(current, scenario_reference())
    if fresh == current:
        return 0
    if check:
        print(f"{DOC} is stale: run python tools/scenario_docs.py", file=sys.stderr)
        return 1
    DOC.write_text(fresh, encoding="utf-8")
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
