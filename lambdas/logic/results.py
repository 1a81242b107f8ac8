"""The run's result in Parameter Store: what happened, where the key is, time per phase."""

from __future__ import annotations

import copy
import json
import math
import time
from typing import TYPE_CHECKING, Any

from lambdas import timestamps
from lambdas.logic.failure import error_message
from lambdas.logic.replace_root import TRADE
from lambdas.logic.windows import how_to_get_password
from lambdas.names import REPLACED_BY_TAG, result_parameter

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# A standard-tier String parameter holds at most 4 KB; an advanced one costs by the month.
RESULT_LIMIT = 4096
CUT_MARK = " [cut to fit the result parameter; the execution's history has it all]"


def phase_seconds(marks: dict[str, float | None], started: float, ended: float) -> dict[str, float]:
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


def _encoded(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True, separators=(",", ":"))


def _size(text: str) -> int:
    return len(json.dumps(text).encode()) - 2


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(path, container, key) of every string in the result."""
    found: list[tuple[str, Any, Any]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(item, str):
            found.append((where, value, key))
        else:
            found += _leaves(item, where)
    return found


def bounded(result: dict[str, Any], limit: int = RESULT_LIMIT) -> dict[str, Any]:
    """The result as it fits in a standard String parameter: the longest texts are cut (from
    the end: a Cause starts with the first error) and `Truncated` names them."""
    if len(_encoded(result).encode()) <= limit:
        return result
    fitted = copy.deepcopy(result)
    fitted["Truncated"] = cut = []
    while (excess := len(_encoded(fitted).encode()) - limit) > 0:
        leaves = [leaf for leaf in _leaves(fitted) if not leaf[0].startswith("Truncated")]
        path, container, key = max(leaves, key=lambda leaf: _size(leaf[1][leaf[2]]))
        text = container[key].removesuffix(CUT_MARK)
        if len(text) == 0:
            raise ValueError(f"the result does not fit in {limit} bytes even without its texts")
        # Characters to cut, at this text's mean encoded size (JSON escapes are up to 6 bytes).
        per_char = _size(text) / len(text)
        keep = max(
            0, min(len(text) - 1, len(text) - math.ceil((excess + _size(CUT_MARK)) / per_char))
        )
        container[key] = text[:keep] + CUT_MARK
        if path not in cut:
            cut.append(path)
    return fitted


def write_result(ssm: SSMClient, instance_id: str, result: dict[str, Any]) -> str:
    name = result_parameter(instance_id)
    ssm.put_parameter(
        Name=name,
        Value=_encoded(bounded(result)),
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


def _at(mark: str | None) -> float | None:
    return timestamps.epoch(mark) if mark is not None else None


def downtime_seconds(state: dict[str, Any]) -> float | None:
    """Offline: from the instance seen stopped to seen running again. Replace-root: from the
    replacement task's start to its completion, the instance available with the new root (its
    one reboot). 0 when the run never stopped or rebooted it (online, or an instance that was
    stopped before)."""
    plan = state["plan"]
    if plan.get("Mode") == "replace-root":
        return _replacement_seconds((state.get("finished") or {}).get("replaced") or {})
    if plan.get("Mode") != "offline" or plan.get("InitialState") != "running":
        return 0.0
    stopped = ((state.get("prepared") or {}).get("stopped") or {}).get("At")
    running = ((state.get("finished") or {}).get("running") or {}).get("At")
    if stopped is None or running is None:
        return 0.0
    return round(max(0.0, timestamps.epoch(running) - timestamps.epoch(stopped)), 3)


def _replacement_seconds(replaced: dict[str, Any]) -> float | None:
    """The task's StartTime to its CompleteTime (or, without one, to when the run saw it done);
    None when EC2 gave no start time a run can read: unknown, never a false 0."""
    started = replaced.get("StartTime")
    ended = replaced.get("CompleteTime") or replaced.get("At")
    if not isinstance(started, str | int | float) or not isinstance(ended, str | int | float):
        return None
    try:
        seconds = timestamps.epoch(ended) - timestamps.epoch(started)
    except ValueError:
        return None
    return round(max(0.0, seconds), 3)


def replace_root_result(
    plan: dict[str, Any], prepared: dict[str, Any], replaced: dict[str, Any]
) -> dict[str, Any]:
    """What replace-root changed and what it traded for never stopping the instance."""
    copied = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(int((prepared.get("copy") or {}).get("CopiedAt", 0)))
    )
    old = replaced["ReplacedRootVolumeId"]
    return {
        "RootVolumeId": replaced["RootVolumeId"],
        "ReplacedRootVolumeId": old,
        "Reboots": 1,
        "Tradeoff": TRADE.format(copied=copied, old=old, tag=REPLACED_BY_TAG),
    }


def success_result(state: dict[str, Any], password_image_id: str | None = None) -> dict[str, Any]:
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
        "Prepare": _at((prepared.get("detached") or {}).get("At")),
        "Rescue": _at(rescue.get("At")),
        "Restore": _at(finished.get("running", {}).get("At")),
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
        "PhaseSeconds": phase_seconds(marks, timestamps.epoch(plan["StartedAt"]), now),
        "DowntimeSeconds": downtime_seconds(state),
        "FinishedAt": timestamps.iso(now),
    }
    if plan.get("Notes"):
        # Preflight's notes: what was given but not used, what it chose and why.
        result["Notes"] = list(plan["Notes"])
    refused = refused_users(rescue)
    if refused:
        result["RefusedUsers"] = refused
    if state.get("onlineError"):
        # Mode auto: the online reset failed first and the helper path did it.
        result["OnlineError"] = error_message(state["onlineError"])
    replaced = finished.get("replaced")
    if plan["Mode"] == "replace-root" and replaced:
        result.update(replace_root_result(plan, prepared, replaced))
    if plan["Platform"] == "windows":
        result["LaunchAgent"] = rescue.get("agent")
        result["PasswordParameter"] = plan.get("PasswordParameter")
        result["GetPassword"] = how_to_get_password(plan, password_image_id)
    return result
