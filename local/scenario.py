"""Scenario files: a world of instances, the execution input, and faults to inject.

Field names are shared with other tools; unknown fields are refused so that a typo does not
silently describe a different world.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.volumes import WINDOWS_AGENTS

TOP_FIELDS = {
    "instances",
    "input",
    "faults",
    "abort_at",
    "description",
    "eventual_consistency",
    "workflow",
}
INSTANCE_FIELDS = {
    "platform",
    "state",
    "root_device",
    "encrypted",
    "ssm",
    "tags",
    "volume",
    "root_device_type",
    "product_codes",
    "kms_key_state",
    "availability_zone",
}
VOLUME_FIELDS = {"distro", "users", "authorized_keys_file", "windows_agent", "files"}
USER_FIELDS = {"name", "uid", "gid", "authorized_keys", "home", "shell"}
FAULT_FIELDS = {"state", "when", "error", "times", "instance"}
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the field."""


@dataclass(frozen=True)
class Fault:
    state: str
    when: str
    error: str
    times: int = 1
    # Only in the execution for this scenario instance (a fleet's child); None: any.
    instance: str | None = None


@dataclass
class Scenario:
    instances: dict[str, dict[str, Any]]
    input: Any
    faults: list[Fault] = field(default_factory=list)
    abort_at: str | None = None
    # EC2 answers NotFound for a just-created resource (local/consistency.py): true or
    # {"seed": n, "max_lag": n}.
    eventual_consistency: Any = None
    # "reset" runs ResetAccess with the input; "fleet" runs ResetAccessFleet with it.
    workflow: str = "reset"

    @classmethod
    def load(cls, path: Path | str) -> Scenario:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ScenarioError(f"{path}: {error}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> Scenario:
        if not isinstance(data, dict):
            raise ScenarioError("scenario: expected a JSON object")
        _only(data, TOP_FIELDS, "scenario")
        instances = data.get("instances")
        if not isinstance(instances, dict) or not instances:
            raise ScenarioError("instances: expected an object with at least one instance")
        for name, spec in instances.items():
            _check_instance(name, spec)
        faults = [_fault(index, fault) for index, fault in enumerate(data.get("faults", []))]
        if "input" not in data:
            raise ScenarioError("input: required (the execution input)")
        lag = data.get("eventual_consistency")
        _check_lag(lag)
        workflow = data.get("workflow", "reset")
        if workflow not in ("reset", "fleet"):
            raise ScenarioError("workflow: reset (one instance) or fleet")
        return cls(
            instances=instances,
            input=data["input"],
            faults=faults,
            abort_at=data.get("abort_at"),
            eventual_consistency=lag,
            workflow=workflow,
        )

    def resolve_input(self, ids: dict[str, str]) -> Any:
        """Replace "@NAME" anywhere in the input (nested too) by that instance's ID."""

        def resolve(value: Any) -> Any:
            if isinstance(value, str) and value.startswith("@") and value[1:] in ids:
                return ids[value[1:]]
            if isinstance(value, list):
                return [resolve(v) for v in value]
            if isinstance(value, dict):
                return {k: resolve(v) for k, v in value.items()}
            return value

        return resolve(self.input)


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(f"{where}.{unknown[0]}: unknown field; known: {sorted(allowed)}")


def _check_instance(name: str, spec: Any) -> None:
    where = f"instances.{name}"
    if not NAME.match(name):
        raise ScenarioError(f"{where}: names are letters, digits, _ and -")
    if not isinstance(spec, dict):
        raise ScenarioError(f"{where}: expected an object")
    _only(spec, INSTANCE_FIELDS, where)
    if spec.get("platform", "linux") not in ("linux", "windows"):
        raise ScenarioError(f"{where}.platform: linux or windows")
    if spec.get("state", "running") not in (
        "running",
        "stopped",
        "pending",
        "stopping",
        "terminated",
    ):
        raise ScenarioError(f"{where}.state: running, stopped, pending, stopping or terminated")
    _check_volume(f"{where}.volume", spec.get("volume", {}))


def _check_volume(where: str, volume: Any) -> None:
    if not isinstance(volume, dict):
        raise ScenarioError(f"{where}: expected an object")
    _only(volume, VOLUME_FIELDS, where)
    if volume.get("windows_agent", WINDOWS_AGENTS[0]) not in WINDOWS_AGENTS:
        raise ScenarioError(f"{where}.windows_agent: one of {', '.join(WINDOWS_AGENTS)}")
    for index, user in enumerate(volume.get("users", [])):
        if not isinstance(user, dict) or "name" not in user:
            raise ScenarioError(f"{where}.users[{index}]: needs a name")
        _only(user, USER_FIELDS, f"{where}.users[{index}]")


def _fault(index: int, fault: Any) -> Fault:
    where = f"faults[{index}]"
    if not isinstance(fault, dict):
        raise ScenarioError(f"{where}: expected an object")
    _only(fault, FAULT_FIELDS, where)
    if fault.get("when") not in ("before", "after"):
        raise ScenarioError(f"{where}.when: before or after")
    if not isinstance(fault.get("state"), str) or not isinstance(fault.get("error"), str):
        raise ScenarioError(f"{where}: state and error are strings")
    instance = fault.get("instance")
    if instance is not None and not isinstance(instance, str):
        raise ScenarioError(f"{where}.instance: the name of one of the scenario's instances")
    return Fault(
        fault["state"], fault["when"], fault["error"], int(fault.get("times", 1)), instance
    )


def _check_lag(lag: Any) -> None:
    if lag not in (None, True, False) and not (
        isinstance(lag, dict)
        and set(lag) <= {"seed", "max_lag"}
        and all(isinstance(v, int) and v >= 0 for v in lag.values())
    ):
        raise ScenarioError(
            'eventual_consistency: true, or {"seed": n, "max_lag": n} with whole numbers'
        )
