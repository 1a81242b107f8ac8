"""`python -m local serve` shows the stack as CloudFormation would: the same Outputs."""

from __future__ import annotations

from local.serve import stack_outputs
from tests.support.synth import Synth


def test_the_endpoint_declares_the_outputs_the_stack_does(synth: Synth) -> None:
    served = stack_outputs("state machine", "key", "queue", "fleet", "topic")
    assert set(served) == set(synth.template["Outputs"]), (
        "the stack's Outputs changed: local/serve.py stack_outputs must declare the same"
    )
