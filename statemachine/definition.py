"""The ResetAccess workflow in Amazon States Language, built as a dict: each state shows what is
special about it, and the retry and catch rules come from statemachine/policies.py.

`render()` is the JSON the stack deploys (with `${XxxFunctionArn}` placeholders that
CloudFormation substitutes) and the local engine runs, byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from statemachine import policies
from statemachine.phases import (
    ATTACH_VOLUME,
    BACKUP,
    CHECK_HELPER,
    CHECK_INSTANCE,
    CHECK_REPLACE_ROOT,
    CHECK_RESCUE,
    CHECK_VOLUME,
    CLEANUP,
    COPY_ROOT_VOLUME,
    CREATE_KEY,
    CREATE_PASSWORD_AMI,
    DETACH_VOLUME,
    LAUNCH_HELPER,
    PREFLIGHT,
    PREPARE_NETWORK,
    PUBLISH_RESULT,
    RECORD_FAILURE,
    REPLACE_ROOT,
    RESTORE_INSTANCE,
    ROLLBACK,
    RUN_RESCUE,
    STOP_INSTANCE,
)
from statemachine.policies import TO_ROLLBACK, catch
from statemachine.states import PLAN, State, choice, fail, parallel, task, walk

# A run that takes longer than this has gone wrong; the janitor then puts things back.
TIMEOUT_SECONDS = 7200
HELPER_ID = "$.prepared.helper.InstanceId"
# The helper's spare slot for the customer's root volume.
HELPER_DEVICE = "/dev/sdf"


def _entry_states() -> dict[str, State]:
    """Preflight and where its plan sends the run: nowhere, the online path or the helper's."""
    return {
        "Preflight": task(
            PREFLIGHT,
            result="$",
            params={"executionArn.$": "$$.Execution.Id", "input.$": "$"},
            then="Route",
            catches=[
                policies.catch_raised("ReadRefusal", result_path="$"),
                catch("PreflightFailed", result_path="$"),
            ],
            comment="Validate, inspect, lock, plan. A refusal here has changed nothing.",
        ),
        "ReadRefusal": {
            "Type": "Pass",
            "Comment": "The Cause is the function's error as JSON: keep its sentence only.",
            "Parameters": {"Error.$": "$.Error", "Cause.$": "States.StringToJson($.Cause)"},
            "ResultPath": "$",
            "Next": "Refused",
        },
        "Refused": fail(
            "$.Error", "$.Cause.errorMessage", "Refused in Preflight: nothing was changed."
        ),
        "PreflightFailed": fail(
            "$.Error", "$.Cause", "Preflight did not finish (Lambda or Step Functions error)."
        ),
        "Route": choice(
            "Prepare",
            ("$.plan.Action", "StringEquals", "skip", "NotOptedIn"),
            ("$.plan.Action", "StringEquals", "dry-run", "DryRunPlan"),
            ("$.plan.Mode", "StringEquals", "online", "BackupOnline"),
            ("$.plan.Mode", "StringEquals", "replace-root", "PrepareCopy"),
        ),
        "NotOptedIn": {
            "Type": "Succeed",
            "Comment": "Alarm for an instance without the opt-in tag: nothing changed.",
            "OutputPath": "$.plan",
        },
        "DryRunPlan": {
            "Type": "Succeed",
            "Comment": "DryRun: the plan, no change.",
            "OutputPath": "$.plan",
        },
    }


