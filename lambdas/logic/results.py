"""The run's result in Parameter Store: what happened, where the key is, how long each phase took."""

from __future__ import annotations

import json
import time
from typing import Any, Optional


def result_parameter(instance_id: str) -> str:
    return f"/reset-access/{instance_id}/result"


def phase_seconds(marks: dict[str, Optional[float]], started: float, ended: float
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


def success_result(state: dict[str, Any]) -> dict[str, Any]:
    plan = state["plan"]
    prepared = state.get("prepared", {})
    rescue = state.get("rescue", {})
    finished = state.get("finished", {})
    backup = prepared.get("backup", {})
    now = time.time()
    marks = {
        "Prepare": prepared.get("detached", {}).get("At"),
        "Rescue": rescue.get("At"),
        "Restore": finished.get("running", {}).get("At"),
    }
    return {
        "ExecutionArn": plan["ExecutionArn"],
        "Outcome": "succeeded",
        "InstanceId": plan["InstanceId"],
        "Mode": plan["Mode"],
        "Platform": plan["Platform"],
        "Users": [u.get("name") for u in rescue.get("users", [])],
        "Fingerprint": prepared.get("key", {}).get("Fingerprint"),
        "KeyParameter": plan.get("KeyParameter"),
        "BackupImageId": backup.get("ImageId"),
        "BackupSnapshotId": backup.get("SnapshotId"),
        "PasswordEnabledImageId": finished.get("restore", {}).get("PasswordEnabledImageId"),
        "PhaseSeconds": phase_seconds(marks, float(plan["StartedAt"]), now),
        "FinishedAt": int(now),
    }
