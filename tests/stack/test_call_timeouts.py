"""A slow AWS call must fail inside its function, and a function that times out is retried.

botocore's defaults (60 s connect, 60 s read, several attempts) outlive a 20 s function: Lambda
kills it, and Step Functions reports the error Lambda gives a timeout ("Sandbox.Timedout"; AWS
Step Functions Developer Guide, "Handle Lambda service exceptions": unhandled errors such as
function timeouts are reported as "Lambda.Unknown"), which no Retry named. So each function's
clients are cut to fit its timeout (lambdas/runtime.py), and every Task retries those errors.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas import runtime
from statemachine.definition import tasks
from tests.support.synth import Synth, functions_by_handler

TIMEOUT_VARIABLE = "FUNCTION_TIMEOUT_SECONDS"
LAMBDA_TIMEOUT_ERRORS = {"Sandbox.Timedout", "Lambda.Unknown"}


def worst_case_seconds(config: Any) -> float:
    """One call at its worst under botocore's standard mode: every attempt waits out connect
    and read, and each retry sleeps its longest backoff (rand * min(2**i, 20) s, raised by a
    server's x-amz-retry-after by at most 5 s: botocore retries/standard.py)."""
    retries = config.retries or {}
    attempts = retries.get("total_max_attempts") or retries.get("max_attempts", 2) + 1
    backoff = sum(min(2**i, 20) + 5 for i in range(attempts - 1))
    return float(attempts * (config.connect_timeout + config.read_timeout) + backoff)


@pytest.fixture
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    runtime.reset_clients()
    yield monkeypatch
    runtime.reset_clients()


def test_every_function_knows_its_own_timeout(synth: Synth) -> None:
    for handler, (_, function) in functions_by_handler(synth).items():
        props = function["Properties"]
        assert float(props["Environment"]["Variables"][TIMEOUT_VARIABLE]) == props["Timeout"], (
            handler
        )


def test_a_slow_call_fails_well_inside_every_function(synth: Synth, fresh_clients: Any) -> None:
    figures = {}
    for handler, (_, function) in functions_by_handler(synth).items():
        timeout = function["Properties"]["Timeout"]
        fresh_clients.setenv(
            TIMEOUT_VARIABLE, function["Properties"]["Environment"]["Variables"][TIMEOUT_VARIABLE]
        )
        runtime.reset_clients()
        for service in ("ec2", "ssm", "dynamodb"):
            worst = worst_case_seconds(runtime.client(service).meta.config)
            # A quarter of the function is left to raise a named, retried AwsTransient.
            assert worst <= 0.75 * timeout, (handler, service, worst, timeout)
        figures[handler] = (timeout, worst)
    print(json.dumps(figures, sort_keys=True))


def test_unknown_function_timeout_gets_the_shortest_functions_clients(fresh_clients: Any) -> None:
    fresh_clients.delenv(TIMEOUT_VARIABLE, raising=False)
    assert worst_case_seconds(runtime.client("ec2").meta.config) <= 0.75 * 20


def test_every_task_retries_a_lambda_timeout() -> None:
    """Every phase is retry-safe (tests/faults: a retryable fault after the side effect heals),
    so a function killed at its timeout is run again like any transient failure."""
    missing = []
    for name, state in tasks():
        named = {e for retrier in state.get("Retry", []) for e in retrier["ErrorEquals"]}
        if not named >= LAMBDA_TIMEOUT_ERRORS:
            missing.append(name)
    assert missing == [], f"these Tasks do not retry a function timeout: {missing}"