def _online_states() -> dict[str, State]:
    """Online: the rescue runs on the instance itself; if it cannot, maybe the helper can."""
    to_online_failed = [catch("OnlineFailed", errors=policies.RESCUE_FAILED), *TO_ROLLBACK]
    return {
        "BackupOnline": task(
            BACKUP,
            result="$.backup",
            then="CreateKeyOnline",
            catches=TO_ROLLBACK,
            comment="Online: no stop, no helper. A snapshot of the running root volume, not "
            "waited for.",
        ),
        "CreateKeyOnline": task(
            CREATE_KEY, result="$.key", then="RunRescueOnline", catches=TO_ROLLBACK
        ),
        "RunRescueOnline": task(
            RUN_RESCUE,
            result="$.command",
            then="WaitRescueOnline",
            catches=to_online_failed,
            params={
                **PLAN,
                "instanceId.$": "$.plan.InstanceId",
                "target": "/",
                "publicKey.$": "$.key.PublicKey",
            },
            comment="On the instance itself: the rescue document on / (Linux), or AWS's "
            "EC2Rescue for Windows ResetAccess (Windows).",
        ),
        "WaitRescueOnline": task(
            CHECK_RESCUE,
            result="$.rescue",
            then="PublishResult",
            poll=policies.RESCUE,
            catches=to_online_failed,
            params={
                "commandId.$": "$.command.CommandId",
                "instanceId.$": "$.command.InstanceId",
                "since.$": "$.plan.StartedAt",
            },
        ),
        "OnlineFailed": choice(
            "Rollback",
            ("$.plan.OfflineFallback", "BooleanEquals", True, "FallBackOffline"),
            comment="Mode auto: the helper path can still do it (Preflight decides).",
        ),
        "FallBackOffline": {
            "Type": "Pass",
            "Comment": "The same plan, offline; the online error goes into the result.",
            "Parameters": {
                "plan.$": "States.JsonMerge($.plan, $.plan.Fallback, false)",
                "onlineError.$": "$.error",
            },
            "ResultPath": "$",
            "Next": "Prepare",
        },
    }


def _prepare() -> State:
    """The helper, the stopped and detached target, and the key, at once."""
    helper = {
        "PrepareNetwork": task(PREPARE_NETWORK, result="$.network", then="LaunchHelper"),
        "LaunchHelper": task(
            LAUNCH_HELPER,
            result="$.helper",
            then="WaitHelperReady",
            params={**PLAN, "network.$": "$.network"},
        ),
        "WaitHelperReady": task(
            CHECK_HELPER,
            result=None,
            poll=policies.HELPER_READY,
            params={"helperId.$": "$.helper.InstanceId"},
        ),
    }
    target = {
        "WaitHelperLaunched": task(
            CHECK_HELPER,
            result=None,
            then="StopInstance",
            poll=policies.HELPER_LAUNCHED,
            params={"wanted": "running"},
            comment="Stop only once the helper runs: a helper that cannot launch never costs "
            "the instance a stop, and the downtime no longer includes the helper's "
            "network and launch.",
        ),
        "StopInstance": task(STOP_INSTANCE, result=None, then="WaitStopped"),
        "WaitStopped": task(
            CHECK_INSTANCE,
            # When the instance was seen stopped: the start of its downtime (the metrics').
            result="$.stopped",
            then="Backup",
            poll=policies.INSTANCE,
            params={"instanceId.$": "$.plan.InstanceId", "wanted": "stopped"},
        ),
        "Backup": task(BACKUP, result="$.backup", then="DetachRootVolume"),
        "DetachRootVolume": task(
            DETACH_VOLUME,
            result=None,
            then="WaitRootDetached",
            params={"volumeId.$": "$.plan.RootVolumeId", "instanceId.$": "$.plan.InstanceId"},
        ),
        "WaitRootDetached": task(
            CHECK_VOLUME,
            result="$.detached",
            poll=policies.VOLUME,
            params={"volumeId.$": "$.plan.RootVolumeId", "wanted": "available"},
        ),
    }
    key = {"CreateKey": task(CREATE_KEY, result="$.key")}
    return parallel(
        [helper, target, key],
        selector={
            "network.$": "$[0].network",
            "helper.$": "$[0].helper",
            "backup.$": "$[1].backup",
            "detached.$": "$[1].detached",
            "stopped.$": "$[1].stopped",
            "key.$": "$[2].key",
        },
        result="$.prepared",
        then="AttachToHelper",
        comment="Helper, target and key at once: the instance stops once its helper runs, and "
        "is detached while the helper boots.",
    )


