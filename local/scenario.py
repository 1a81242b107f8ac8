"""Scenario files: a world of instances, the execution input, and faults to inject.

The format is the pydantic model `ScenarioFile` (docs/scenarios.md is generated from it).
Unknown fields are refused so that a typo does not silently describe a different world, and
every mistake is reported at once, each naming its field (`instances.web.volume.distro: ...`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from local.volumes import DISTROS, WINDOWS_AGENTS

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")


class ScenarioError(ValueError):
    """The scenario file is not valid; the message names the field."""


@cache
def task_states() -> tuple[str, ...]:
    """The workflow's Task states (Parallel branches included): where a fault or an abort can
    happen, since only a Task runs a handler."""
    from statemachine import definition, fleet

    found: list[str] = []

    def walk(states: dict[str, Any]) -> None:
        for name, state in states.items():
            if state["Type"] == "Task" and name not in found:
                found.append(name)
            for branch in [*state.get("Branches", []), state.get("ItemProcessor")]:
                if branch:
                    walk(branch["States"])

    for workflow in (definition, fleet):
        walk(json.loads(workflow.render())["States"])
    return tuple(found)


def _one_of(value: str, known: tuple[str, ...], what: str) -> str:
    if value in known:
        return value
    close = difflib.get_close_matches(value, known, n=1)
    if close:
        raise ValueError(f"{value!r} is not {what}; did you mean {close[0]}?")
    raise ValueError(f"{value!r} is not {what}; known: {', '.join(known)}")


def _task_state(value: str) -> str:
    return _one_of(value, task_states(), "a Task state of the workflow")


def _distro(value: str) -> str:
    return _one_of(value, tuple(DISTROS), "a known distro")


def _windows_agent(value: str) -> str:
    return _one_of(value, WINDOWS_AGENTS, "a Windows launch agent")


def _account(value: str) -> str:
    if not ACCOUNT_ID.match(value):
        raise ValueError(f"{value!r} is not an account ID (12 digits)")
    return value


@cache
def known_regions() -> tuple[str, ...]:
    """The Regions moto (and botocore, whose endpoint data it uses) knows for EC2."""
    from botocore.session import Session

    return tuple(sorted(Session().get_available_regions("ec2")))


def _region(value: str) -> str:
    return _one_of(value, known_regions(), "a Region")


def _instance_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError("names are letters, digits, _ and - (a letter first, at most 63)")
    return value


class _Strict(BaseModel):
    # strict: JSON's "1" is not a number and 1 is not true.
    model_config = ConfigDict(extra="forbid", strict=True)


class User(_Strict):
    """A login on the volume (/etc/passwd, a home, its authorized_keys)."""

    name: str = Field(description="the user's login name")
    uid: NonNegativeInt = Field(1000, description="user ID")
    gid: NonNegativeInt | None = Field(None, description="group ID (default: the uid)")
    authorized_keys: list[str] | None = Field(
        None, description="lines of the user's authorized_keys; none: no file"
    )
    home: str | None = Field(None, description="home directory (default: /home/NAME)")
    shell: str = Field("/bin/bash", description="login shell")


class Volume(_Strict):
    """What is on the instance's root volume."""

    distro: Annotated[str, AfterValidator(_distro)] = Field(
        "amzn2023", description=f"Linux: one of {', '.join(DISTROS)}"
    )
    users: list[User] = Field(default_factory=list, description="Linux: the logins")
    authorized_keys_file: str = Field(
        ".ssh/authorized_keys", description="Linux: sshd's AuthorizedKeysFile"
    )
    windows_agent: Annotated[str, AfterValidator(_windows_agent)] = Field(
        WINDOWS_AGENTS[0], description=f"Windows: one of {', '.join(WINDOWS_AGENTS)}"
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="more files: path on the volume -> text"
    )


class Instance(_Strict):
    """One EC2 instance of the world."""

    platform: Literal["linux", "windows"] = Field("linux", description="its operating system")
    state: Literal["running", "stopped", "pending", "stopping", "terminated"] = Field(
        "running", description="its state when the run starts"
    )
    root_device: str = Field("/dev/xvda", description="the root device name")
    root_device_type: Literal["ebs", "instance-store"] = Field(
        "ebs", description="instance-store roots are refused by Preflight"
    )
    encrypted: bool = Field(False, description="root volume encrypted with a customer key")
    kms_key_state: Literal["Enabled", "Disabled", "PendingDeletion"] = Field(
        "Enabled", description="that key's state"
    )
    ssm: bool = Field(False, description="its SSM agent is online (the online path)")
    tags: dict[str, str] = Field(default_factory=dict, description="tags besides Name")
    availability_zone: str | None = Field(None, description="default: the Region's zone a")
    account: Annotated[str, AfterValidator(_account)] | None = Field(
        None, description="its account ID, 12 digits (default: the engine's, 123456789012)"
    )
    region: Annotated[str, AfterValidator(_region)] | None = Field(
        None, description="its Region (default: the engine's, us-east-1)"
    )
    # {} validated into Volume(): mypy reads pydantic's default_factory=Volume as untyped.
    volume: Volume = Field(
        default_factory=dict, validate_default=True, description="its root volume's contents"
    )


