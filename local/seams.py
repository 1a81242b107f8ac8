"""What the engine hands each Lambda invocation in place of AWS's: the context object, and the
seams on it (lambdas/runtime.py's Seams): the scenario's faults, the janitor's clock, the
phases' scaled sleeps.

Apart from the run loop (local/engine.py) because these decide what a handler sees while it
runs, not how executions are started and watched.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lambdas.logic.janitor import Clock
from lambdas.runtime import Seams
from local.emulator import RETRY_TIME_SCALE
from local.scenario import Fault, Scenario


@dataclass
class LambdaContext:
    """The part of the Lambda context object Powertools reads, and the engine's seams."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    seams: Seams = field(default_factory=Seams)


@dataclass
class FunctionRef:
    """A function by name, as moto's invoker passes it (the janitor is invoked this way)."""

    function_name: str
    # Where it is deployed (moto's functions carry both): the engine's home unless named.
    account_id: str = "123456789012"
    region: str = "us-east-1"


class Faults:
    """The scenario's faults, each raised at its state and side as many times as it says; the
    `fault` seam. Handlers of concurrent executions call it from several threads."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._left = [fault.times for fault in scenario.faults]
        # For faults of one instance (a fleet's child): the execution running in this thread,
        # and the scenario's instance IDs (child names end with the instance's ID).
        self.execution: Callable[[], str | None] = lambda: None
        self.ids: dict[str, str] = {}

    def reset(self) -> None:
        """Every fault fires its full number of times again (the next execution)."""
        self._left = [fault.times for fault in self.scenario.faults]

    @contextlib.contextmanager
    def instead(self, *faults: Fault) -> Iterator[None]:
        """These faults, instead of the scenario's, inside the block."""
        saved = self.scenario.faults
        self.scenario.faults = list(faults)
        self._left = [fault.times for fault in faults]
        try:
            yield
        finally:
            self.scenario.faults = saved
            self._left = [fault.times for fault in saved]

    def __call__(self, state: str, when: str) -> None:
        from lambdas.errors import InjectedFault

        with self._lock:
            for index, fault in enumerate(self.scenario.faults):
                if (
                    fault.state == state
                    and fault.when == when
                    and self._left[index] > 0
                    and self._applies(fault)
                ):
                    self._left[index] -= 1
                    error = InjectedFault(f"injected {fault.error} {when} the side effect")
                    error.error_name = fault.error  # type: ignore[attr-defined]
                    raise error

    def _applies(self, fault: Fault) -> bool:
        if fault.instance is None:
            return True
        execution = self.execution() or ""
        return execution.endswith(self.ids.get(fault.instance, "?"))


def scaled_sleep(seconds: float) -> None:
    """The handlers' waits for propagation last the Retry's fraction of AWS's time here."""
    time.sleep(seconds * RETRY_TIME_SCALE)


def skipped_time_clock(settle: Callable[[], None]) -> Clock:
    """The janitor's clock here: its waits take no time, but count against its 15 minutes,
    so a world that never settles ends the janitor as it would in AWS. Each wait first lets
    the phases still running finish (settle), as the same wait would in AWS."""
    skipped = [0.0]

    def sleep(seconds: float) -> None:
        settle()
        skipped[0] += seconds

    return Clock(
        now=lambda: time.time() + skipped[0], sleep=sleep, remaining=lambda: 900.0 - skipped[0]
    )