def _offline_states() -> dict[str, State]:
    """The helper path: the root volume goes to the helper, is repaired, and comes back."""
    return {
        "Prepare": _prepare(),
        **_repair_on_helper(
            "$.plan.RootVolumeId",
            (
                "AttachToHelper",
                "WaitAttachedToHelper",
                "RunRescue",
                "WaitRescue",
                "DetachFromHelper",
                "WaitDetachedFromHelper",
            ),
            attach_result="$.attached",
            then="Finish",
        ),
        "Finish": _finish(),
    }


def _repair_on_helper(
    volume: str, names: tuple[str, str, str, str, str, str], attach_result: str | None, then: str
) -> dict[str, State]:
    """The volume at `volume` goes to the helper, the rescue command repairs it, and it comes
    off again: the same six states for the root volume (offline) and its copy (replace-root)."""
    attach, attached, rescue, rescued, detach, detached = names
    on_helper = {"volumeId.$": volume, "instanceId.$": HELPER_ID}
    return {
        attach: task(
            ATTACH_VOLUME,
            result=attach_result,
            then=attached,
            catches=TO_ROLLBACK,
            params={**on_helper, "device": HELPER_DEVICE},
        ),
        attached: task(
            CHECK_VOLUME,
            result=None,
            then=rescue,
            poll=policies.VOLUME,
            catches=TO_ROLLBACK,
            params={**on_helper, "wanted": "attached"},
        ),
        rescue: task(
            RUN_RESCUE,
            result="$.command",
            then=rescued,
            catches=TO_ROLLBACK,
            params={
                **PLAN,
                "instanceId.$": HELPER_ID,
                "target.$": volume,
                "publicKey.$": "$.prepared.key.PublicKey",
            },
        ),
        rescued: task(
            CHECK_RESCUE,
            result="$.rescue",
            then=detach,
            poll=policies.RESCUE,
            catches=TO_ROLLBACK,
            params={"commandId.$": "$.command.CommandId", "instanceId.$": "$.command.InstanceId"},
        ),
        detach: task(
            DETACH_VOLUME,
            result=None,
            then=detached,
            catches=TO_ROLLBACK,
            params=on_helper,
        ),
        detached: task(
            CHECK_VOLUME,
            result=None,
            then=then,
            poll=policies.VOLUME,
            catches=TO_ROLLBACK,
            params={"volumeId.$": volume, "wanted": "available"},
        ),
    }


def _finish() -> State:
    """The instance comes back while the helper and its network go away."""
    instance = {
        "ReattachRootVolume": task(
            ATTACH_VOLUME,
            result=None,
            then="WaitReattached",
            params={
                "volumeId.$": "$.plan.RootVolumeId",
                "instanceId.$": "$.plan.InstanceId",
                "device.$": "$.plan.RootDeviceName",
            },
            comment="Back at the ORIGINAL root device name, or the instance will not boot.",
        ),
        "WaitReattached": task(
            CHECK_VOLUME,
            result=None,
            then="NeedPasswordAmi",
            poll=policies.VOLUME,
            params={
                "volumeId.$": "$.plan.RootVolumeId",
                "wanted": "attached",
                "instanceId.$": "$.plan.InstanceId",
            },
        ),
        "NeedPasswordAmi": choice(
            "RestoreInstance",
            ("$.plan.CreatePasswordEnabledAmi", "BooleanEquals", True, "CreatePasswordAmi"),
            comment="Windows offline with CreatePasswordEnabledAmi (Preflight decides).",
        ),
        "CreatePasswordAmi": task(
            CREATE_PASSWORD_AMI,
            result="$.passwordAmi",
            then="RestoreInstance",
            comment="From the stopped instance, password generation on; not waited for.",
        ),
        "RestoreInstance": task(
            RESTORE_INSTANCE, result="$.restore", then="WaitInitialState", poll=policies.RESTORE
        ),
        "WaitInitialState": task(
            CHECK_INSTANCE,
            result="$.running",
            poll=policies.INSTANCE,
            params={"instanceId.$": "$.plan.InstanceId", "wanted.$": "$.plan.InitialState"},
        ),
    }
    helper = {
        "CleanUp": task(
            CLEANUP,
            result="$.cleanup",
            poll=policies.CLEANUP,
            params={**PLAN, "network.$": "$.prepared.network"},
        )
    }
    return parallel(
        [instance, helper],
        selector={
            "restore.$": "$[0].restore",
            "running.$": "$[0].running",
            "cleanup.$": "$[1].cleanup",
        },
        result="$.finished",
        then="PublishResult",
        comment="The instance comes back while the helper and its network go away.",
    )


