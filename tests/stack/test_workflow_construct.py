"""The Workflow construct refuses, at synth, a definition the stack cannot deploy whole:
CloudFormation would leave an unknown ${Name} in the definition, and Step Functions would fail
the Task at run time."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from stacks.workflow import Workflow
from statemachine.phases import PHASES, Phase


def functions(stack: Stack, count: int) -> dict[Phase, lambda_.IFunction]:
    return {
        phase: lambda_.Function.from_function_arn(
            stack, phase.name, f"arn:aws:lambda:us-east-1:111122223333:function:{phase.name}"
        )
        for phase in PHASES[:count]
    }


def test_a_phase_without_a_function_is_refused() -> None:
    stack = Stack(App(), "Test")
    with pytest.raises(ValueError, match="gives no function"):
        Workflow(stack, "Workflow", functions=functions(stack, len(PHASES) - 1), values={})


def test_a_placeholder_without_a_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = Stack(App(), "Test")
    with_unknown = '{"Comment": "${NotGiven}", "StartAt": "A", "States": {}}'
    monkeypatch.setattr("stacks.workflow.render", lambda: with_unknown)
    with pytest.raises(ValueError, match=r"\$\{NotGiven\}"):
        Workflow(stack, "Workflow", functions=functions(stack, len(PHASES)), values={})
