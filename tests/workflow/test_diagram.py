"""The README's workflow diagram is the definition's: every state and transition, and no drift."""

from __future__ import annotations

import re
from pathlib import Path

from statemachine import diagram
from statemachine.definition import definition
from statemachine.states import walk

EDGE = re.compile(r"^\s*(\S+) --> (\S+?)(?::.*)?$")


def test_the_readme_shows_the_diagram_of_the_definition_as_it_is() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    shown = diagram.in_readme(readme)
    assert shown is not None, "README.md lost its workflow diagram markers"
    assert shown == diagram.readme_block(diagram.mermaid()), "run `make diagram`"


def test_every_transition_of_the_definition_is_drawn_and_nothing_else() -> None:
    states = definition()["States"]
    wanted = {("[*]", "Preflight")}
    for name, state in walk(states):
        targets = [rule["Next"] for rule in state.get("Choices", ())]
        targets += [c["Next"] for c in state.get("Catch", ())]
        targets += [state[key] for key in ("Next", "Default") if key in state]
        if state.get("End") or state["Type"] in ("Succeed", "Fail"):
            targets.append("[*]")
        wanted |= {(name, target) for target in targets}
        for branch in state.get("Branches", ()):
            wanted.add(("[*]", branch["StartAt"]))
    drawn = {
        (match[1], match[2])
        for line in diagram.mermaid().splitlines()
        if (match := EDGE.match(line))
    }
    assert drawn == wanted


def test_choices_show_their_rule_and_failed_ends_are_marked() -> None:
    text = diagram.mermaid()
    assert "Route --> DryRunPlan: Action = dry-run" in text
    assert "OnlineFailed --> FallBackOffline: OfflineFallback = true" in text
    assert "Route --> Prepare: otherwise" in text
    assert "class Failed,FailedUnrecorded,PreflightFailed,Refused failed" in text
