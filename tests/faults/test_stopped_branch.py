"""A changing phase of a stopped Parallel branch whose invocation starts only after the failure
path looked (lambdas/logic/inflight.py's fence): the order AWS allows, held here on purpose."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from lambdas.names import STACK_NAME
from local.engine import Engine
from statemachine import phases
from statemachine.phases import Phase
from tests.faults.test_fault_matrix import REPLACE_ROOT, assert_invariants
from tests.support.workflow import RunScenario

Step = Callable[[], None]


def _hold(engine: Engine, phase: Phase, state: str, before: Step, after: Step) -> list[str]:
    """Runs before and after each invocation for `state` of the phase's function; returns the
    list of how each ended ("returned" or its error's name)."""
    function = f"{STACK_NAME}-{phase.name}"
    real = engine.handlers[function].handler
    ended: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        if event.get("state") != state:
            return real(event, context)
        before()
        try:
            result = real(event, context)
            ended.append("returned")
            return result
        except Exception as error:
            ended.append(type(error).__name__)
            raise
        finally:
            after()

    engine.handlers[function] = SimpleNamespace(handler=handler)
    return ended


def test_a_phase_of_a_stopped_branch_starting_after_rollback_looked_changes_nothing(
    run_scenario: RunScenario,
) -> None:
    # AWS: an invocation dispatched before its branch stopped may start later, after Rollback
    # read the in-flight marks. Held here in that order: CopyRootVolume is dispatched before
    # PrepareNetworkForCopy fails and starts once Rollback's first invocation ended (it looked);
    # CleanUpAfterFailure starts once the copy's invocation ended, so nothing else hides it.
    copy_dispatched, rolled_back, copy_ended = (threading.Event() for _ in range(3))
    timed_out: list[str] = []
    copies: list[list[str]] = []

    def wait_for(event: threading.Event, what: str) -> Step:
        return lambda: None if event.wait(60) else timed_out.append(what)

    def dispatch_copy() -> None:
        copy_dispatched.set()
        wait_for(rolled_back, "Rollback")()

    def prepare(engine: Engine) -> None:
        def nothing() -> None:
            return None

        waits = wait_for(copy_dispatched, "CopyRootVolume's dispatch")
        _hold(engine, phases.PREPARE_NETWORK, "PrepareNetworkForCopy", waits, nothing)
        copies.append(
            _hold(engine, phases.COPY_ROOT_VOLUME, "CopyRootVolume", dispatch_copy, copy_ended.set)
        )
        _hold(engine, phases.ROLLBACK, "Rollback", nothing, rolled_back.set)
        waits = wait_for(copy_ended, "CopyRootVolume's end")
        _hold(engine, phases.CLEANUP, "CleanUpAfterFailure", waits, nothing)

    run = run_scenario(
        input=REPLACE_ROOT,
        faults=[{"state": "PrepareNetworkForCopy", "when": "before", "error": "InjectedFault"}],
        prepare=prepare,
    )

    assert timed_out == [], timed_out
    assert run.report["status"] == "FAILED"
    assert_invariants(run, "PrepareNetworkForCopy")
    # The late invocation ran, and the fence stopped it before its side effect: no copy.
    assert copies == [["BranchStopped"]], copies
    assert run.report["api_calls"].get("ec2:CopyVolumes", 0) == 0, run.report["api_calls"]
    assert [j.get("Action") for j in run.report["janitor"]] == ["none"], run.report["janitor"]
