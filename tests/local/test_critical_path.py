"""local/critical_path.py follows the real definition and its Retry schedules, and every latency
it uses is stated with a source in docs/latencies.md."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from local import critical_path as cp
from statemachine import policies
from statemachine.definition import definition

DOCS = Path(__file__).resolve().parents[2] / "docs" / "latencies.md"


def _with_poll(asl: dict[str, Any], state: str, retrier: dict[str, Any]) -> dict[str, Any]:
    """A copy of the definition in which `state` (inside Prepare) polls with `retrier`."""
    changed = copy.deepcopy(asl)
    for branch in changed["States"]["Prepare"]["Branches"]:
        if state in branch["States"]:
            branch["States"][state]["Retry"][0] = retrier
    return changed


def test_a_poll_sees_the_change_at_its_first_attempt_after_it() -> None:
    asl = definition()
    # The instance stops 45 s after StopInstances (median): attempts every 60 s see it only
    # at the attempt 60 s later, where attempts every 1 s see it within about a second.
    slow = cp.ours("linux-offline", asl=_with_poll(asl, "WaitStopped", policies.poll(60, 5, 1, 60)))
    fast = cp.ours("linux-offline", asl=_with_poll(asl, "WaitStopped", policies.poll(1, 200, 1, 1)))
    moved = slow["downtime_s"] - fast["downtime_s"]
    assert 60 - 45 - 2 <= moved <= 60 - 45 + 2, moved


def test_a_poll_that_gives_up_before_the_change_is_reported() -> None:
    asl = _with_poll(definition(), "WaitStopped", policies.poll(1, 3, 1, 1))
    with pytest.raises(cp.ModelError, match="WaitStopped: gives up"):
        cp.ours("linux-offline", asl=asl)


def test_the_slowest_branch_of_a_parallel_ends_it() -> None:
    asl = definition()
    # The helper's SSM registration is in the helper's branch: in the pessimistic case it
    # outlasts the target's stop and detach, so the time after Prepare grows with it.
    path = cp.PATHS["linux-offline"]
    base = cp.ours("linux-offline", asl=asl, run=cp.Run(path, "pessimistic", cp.LATENCIES))
    later = dict(cp.LATENCIES)
    slow = cp.LATENCIES["ssm_online"]
    later["ssm_online"] = cp.Latency(slow.median, slow.pessimistic + 100, slow.source)
    slower = cp.ours("linux-offline", asl=asl, run=cp.Run(path, "pessimistic", later))
    # Within one 6 s poll interval of the 100 s added.
    assert 100 - 6 <= slower["total_s"] - base["total_s"] <= 100 + 6


def test_each_function_is_cold_on_its_first_invocation_only() -> None:
    run = cp.Run(cp.PATHS["linux-offline"], "median", cp.LATENCIES)
    _, first = run.invoke("CheckVolume", 0.0, 0.0)
    _, second = run.invoke("CheckVolume", 100.0, 0.0)
    assert run.cold_starts == 1
    assert first - 0.0 > second - 100.0 + run.cold_seconds("CheckVolume") * 0.99


def test_a_busy_environment_makes_a_concurrent_invocation_cold() -> None:
    run = cp.Run(cp.PATHS["linux-offline"], "median", cp.LATENCIES)
    run.invoke("CheckHelper", 0.0, 5.0)
    run.invoke("CheckHelper", 1.0, 0.0)
    assert run.cold_starts == 2


def test_every_task_on_every_path_is_modelled() -> None:
    for path in cp.PATHS:
        for case in cp.CASES:
            figures = cp.ours(path, case)
            assert figures["total_s"] > 0


def test_online_paths_never_stop_and_offline_paths_come_back_after_the_stop() -> None:
    for path, chosen in cp.PATHS.items():
        figures = cp.ours(path)
        if chosen.stops:
            assert 0 < figures["downtime_s"] < figures["back_in_service_s"]
        else:
            assert figures["downtime_s"] == figures["back_in_service_s"] == 0


def test_json_gives_each_path_and_case_its_three_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cp.main(["--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(cp.PATHS) <= set(table)
    for path, cases in table.items():
        assert set(cases) == set(cp.CASES), path
        for figures in cases.values():
            assert set(figures) == {"total_s", "downtime_s", "back_in_service_s"}, path
            assert all(isinstance(v, float) for v in figures.values())


def test_the_pessimistic_case_is_never_shorter() -> None:
    for name, latency in cp.LATENCIES.items():
        assert latency.pessimistic >= latency.median, name
    for path in cp.PATHS:
        assert cp.ours(path, "pessimistic")["total_s"] > cp.ours(path, "median")["total_s"]


def test_every_latency_has_a_source_stated_in_docs() -> None:
    text = DOCS.read_text()
    for name, latency in cp.LATENCIES.items():
        assert latency.source.startswith(("https://", "tests/", "local/", "statemachine/")), name
        row = re.search(rf"^\| `{name}` \|.*$", text, re.MULTILINE)
        assert row, f"docs/latencies.md has no row for {name}"
        assert latency.source.split(" ")[0] in row.group(0), name
        assert f"{latency.median:g}" in row.group(0), name
        assert f"{latency.pessimistic:g}" in row.group(0), name


def test_every_handler_has_a_measured_init_time() -> None:
    from statemachine.phases import FUNCTIONS

    assert {phase.handler for phase in FUNCTIONS} == set(cp.INIT_SECONDS)
