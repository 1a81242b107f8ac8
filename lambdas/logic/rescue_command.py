"""Running the rescue agent through Run Command and reading its one-line JSON report."""

from __future__ import annotations

import json
from typing import Any, Optional

from lambdas.errors import NotReady, RescueFailed

RUNNING = ("Pending", "InProgress", "Delayed")
COMMAND_TIMEOUT_SECONDS = 900


def send_rescue(
    ssm: Any, document: str, instance_id: str, platform: str, target: str, public_key: str,
    execution: str,
) -> dict[str, Any]:
    # Comment carries the execution so a retried send finds the first command.
    comment = f"ResetAccess {execution}"[:100]
    previous = ssm.list_commands(InstanceId=instance_id).get("Commands", [])
    for command in previous:
        if command.get("Comment") == comment and command.get("DocumentName") == document:
            return {"CommandId": command["CommandId"], "InstanceId": instance_id}
    response = ssm.send_command(
        DocumentName=document,
        InstanceIds=[instance_id],
        Parameters={"Platform": [platform], "Target": [target], "PublicKey": [public_key]},
        Comment=comment,
        TimeoutSeconds=COMMAND_TIMEOUT_SECONDS,
    )
    return {"CommandId": response["Command"]["CommandId"], "InstanceId": instance_id}


def agent_report(output: str) -> Optional[dict[str, Any]]:
    """The agent's report is its last JSON line; anything else on stdout is ignored."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(report, dict):
                return report
    return None


def check_rescue(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any]:
    try:
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ssm.exceptions.InvocationDoesNotExist:
        raise NotReady(f"command {command_id} has not reached {instance_id} yet") from None
    status = invocation["Status"]
    if status in RUNNING:
        raise NotReady(f"rescue agent on {instance_id} is {status}")
    report = agent_report(invocation.get("StandardOutputContent", ""))
    if status == "Success" and report and report.get("ok"):
        return report
    if report and report.get("error"):
        reason = str(report["error"])
    else:
        stderr = invocation.get("StandardErrorContent", "").strip().splitlines()
        reason = stderr[-1] if stderr else f"no report; command status {status}"
    raise RescueFailed(f"the rescue agent on {instance_id} failed ({status}): {reason}")
