"""The phase functions, one list: the stack deploys one function per entry, the definition
invokes them, the local engine loads their handlers and the fault tests inject into them."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_MEMORY_MB = 256
# Checks and the command send only ask or send; a slow answer is better retried by the ASL.
SHORT_SECONDS = 20


@dataclass(frozen=True)
class Phase:
    """One Lambda function: its name in the stack and the ASL, its code and its limits.

    `changes` says in a few words what it may change; its IAM rules are
    stacks/permissions.py PERMISSIONS[phase.handler] (tests/stack checks the two lists agree).
    """

    name: str
    module: str
    changes: str
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    memory_mb: int = DEFAULT_MEMORY_MB

    @property
    def handler(self) -> str:
        """The handler's module name, `check_volume`, which keys the permission table."""
        return self.module.rpartition(".")[2]

    @property
    def placeholder(self) -> str:
        """The definition's substitution for this function's ARN: `${CheckVolumeFunctionArn}`."""
        return f"{self.name}FunctionArn"


def _phase(name: str, handler: str, changes: str, **limits: int) -> Phase:
    return Phase(name, f"lambdas.handlers.{handler}", changes, **limits)


# In the order the definition first invokes them.
PREFLIGHT = _phase("Preflight", "preflight", "the instance's lock (taken)")
BACKUP = _phase("Backup", "backup", "an AMI or snapshot of the root volume (started)")
CREATE_KEY = _phase(
    "CreateKey",
    "create_key",
    "the pending key (created)",
    # RSA key generation is CPU-bound and Lambda's CPU grows with memory: 4x the CPU of
    # 256 MB for about the same cost, as the prime search's tail is long.
    memory_mb=1024,
)
RUN_RESCUE = _phase(
    "RunRescue", "run_rescue", "a Run Command invocation (sent)", timeout_seconds=30
)
CHECK_RESCUE = _phase(
    "CheckRescue",
    "check_rescue",
    "nothing (reads the command's result)",
    timeout_seconds=SHORT_SECONDS,
)
PREPARE_NETWORK = _phase(
    "PrepareNetwork", "prepare_network", "the helper's subnet and security group (found or made)"
)
LAUNCH_HELPER = _phase("LaunchHelper", "launch_helper", "the helper instance (launched)")
CHECK_HELPER = _phase(
    "CheckHelper",
    "check_helper",
    "nothing (reads the helper's state)",
    timeout_seconds=SHORT_SECONDS,
)
STOP_INSTANCE = _phase("StopInstance", "stop_instance", "the instance (stopped)")
CHECK_INSTANCE = _phase(
    "CheckInstance",
    "check_instance",
    "nothing (reads the instance's state)",
    timeout_seconds=SHORT_SECONDS,
)
DETACH_VOLUME = _phase("DetachVolume", "detach_volume", "the root volume (detached)")
CHECK_VOLUME = _phase(
    "CheckVolume",
    "check_volume",
    "nothing (reads the volume's state)",
    timeout_seconds=SHORT_SECONDS,
)
ATTACH_VOLUME = _phase("AttachVolume", "attach_volume", "the root volume (attached)")
CREATE_PASSWORD_AMI = _phase(
    "CreatePasswordAmi", "create_password_ami", "an AMI with password generation on (created)"
)
RESTORE_INSTANCE = _phase(
    "RestoreInstance",
    "restore_instance",
    "DeleteOnTermination (put back), the instance (started if it ran)",
)
CLEANUP = _phase("Cleanup", "cleanup", "the helper, its network and the pending key (deleted)")
PUBLISH_RESULT = _phase(
    "PublishResult",
    "publish_result",
    "the key (published), the result (written), the lock (released)",
)
# Mode replace-root only.
COPY_ROOT_VOLUME = _phase(
    "CopyRootVolume", "copy_root_volume", "a copy of the running root volume (made)"
)
REPLACE_ROOT = _phase(
    "ReplaceRoot",
    "replace_root",
    "the instance's root volume (replaced by the repaired copy; the instance reboots)",
)
CHECK_REPLACE_ROOT = _phase(
    "CheckReplaceRoot",
    "check_replace_root",
    "the old root volume's tag (once the replacement succeeded)",
    timeout_seconds=SHORT_SECONDS,
)
ROLLBACK = _phase("Rollback", "rollback", "the root volume and the instance (put back)")
RECORD_FAILURE = _phase(
    "RecordFailure", "record_failure", "the result (written), the lock (released)"
)

PHASES: tuple[Phase, ...] = (
    PREFLIGHT,
    BACKUP,
    CREATE_KEY,
    RUN_RESCUE,
    CHECK_RESCUE,
    PREPARE_NETWORK,
    LAUNCH_HELPER,
    CHECK_HELPER,
    STOP_INSTANCE,
    CHECK_INSTANCE,
    DETACH_VOLUME,
    CHECK_VOLUME,
    ATTACH_VOLUME,
    CREATE_PASSWORD_AMI,
    RESTORE_INSTANCE,
    CLEANUP,
    PUBLISH_RESULT,
    COPY_ROOT_VOLUME,
    REPLACE_ROOT,
    CHECK_REPLACE_ROOT,
    ROLLBACK,
    RECORD_FAILURE,
)

# Started by EventBridge when an execution is aborted, times out or fails, not by a Task; it
# runs rollback and cleanup for that execution in one go, with no ASL to retry it.
JANITOR = _phase(
    "Janitor", "janitor", "what Rollback, Cleanup and RecordFailure would have", timeout_seconds=900
)
EVENT_FUNCTIONS: tuple[Phase, ...] = (JANITOR,)

# The fleet workflow's own functions (statemachine/fleet.py); the ResetAccess executions it
# starts run the phases above.
RESOLVE_TARGETS = _phase(
    "ResolveTargets",
    "resolve_targets",
    "the fleet's error count (created)",
    # Paginated DescribeInstances in every account and Region of the fleet.
    timeout_seconds=120,
)
PUBLISH_FLEET_RESULT = _phase(
    "PublishFleetResult",
    "publish_fleet_result",
    "the fleet's result (written), its error count (deleted)",
)
# A target in another Region: Step Functions' StartExecution integration reaches only its own.
START_ELSEWHERE = _phase(
    "StartElsewhere",
    "start_elsewhere",
    "a ResetAccess execution in another Region (started)",
    timeout_seconds=SHORT_SECONDS,
)
CHECK_ELSEWHERE = _phase(
    "CheckElsewhere",
    "check_elsewhere",
    "nothing (reads that execution's status)",
    timeout_seconds=SHORT_SECONDS,
)
FLEET_PHASES: tuple[Phase, ...] = (
    RESOLVE_TARGETS,
    START_ELSEWHERE,
    CHECK_ELSEWHERE,
    PUBLISH_FLEET_RESULT,
)
FUNCTIONS: tuple[Phase, ...] = (*PHASES, *EVENT_FUNCTIONS, *FLEET_PHASES)


def by_name(name: str) -> Phase:
    """The function called `name` (`CheckVolume`), as the stack and the engine name it."""
    for phase in FUNCTIONS:
        if phase.name == name:
            return phase
    raise KeyError(f"no phase function {name!r} in statemachine/phases.py")
