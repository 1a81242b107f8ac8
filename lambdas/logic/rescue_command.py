"""Running the rescue agent through Run Command and reading its one-line JSON report."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lambdas.errors import NotReady, RescueFailed
from lambdas.logic.rescue_contract import PYTHON_UNSUITABLE
from lambdas.names import WINDOWS_TOOL_COMMAND, WINDOWS_TOOL_DOCUMENT, password_parameter
from lambdas.records import RescueCommand

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.type_defs import GetCommandInvocationResultTypeDef

RUNNING = ("Pending", "InProgress", "Delayed")
COMMAND_TIMEOUT_SECONDS = 900
LATEST = "$LATEST"


def send_rescue(
    ssm: SSMClient,
    document: str,
    instance_id: str,
    platform: str,
    target: str,
    public_key: str,
    execution: str,
    kms_key_arn: str = "",
    first_attempt: bool = False,
) -> RescueCommand:
    """Offline and Linux online: our rescue document. Windows online (target `/`): AWS's
    EC2Rescue for Windows document with ResetAccess, the password encrypted with our key.
    first_attempt: no earlier attempt can have sent it, so no earlier command is looked for."""
    if platform == "windows" and target == "/":
        document = WINDOWS_TOOL_DOCUMENT
        # ResetAccess's only parameter is a KMS key ID, as in AWS's own example (the key's
        # UUID: the tool runs in this account and Region).
        key_id = kms_key_arn.rsplit("key/", 1)[-1]
        parameters = {"Command": [WINDOWS_TOOL_COMMAND], "Parameters": [key_id]}
    else:
        parameters = {"Platform": [platform], "Target": [target], "PublicKey": [public_key]}
    # Comment carries the execution so a retried send finds the first command.
    comment = f"ResetAccess {execution}"[:100]
    previous = (
        [] if first_attempt else ssm.list_commands(InstanceId=instance_id).get("Commands", [])
    )
    for command in previous:
        if command.get("Comment") == comment and command.get("DocumentName") == document:
            return {
                "CommandId": command["CommandId"],
                "InstanceId": instance_id,
                "DocumentName": document,
            }
    # Ours: the version the stack deployed last, whatever the default was set to since, so a
    # stack update never leaves the workflow running an older agent. AWS's tool: its default.
    version: dict[str, Any] = (
        {} if document == WINDOWS_TOOL_DOCUMENT else {"DocumentVersion": LATEST}
    )
    response = ssm.send_command(
        DocumentName=document,
        **version,
        InstanceIds=[instance_id],
        Parameters=parameters,
        Comment=comment,
        TimeoutSeconds=COMMAND_TIMEOUT_SECONDS,
    )
    return {
        "CommandId": response["Command"]["CommandId"],
        "InstanceId": instance_id,
        "DocumentName": document,
    }


def agent_report(output: str) -> dict[str, Any] | None:
    """The agent's report is its last JSON line; anything else on stdout is ignored."""
    for raw in reversed(output.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(report, dict):
                return report
    return None


def check_rescue(
    ssm: SSMClient, command_id: str, instance_id: str, since: float = 0.0
) -> dict[str, Any]:
    """since: when the run started; a Windows password parameter older than that is stale."""
    try:
        invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    except ssm.exceptions.InvocationDoesNotExist:
        raise NotReady(f"command {command_id} has not reached {instance_id} yet") from None
    status = invocation["Status"]
    if status in RUNNING:
        raise NotReady(f"rescue agent on {instance_id} is {status}")
    if invocation.get("DocumentName") == WINDOWS_TOOL_DOCUMENT:
        return _windows_tool_report(ssm, invocation, instance_id, since)
    report = agent_report(invocation.get("StandardOutputContent", ""))
    if status == "Success" and report and report.get("ok"):
        return report
    if report and report.get("reason") == PYTHON_UNSUITABLE:
        raise RescueFailed(
            f"the rescue agent cannot run online on {instance_id}: {report.get('error')}"
        )
    if report and report.get("error"):
        reason = str(report["error"])
    else:
        stderr = invocation.get("StandardErrorContent", "").strip().splitlines()
        reason = stderr[-1] if stderr else f"no report; command status {status}"
    raise RescueFailed(f"the rescue agent on {instance_id} failed ({status}): {reason}")


def _windows_tool_report(
    ssm: SSMClient, invocation: GetCommandInvocationResultTypeDef, instance_id: str, since: float
) -> dict[str, Any]:
    """AWS's tool prints prose, not our JSON: success is its status plus a password parameter
    written by this run. Only the parameter's metadata is read, never its value."""
    status = invocation["Status"]
    name = password_parameter(instance_id)
    if status != "Success":
        lines = (
            invocation.get("StandardErrorContent", "").strip()
            or invocation.get("StandardOutputContent", "").strip()
        ).splitlines()
        reason = lines[-1] if lines else f"no output; command status {status}"
        raise RescueFailed(
            f"{WINDOWS_TOOL_DOCUMENT} {WINDOWS_TOOL_COMMAND} on {instance_id} failed ({status}): "
            f"{reason}. "
            f"The instance's role needs ssm:PutParameter on {name} and kms:Encrypt on the "
            "stack's key; or use Mode offline"
        )
    found = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
    ).get("Parameters", [])
    modified = found[0].get("LastModifiedDate") if found else None
    at = modified.timestamp() if isinstance(modified, datetime) else float(modified or 0)
    if not found or at < since:
        raise RescueFailed(
            f"{WINDOWS_TOOL_DOCUMENT} reported success on {instance_id} but {name} was not "
            "written by this run; check the command's output in Run Command history"
        )
    return {
        "ok": True,
        "platform": "windows",
        "tool": WINDOWS_TOOL_DOCUMENT,
        "PasswordParameter": name,
        "PasswordParameterType": found[0].get("Type"),
    }
