"""What the command prints about a reset: a readable summary, or JSON for scripts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.console import Console


def iso(value: Any) -> str | None:
    """A time as ISO 8601 in UTC, whether it came as epoch seconds, a datetime or text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    return str(value)


def execution_record(
    described: dict[str, Any], downtime: float | None, state_seconds: dict[str, float]
) -> dict[str, Any]:
    """The finished execution as the command reports it (and prints with --output json)."""
    output = _json(described.get("output"))
    if isinstance(output, dict) and isinstance(output.get("DowntimeSeconds"), int | float):
        # The run's own figure: the one its metrics carry, and replace-root's reboot counted.
        downtime = float(output["DowntimeSeconds"]) or downtime
    record: dict[str, Any] = {
        "ExecutionArn": described["executionArn"],
        "Status": described["status"],
        "StartedAt": iso(described.get("startDate")),
        "StoppedAt": iso(described.get("stopDate")),
        "DowntimeSeconds": downtime,
        "StateSeconds": {name: round(value, 1) for name, value in state_seconds.items()},
        "Result": output,
    }
    if described["status"] != "SUCCEEDED":
        record["Error"] = described.get("error")
        record["Cause"] = described.get("cause")
    return record


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def print_json(console: Console, value: Any) -> None:
    console.out(json.dumps(value, indent=2, default=lambda v: iso(v) or str(v)), highlight=False)


def _rows(console: Console, rows: list[tuple[str, Any]]) -> None:
    for label, value in rows:
        if value not in (None, "", [], {}):
            console.print(f"  {label:<13} {value}", highlight=False, markup=False)


def _seconds(value: Any) -> str:
    return f"{float(value):.1f} s"


def print_result(console: Console, result: dict[str, Any], downtime: float | None) -> None:
    """A finished reset's result (the execution's output or the result parameter)."""
    instance = result.get("InstanceId", "")
    if result.get("Outcome") == "failed":
        console.print(f"reset of {instance} failed: {result.get('Error')}", markup=False)
        _rows(
            console,
            [
                ("cause", result.get("Cause")),
                ("rolled back", result.get("RolledBack")),
                ("cleaned up", result.get("CleanedUp")),
                ("finished", iso(result.get("FinishedAt"))),
                ("execution", result.get("ExecutionArn")),
            ],
        )
        return
    phases = result.get("PhaseSeconds") or {}
    console.print(
        f"reset of {instance} succeeded ({result.get('Mode', '?')})", highlight=False, markup=False
    )
    _rows(
        console,
        [
            ("key", result.get("KeyParameter")),
            ("fingerprint", result.get("Fingerprint")),
            ("users", ", ".join(result.get("Users") or []) or "none"),
            ("refused", _refused(result.get("RefusedUsers"))),
            ("backup", result.get("BackupImageId") or result.get("BackupSnapshotId")),
            ("password AMI", result.get("PasswordEnabledImageId")),
            ("downtime", _downtime(result, downtime)),
            ("phases", ", ".join(f"{name} {_seconds(s)}" for name, s in phases.items())),
            ("online error", result.get("OnlineError")),
            ("finished", iso(result.get("FinishedAt"))),
            ("execution", result.get("ExecutionArn")),
        ],
    )
    for line in result.get("GetPassword") or []:
        console.print(f"  password: {line}", highlight=False, markup=False)
    if result.get("KeyParameter"):
        console.print(
            f"get the key: reset-access get-key {instance} --out key.pem",
            highlight=False,
            markup=False,
        )


def _downtime(result: dict[str, Any], followed: float | None) -> str:
    """The run's own figure (replace-root's reboot included), else what follow measured."""
    measured = result.get("DowntimeSeconds")
    if result.get("Mode") == "replace-root":
        reboot = "one reboot, the root volume replaced"
        return f"{_seconds(measured)} ({reboot})" if measured is not None else reboot
    seconds = measured if measured else followed
    return _seconds(seconds) if seconds else "none (not stopped)"


def _refused(refused: Any) -> str | None:
    if not isinstance(refused, dict) or not refused:
        return None
    return "; ".join(f"{user}: {why}" for user, why in refused.items())


def print_plan(console: Console, plan: dict[str, Any]) -> None:
    """A run that changed nothing: a dry run's plan, or an alarm for an instance not opted in."""
    action = plan.get("Action")
    instance = plan.get("InstanceId", "")
    if action == "dry-run":
        console.print(f"dry run for {instance}: nothing was changed; the plan:", markup=False)
        for step in plan.get("Steps") or []:
            console.print(f"  - {step}", highlight=False, markup=False)
        return
    reason = plan.get("Reason") or ""
    console.print(f"nothing done for {instance} ({action}): {reason}".rstrip(": "), markup=False)


def print_execution(console: Console, record: dict[str, Any]) -> None:
    output = record.get("Result")
    if record["Status"] == "SUCCEEDED" and isinstance(output, dict):
        if "Outcome" in output:
            print_result(console, output, record.get("DowntimeSeconds"))
        else:
            print_plan(console, output)
        return
    console.print(
        f"execution {record['Status']}: {record.get('Error') or ''}: {record.get('Cause') or ''}",
        highlight=False,
        markup=False,
    )
