"""A short message on the stack's SNS topic for every finished reset, and for an alarm-started
one the circuit breaker suppressed.

Three kinds a person tells apart by the subject: succeeded (what to do next), failed and rolled
back (nothing to do but read why), and needs attention (the command that finishes the job).
Publishing never raises: a notification that cannot go out is logged, and the run's outcome
stays what it was.
"""

from __future__ import annotations

from typing import Any

from lambdas.names import EXECUTION_TAG, key_parameter

# SNS Publish: a subject "less than 100 characters long", no line breaks or control characters.
SUBJECT_LIMIT = 99
# Email and chat show the first lines; the result parameter has everything.
MESSAGE_LIMIT = 4000


def publish(sns: Any, topic_arn: str, subject: str, message: str) -> str | None:
    """Publish, or log why not: the message ID, None when nothing went out."""
    from lambdas.runtime import logger

    if not topic_arn:
        return None
    try:
        response = sns.publish(
            TopicArn=topic_arn,
            Subject=_printable(subject)[:SUBJECT_LIMIT],
            Message=message[:MESSAGE_LIMIT],
        )
    except Exception as error:  # noqa: BLE001 - a lost message must not change the run's outcome
        logger.warning("notification not sent", extra={"subject": subject, "error": str(error)})
        return None
    return str(response.get("MessageId", ""))


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def succeeded(result: dict[str, Any]) -> tuple[str, str]:
    instance_id = result["InstanceId"]
    seconds = result.get("PhaseSeconds", {})
    lines = [
        f"ResetAccess reset {instance_id} ({result.get('Mode')}) in "
        f"{seconds.get('Total', 0):.0f} s.",
        downtime_line(result),
        *_users(result),
        *_next_steps(result),
        f"Execution: {result['ExecutionArn']}",
    ]
    return f"ResetAccess: {instance_id} reset succeeded", "\n".join(lines)


def downtime_line(result: dict[str, Any]) -> str:
    """How long the instance was out of service, in the mode's own terms."""
    seconds = result.get("DowntimeSeconds")
    if result.get("Mode") == "replace-root":
        if seconds is None:
            return "Downtime: one reboot (EC2 gave no task times to measure it)."
        return f"Downtime: {seconds:.0f} s (one reboot, the root volume replaced)."
    if seconds:
        return f"Downtime: {seconds:.0f} s (stopped, then started again)."
    return "Downtime: none (the instance was not stopped)."


def _users(result: dict[str, Any]) -> list[str]:
    lines = []
    if result.get("Users"):
        lines.append(f"Users with the new key: {', '.join(result['Users'])}.")
    if result.get("RefusedUsers"):
        lines.append(f"Refused: {', '.join(result['RefusedUsers'])} (see the result).")
    for backup in ("BackupImageId", "BackupSnapshotId"):
        if result.get(backup):
            lines.append(f"Backup: {result[backup]} (delete it once access is confirmed).")
    return lines


def _next_steps(result: dict[str, Any]) -> list[str]:
    instance_id = result["InstanceId"]
    if result.get("GetPassword"):
        return [f"Next: {result['GetPassword']}"]
    if result.get("KeyParameter"):
        return [
            f"Next: get the key with `reset-access get-key {instance_id} --out key.pem`, or "
            f"`aws ssm get-parameter --name {key_parameter(instance_id)} --with-decryption "
            "--query Parameter.Value --output text > key.pem`, then log in with it "
            f"(fingerprint {result.get('Fingerprint')})."
        ]
    return ["Next: log in with the public key you gave."]


def failed(result: dict[str, Any], execution: str) -> tuple[str, str]:
    """A failed run: rolled back, or needing a person (rollback or cleanup did not finish)."""
    instance_id = result["InstanceId"]
    lines = [f"ResetAccess could not reset {instance_id}: {result.get('Error')}.", result["Cause"]]
    attention = not result.get("RolledBack") or not result.get("CleanedUp")
    if not result.get("RolledBack"):
        lines.append(
            "Rollback did not finish: put the root volume back as `now:` above says, then, if "
            f"the instance was running, `aws ec2 start-instances --instance-ids {instance_id}`."
        )
    if not result.get("CleanedUp"):
        lines.append(
            "Cleanup did not finish: find and delete what is left with `aws "
            "resourcegroupstaggingapi get-resources --tag-filters "
            f"Key={EXECUTION_TAG},Values={execution}`."
        )
    if not result.get("LockReleased"):
        lines.append(f"The instance's lock was not released (another run holds {instance_id}).")
    lines.append(f"Execution: {result['ExecutionArn']}")
    subject = (
        f"ResetAccess: {instance_id} NEEDS ATTENTION"
        if attention
        else f"ResetAccess: {instance_id} reset failed, rolled back"
    )
    return subject, "\n".join(lines)


def janitor_failed(execution_arn: str, error: str) -> tuple[str, str]:
    """The janitor itself failed: the execution's instance may be stopped or without its volume."""
    return (
        "ResetAccess: janitor failed, NEEDS ATTENTION",
        "\n".join(
            [
                f"The janitor could not put things back after {execution_arn}: {error}",
                "Lambda retries it twice; then the event is in the stack's dead-letter queue.",
                "See where the instance and its root volume are with `aws stepfunctions "
                f"describe-execution --execution-arn {execution_arn}` and the instance's "
                "result parameter (/reset-access/<instance ID>/result).",
            ]
        ),
    )


def suppressed(instance_id: str, reason: str, execution_arn: str) -> tuple[str, str]:
    return (
        f"ResetAccess: alarm reset of {instance_id} skipped",
        f"{reason}\nExecution: {execution_arn}",
    )
