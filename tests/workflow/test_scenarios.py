"""Every scenario file shipped in local/scenarios runs to success (they feed the demo and
`python -m local.figures`), and the figures say what each kind of reset costs."""

from __future__ import annotations

import pytest

from local.figures import RUNS, measure


@pytest.mark.parametrize(("label", "scenario"), RUNS, ids=[label for label, _ in RUNS])
def test_scenario_succeeds(label: str, scenario: str) -> None:
    figure = measure(label, scenario)

    assert figure.status == "SUCCEEDED"
    online = "online" in label
    # Replace-root reboots the running instance once; it never stops it either.
    assert figure.stopped is not (online or "replace-root" in label)
    # Online is a handful of states; offline moves a volume through a helper.
    assert (figure.transitions < 12) if online else (figure.transitions > 20)
