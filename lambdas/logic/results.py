"""The run's result in Parameter Store: what happened, where the key is, time per phase."""

from __future__ import annotations

import json
import time
from typing import Any

from lambdas.logic.failure import error_message
from lambdas.logic.windows import how_to_get_password


def result_parameter(instance_id: str) -> str:
    return f"/reset-access/{instance_id}/result"


def phase_seconds(marks: dict[str, float | None], started: float, ended: float
                  ) -> dict[str, float]:
    """Durations between consecutive marks; missing marks are skipped."""
    seconds: dict[str, float] = {}
    previous = started
    for name, at in marks.items():
        if at is None:
            continue
        seconds[name] = round(max(0.0, at - previous), 3)
        previous = at
    seconds["Total"] = round(max(0.0, ended - started), 3)
    return seconds


def write_result(ssm: Any, instance_id: str, result: dict[str, Any]) -> str:
    name = result_parameter(instance_id)
    ssm.put_parameter(
        Name=name,
        Value=json.dumps(result, sort_keys=True, separators=(",", ":")),
        Type="String",
        Overwrite=True,
        Description=f"Result of the last ResetAccess execution for {instance_id}",
    )
    return name


def key_users(rescue: dict[str, Any]) -> list[str]:
    """Users who really have the key now (the agent verified it on disk), not refused ones."""
    if "key_users" in rescue:
        return [str(name) for name in rescue["key_users"]]
    return [u.get("name") for u in rescue.get("users", []) if not u.get("refused")]


def refused_users(rescue: dict[str, Any], limit: int = 8, length: int = 300) -> dict[str, str]:
    """Why the agent refused users; capped so the result stays within a 4 KB parameter."""
    refused = [u for u in rescue.get("users", []) if u.get("refused")]
    return {str(u.get("name")): str(u["refused"])[:length] for u in refused[:limit]}


def success_result(state: dict[str, Any], password_image_id: str | None = None
                   ) -> dict[str, Any]:
    """password_image_id: the password-enabled AMI (Windows offline), found by its tags."""
    plan = state["plan"]
    # Offline, Prepare's branches put backup and key under "prepared"; online states put them
    # at the top.
    prepared = state.get("prepared") or state
    rescue = state.get("rescue", {})
    finished = state.get("finished", {})
    backup = prepared.get("backup") or {}
    now = time.time()
    marks = {
        "Prepare": (prepared.get("detached") or {}).get("At"),
        "Rescue": rescue.get("At"),
        "Restore": finished.get("running", {}).get("At"),
    }
    result = {
        "ExecutionArn": plan["ExecutionArn"],
        "Outcome": "succeeded",
        "InstanceId": plan["InstanceId"],
        "Mode": plan["Mode"],
        "Platform": plan["Platform"],
        "Users": key_users(rescue),
        "Fingerprint": (prepared.get("key") or {}).get("Fingerprint"),
        "KeyParameter": plan.get("KeyParameter"),
        "BackupImageId": backup.get("ImageId"),
        "BackupSnapshotId": backup.get("SnapshotId"),
        "PasswordEnabledImageId": password_image_id,
        "PhaseSeconds": phase_seconds(marks, float(plan["StartedAt"]), now),
        "FinishedAt": int(now),
    }
    refused = refused_users(rescue)
    if refused:
        result["RefusedUsers"] = refused
    if state.get("onlineError"):
        # Mode auto: the online reset failed first and the helper path did it.
        result["OnlineError"] = error_message(state["onlineError"])
    if plan["Platform"] == "windows":
        result["LaunchAgent"] = rescue.get("agent")
        result["PasswordParameter"] = plan.get("PasswordParameter")
        result["GetPassword"] = how_to_get_password(plan, password_image_id)
    return result
