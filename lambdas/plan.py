"""The plan Preflight makes and every later phase follows, as the types that describe it.

The plan travels as JSON through Step Functions (`$.plan`, merged with `Fallback` by the ASL's
FallBackOffline state), so each phase receives a plain dict. TypedDicts describe that dict as
it is, with no conversion at either end and nothing to keep in step with the ASL's JSONPaths;
a dataclass would have to be rebuilt from the dict in every handler and turned back on return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

if TYPE_CHECKING:
    from typing_extensions import TypeIs

Action = Literal["reset", "skip", "dry-run"]
Mode = Literal["online", "offline", "replace-root"]
Platform = Literal["linux", "windows"]


class NewVpc(TypedDict):
    """The helper gets a temporary VPC, subnet and internet gateway of its own."""

    Choice: Literal["CreateNewVPC"]
    SubnetId: None


class SsmPath(TypedDict):
    """How a helper in a subnet reaches Systems Manager (lambdas/logic/reachability.py)."""

    Via: str
    # LaunchHelper must ask for a public IP (the way out is an internet gateway).
    PublicIp: bool


class GivenSubnet(TypedDict):
    """The helper goes into an existing subnet: the instance's own, or the one asked for."""

    Choice: Literal["SelectedInstanceSubnet", "Given"]
    SubnetId: str
    # SsmPath's keys, written only when Preflight looked (offline, or auto).
    Via: NotRequired[str]
    PublicIp: NotRequired[bool]


Subnet = NewVpc | GivenSubnet


class Fallback(TypedDict, total=False):
    """What changes when Mode auto falls back offline (the ASL merges it into the plan); empty
    when there is no fallback."""

    Mode: Mode
    Backup: str
    PasswordParameter: None
    CreatePasswordEnabledAmi: bool


class PlanHeader(TypedDict):
    """What every plan has, including one that skips the run (an alarm without the opt-in tag)."""

    InstanceId: str
    # The execution's name as resource names accept it (lambdas/names.py).
    Execution: str
    ExecutionArn: str
    StartedAt: str  # ISO 8601 (lambdas/timestamps.py)
    Action: Action
    Notes: list[str]
    Alarm: NotRequired[str]


class Plan(PlanHeader):
    """A plan to reset (Action "reset", or "dry-run"): what the instance looked like before and
    what the run will do. Every phase after Preflight takes one."""

    Mode: Mode
    Platform: Platform
    # "running" or "stopped": Preflight refuses every other state.
    InitialState: str
    AvailabilityZone: str
    RootDeviceName: str
    RootVolumeId: str
    RootDeleteOnTermination: bool
    Encrypted: bool
    SsmOnline: bool
    Subnet: Subnet
    HelperInstanceType: str
    HelperAmiParameter: str
    # "ami", "snapshot" or "none".
    Backup: str
    PublicKey: str | None
    KeyType: str
    KeyParameter: str | None
    KeyName: str | None
    PasswordParameter: str | None
    CreatePasswordEnabledAmi: bool
    OfflineFallback: bool
    Fallback: Fallback
    DryRun: bool


class DryRunPlan(Plan):
    """A dry run's plan: the steps a real run would take, in order."""

    Steps: list[str]


def is_reset(plan: PlanHeader | None) -> TypeIs[Plan]:
    """Is this a plan to reset, whose phases change things (not a skip, not a dry run)?"""
    return plan is not None and plan.get("Action") == "reset"
