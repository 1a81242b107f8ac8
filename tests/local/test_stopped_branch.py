"""A Parallel's branch that starts just after StopExecution (moto's race): it must end and tell
the Parallel, or the execution stays RUNNING for ever (seen as a 10-minute hang of an abort at
ReattachRootVolume)."""

from __future__ import annotations

from typing import Any

import pytest

from local.emulator import _branch_ends_when_stopped


class Env:
    def __init__(self, running: bool) -> None:
        self.running = running

    def is_running(self) -> bool:
        return self.running


class Worker:
    def __init__(self, env: Env) -> None:
        self.env = env
        self.terminated: list[Any] = []
        worker = self

        class Comm:
            def on_terminated(self, env: Env) -> None:
                worker.terminated.append(env)

        self._branch_worker_comm = Comm()


def moto_routine(self: Worker) -> None:
    # What moto's Program.eval raises when the program was stopped before the branch began.
    raise RuntimeError("Could not set NextState value when in state 'ProgramStopped'")


def test_a_branch_of_a_stopped_program_ends_and_tells_the_parallel() -> None:
    worker = Worker(Env(running=False))
    _branch_ends_when_stopped(moto_routine)(worker)
    assert worker.terminated == [worker.env]


def test_a_running_program_s_error_is_not_hidden() -> None:
    worker = Worker(Env(running=True))
    with pytest.raises(RuntimeError):
        _branch_ends_when_stopped(moto_routine)(worker)
    assert worker.terminated == []
