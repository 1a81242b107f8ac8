"""One acceptance run: a throwaway instance whose key is lost, reset, logged into, deleted.

Every AWS request goes through the boto3 clients the caller's `clients` factory makes: in an
account those talk to AWS, in `make test` to the local engine (local/acceptance.py). What the
run makes is recorded the moment AWS returns its ID, and `clean_up` deletes it on every path
(success, a failed step, an AWS error, Ctrl-C).

This module runs the steps and records each outcome; the steps are in acceptance/steps.py, the
clean-up in acceptance/cleanup.py, the state and AWS helpers they share in acceptance/account.py
and the report in acceptance/report.py.
"""

from __future__ import annotations

from collections.abc import Callable

from acceptance.cleanup import CleanUp
from acceptance.report import Report, Skipped, explain
from acceptance.steps import Steps

STEPS = (
    "credentials",
    "stack",
    "image",
    "network",
    "security group",
    "connect endpoint",
    "key pair",
    "launch",
    "lose the key",
    "offline reset",
    "fetch key",
    "log in",
    "online reset",
)


class Run(Steps, CleanUp):
    """One acceptance run: the steps in order, then the clean-up on every path. `fault(step)` is
    called as each step starts (tests inject there)."""

    # -- the run ------------------------------------------------------------------------------
    def __call__(self) -> Report:
        started = self.clock()
        try:
            for name in STEPS:
                if not self._step(name, getattr(self, "_" + name.replace(" ", "_"))):
                    break
        finally:
            with self.shield():
                self.clean_up()
            self.report.seconds = self.clock() - started
        return self.report

    def _step(self, name: str, action: Callable[[], str]) -> bool:
        began = self.clock()
        self.echo(f"{name} ...")
        try:
            self.fault(name)
            detail = action()
        except KeyboardInterrupt:
            self.record(self.report.steps, name, "interrupted", began, "Ctrl-C: cleaning up")
            raise
        except Skipped as skipped:
            self.record(self.report.steps, name, "skipped", began, str(skipped))
            return True
        except Exception as error:  # noqa: BLE001 - every failure becomes one line and a clean-up
            self.record(self.report.steps, name, "failed", began, explain(error, name))
            return False
        self.record(self.report.steps, name, "ok", began, detail)
        return True