COPY_ID = "$.prepared.copy.VolumeId"


def _prepare_copy() -> State:
    """The helper, a copy of the running root volume, and the key, at once."""
    helper = {
        "PrepareNetworkForCopy": task(
            PREPARE_NETWORK, result="$.network", then="LaunchHelperForCopy"
        ),
        "LaunchHelperForCopy": task(
            LAUNCH_HELPER,
            result="$.helper",
            then="WaitHelperReadyForCopy",
            params={**PLAN, "network.$": "$.network"},
        ),
        "WaitHelperReadyForCopy": task(
            CHECK_HELPER,
            result=None,
            poll=policies.HELPER_READY,
            params={"helperId.$": "$.helper.InstanceId"},
        ),
    }
    copy = {
        "BackupRunning": task(
            BACKUP,
            result="$.backup",
            then="CopyRootVolume",
            comment="A snapshot of the running root volume, not waited for (an AMI would "
            "reboot it); the old root volume is kept as well.",
        ),
        "CopyRootVolume": task(
            COPY_ROOT_VOLUME,
            result="$.copy",
            then="WaitCopyAvailable",
            comment="Crash-consistent, point in time: the instance keeps running.",
        ),
        "WaitCopyAvailable": task(
            CHECK_VOLUME,
            result=None,
            poll=policies.VOLUME,
            params={"volumeId.$": "$.copy.VolumeId", "wanted": "available"},
        ),
    }
    key = {"CreateKeyForCopy": task(CREATE_KEY, result="$.key")}
    return parallel(
        [helper, copy, key],
        selector={
            "network.$": "$[0].network",
            "helper.$": "$[0].helper",
            "backup.$": "$[1].backup",
            "copy.$": "$[1].copy",
            "key.$": "$[2].key",
        },
        result="$.prepared",
        then="AttachCopyToHelper",
        comment="Replace-root: the helper boots while the running root volume is copied.",
    )


def _replace_root_states() -> dict[str, State]:
    """Mode replace-root: the copy is repaired on the helper and replaces the root volume of
    the running instance (one reboot); the instance is never stopped."""
    return {
        "PrepareCopy": _prepare_copy(),
        **_repair_on_helper(
            COPY_ID,
            (
                "AttachCopyToHelper",
                "WaitCopyAttached",
                "RescueCopy",
                "WaitRescueCopy",
                "DetachCopyFromHelper",
                "WaitCopyDetached",
            ),
            attach_result=None,
            then="ReplaceRootAndCleanUp",
        ),
        "ReplaceRootAndCleanUp": _replace_and_clean_up(),
    }


