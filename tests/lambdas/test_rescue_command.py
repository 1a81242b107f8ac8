"""Reading the agent's report out of Run Command output."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.errors import NotReady, RescueFailed
from lambdas.logic.rescue_command import agent_report, check_rescue


def test_report_is_the_last_json_line() -> None:
    output = 'apt: installing ntfs-3g\n{"ok": true, "users": []}\n'
    assert agent_report(output) == {"ok": True, "users": []}
    assert agent_report("no json here\n{broken") is None


class FakeSsm:
    class exceptions:
        class InvocationDoesNotExist(Exception):
            pass

    def __init__(self, invocation: dict[str, Any] | None) -> None:
        self.invocation = invocation

    def get_command_invocation(self, CommandId: str, InstanceId: str) -> dict[str, Any]:
        if self.invocation is None:
            raise self.exceptions.InvocationDoesNotExist()
        return self.invocation


def fake_ssm(invocation: dict[str, Any] | None) -> Any:
    """A FakeSsm where check_rescue takes an SSM client: it makes only this one call."""
    return FakeSsm(invocation)


def test_running_or_unknown_commands_are_not_ready() -> None:
    with pytest.raises(NotReady):
        check_rescue(fake_ssm(None), "c", "i-1")
    with pytest.raises(NotReady):
        check_rescue(fake_ssm({"Status": "InProgress"}), "c", "i-1")


def test_failure_carries_the_agent_s_own_message() -> None:
    failed = {
        "Status": "Failed",
        "StandardOutputContent": '{"ok": false, "error": "ext4 on /dev/nvme1n1p1 needs fsck"}\n',
    }
    with pytest.raises(RescueFailed, match="needs fsck"):
        check_rescue(fake_ssm(failed), "c", "i-1")
    no_report = {
        "Status": "TimedOut",
        "StandardOutputContent": "",
        "StandardErrorContent": "python3: not found\n",
    }
    with pytest.raises(RescueFailed, match="python3: not found"):
        check_rescue(fake_ssm(no_report), "c", "i-1")