class FaultSpec(_Strict):
    """An error raised by a Task state's handler, before or after its side effect."""

    state: Annotated[str, AfterValidator(_task_state)] = Field(
        description="a Task state of the workflow"
    )
    when: Literal["before", "after"] = Field(description="before or after the side effect")
    error: str = Field(description="the error name Step Functions sees (e.g. Lambda.Unknown)")
    times: PositiveInt = Field(1, description="how many invocations raise it")
    instance: Annotated[str, AfterValidator(_instance_name)] | None = Field(
        None, description="only in the reset of this instance (a fleet's child); none: any"
    )


class ScenarioFile(_Strict):
    """A scenario file (JSON)."""

    description: str | None = Field(None, description="what the scenario shows")
    workflow: Literal["reset", "fleet"] = Field(
        "reset", description="reset: ResetAccess for one instance; fleet: ResetAccessFleet"
    )
    instances: dict[Annotated[str, AfterValidator(_instance_name)], Instance] = Field(
        min_length=1, description="the world's instances by name (input refers to @NAME)"
    )
    input: Any = Field(description="the execution input; @NAME stands for that instance's ID")
    faults: list[FaultSpec] = Field(default_factory=list, description="faults to inject")
    abort_at: Annotated[str, AfterValidator(_task_state)] | None = Field(
        None, description="StopExecution when this Task state's handler returns"
    )
    eventual_consistency: Any = Field(
        None,
        description='EC2 answers NotFound for a just-created resource: true, or {"seed": n, '
        '"max_lag": n} (local/consistency.py)',
    )

    @field_validator("eventual_consistency")
    @classmethod
    def _lag(cls, lag: Any) -> Any:
        if lag not in (None, True, False) and not (
            isinstance(lag, dict)
            and set(lag) <= {"seed", "max_lag"}
            and all(type(v) is int and v >= 0 for v in lag.values())
        ):
            raise ValueError('true, or {"seed": n, "max_lag": n} with whole numbers')
        return lag

    @model_validator(mode="after")
    def _fault_instances(self) -> ScenarioFile:
        for index, fault in enumerate(self.faults):
            if fault.instance is not None and fault.instance not in self.instances:
                raise ValueError(
                    f"faults[{index}].instance: {fault.instance!r} is not one of the "
                    f"scenario's instances ({', '.join(self.instances)})"
                )
        return self


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
    # Each instance as the file gives it (unset or null fields absent; readers apply defaults).
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
        try:
            parsed = ScenarioFile.model_validate(data)
        except ValidationError as error:
            raise ScenarioError("\n".join(explain(e) for e in error.errors())) from None
        return cls(
            instances={
                name: instance.model_dump(exclude_unset=True, exclude_none=True)
                for name, instance in parsed.instances.items()
            },
            input=parsed.input,
            faults=[Fault(f.state, f.when, f.error, f.times, f.instance) for f in parsed.faults],
            abort_at=parsed.abort_at,
            eventual_consistency=parsed.eventual_consistency,
            workflow=parsed.workflow,
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


def explain(error: ErrorDetails) -> str:
    """One pydantic error as one line that starts with the field's path."""
    loc = [part for part in error["loc"] if part != "[key]"]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    kind = error["type"]
    if kind == "extra_forbidden":
        known = ", ".join(_fields_at(loc[:-1]))
        return f"{'scenario.' if len(loc) == 1 else ''}{where}: unknown field; known: {known}"
    if kind == "missing":
        return f"{where}: required"
    if kind == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    if kind == "literal_error":
        return f"{where}: {error.get('ctx', {}).get('expected')}, not {error['input']!r}"
    if kind == "too_short" and where == "instances":
        return "instances: at least one instance"
    expected = _EXPECTED.get(kind)
    if expected:
        return f"{where}: expected {expected}, not {_json_type(error['input'])}"
    return f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}"


# pydantic's type errors in JSON's terms.
_EXPECTED = {
    "model_type": "an object",
    "dict_type": "an object",
    "list_type": "an array",
    "string_type": "a string",
    "int_type": "a whole number",
    "bool_type": "true or false",
}


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _fields_at(loc: list[int | str]) -> list[str]:
    """The field names of the model at that path (dict keys and list indexes skipped)."""
    model: type[BaseModel] = ScenarioFile
    skip = 0
    for part in loc:
        if skip:
            skip -= 1
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = _model_in(annotation)
        if inner is None:
            break
        model = inner
        skip = 0 if annotation is inner else 1
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
