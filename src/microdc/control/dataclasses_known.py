"""Rule ``unknown-data-class``: a workload names one of the data classes the control plane was set up
with (a scenario's ``policies.data_classes``; setting `data_classes`, which `microdc serve --scenario`
fills). A typo such as ``personnal`` would otherwise be placed under no class's policy at all.
With no classes configured every class is accepted (the control plane has no policy to check against).
"""

from __future__ import annotations

from microdc.control.problems import ProblemError

RULE = "unknown-data-class"


def check(data_class: str, known: tuple[str, ...]) -> None:
    if known and data_class not in known:
        raise ProblemError(
            422,
            f"{RULE}: data_class {data_class!r} is not one of the configured classes "
            f"({', '.join(sorted(known))})",
            slug=RULE,
            title="Unknown data class",
            rule=RULE,
            field="data_class",
            known=sorted(known),
        )