def _replace_and_clean_up() -> State:
    """The repaired copy becomes the root volume while the helper and its network go away."""
    instance = {
        "ReplaceRoot": task(
            REPLACE_ROOT,
            result=None,
            then="WaitRootReplaced",
            params={**PLAN, "volumeId.$": COPY_ID},
            comment="DeleteReplacedRootVolume false: the old root volume is kept.",
        ),
        "WaitRootReplaced": task(
            CHECK_REPLACE_ROOT,
            result="$.replaced",
            poll=policies.REPLACE_ROOT,
            params={**PLAN, "volumeId.$": COPY_ID},
        ),
    }
    helper = {"CleanUpHelper": task(CLEANUP, result="$.cleanup", poll=policies.CLEANUP)}
    return parallel(
        [instance, helper],
        selector={
            "replaced.$": "$[0].replaced",
            "running.$": "$[0].replaced",
            "cleanup.$": "$[1].cleanup",
        },
        result="$.finished",
        then="PublishResult",
        comment="The root volume is replaced (one reboot) while the helper goes away.",
    )


def _ending_states() -> dict[str, State]:
    """Success publishes the key; failure rolls back, cleans up and records, each step going
    on to the next even if it fails."""
    return {
        "PublishResult": task(
            PUBLISH_RESULT,
            result="$.result",
            then="Done",
            catches=TO_ROLLBACK,
            params={"run.$": "$"},
        ),
        "Done": {"Type": "Succeed", "OutputPath": "$.result"},
        "Rollback": task(
            ROLLBACK,
            result="$.rollback",
            then="CleanUpAfterFailure",
            poll=policies.ROLLBACK,
            catches=[catch("CleanUpAfterFailure", result_path="$.rollbackError")],
            comment="Reads the world from EC2 and puts the root volume and the instance back "
            "as they were.",
        ),
        "CleanUpAfterFailure": task(
            CLEANUP,
            result="$.cleanup",
            then="RecordFailure",
            poll=policies.CLEANUP,
            catches=[catch("RecordFailure", result_path="$.cleanupError")],
            params={**PLAN, "afterFailure": True},
        ),
        "RecordFailure": task(
            RECORD_FAILURE,
            result="$.failure",
            then="Failed",
            params={"run.$": "$"},
            catches=[catch("FailedUnrecorded", result_path="$.recordError")],
        ),
        "Failed": fail(
            "$.failure.Error",
            "$.failure.Cause",
            "Rolled back and cleaned up; the cause says where things are.",
        ),
        "FailedUnrecorded": fail(
            "$.error.Error",
            "$.error.Cause",
            "The failure could not be recorded; the janitor releases the lock.",
        ),
    }


def definition() -> dict[str, Any]:
    """The state machine, as the dict `render()` writes out."""
    return {
        "Comment": "ResetAccess: give back SSH or Administrator access to an EC2 instance. "
        "See README.md.",
        "StartAt": "Preflight",
        "TimeoutSeconds": TIMEOUT_SECONDS,
        "States": {
            **_entry_states(),
            **_online_states(),
            **_offline_states(),
            **_replace_root_states(),
            **_ending_states(),
        },
    }


def render() -> str:
    """The definition as JSON text, `${XxxFunctionArn}` placeholders in its Task Resources."""
    return json.dumps(definition(), indent=2, ensure_ascii=False) + "\n"


# CloudFormation's definition_substitutions syntax (AWS::StepFunctions::StateMachine).
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def placeholders(text: str) -> set[str]:
    """The `${Name}` substitutions a rendered definition needs."""
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, values: Mapping[str, str]) -> str:
    """The definition as deployed: each `${Name}` replaced, as CloudFormation does, and none
    left unknown (the stack refuses that at synth; CloudFormation would keep it as text)."""
    unknown = sorted(placeholders(text) - set(values))
    if unknown:
        raise ValueError(f"the workflow uses ${{{', '.join(unknown)}}}, which is not given")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def tasks(states: Mapping[str, State] | None = None) -> Iterator[tuple[str, State]]:
    """Every Task state with its name (of the definition, unless `states` is given)."""
    for name, state in walk(definition()["States"] if states is None else states):
        if state["Type"] == "Task":
            yield name, state
