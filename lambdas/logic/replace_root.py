"""Mode replace-root: the instance keeps running; a copy of its root volume is repaired on the
helper and then takes the root's place through an EC2 root volume replacement task (one
reboot, same interfaces and addresses). The old root volume is kept, tagged, and reported.

Every step is safe to run again: creates carry a ClientToken derived from the execution, so a
retried call gets the first call's copy or task back (EC2's idempotency) instead of a second one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.errors import NotReady, RollbackIncomplete, UnexpectedState
from lambdas.logic.consistency import not_yet_visible, settled
from lambdas.logic.tags import execution_filter, tag_specifications, tag_value
from lambdas.logic.volumes import attachment, describe_volume
from lambdas.names import COPY_OF_TAG, EXECUTION_TAG, REPLACED_BY_TAG
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.literals import VolumeTypeType
    from mypy_boto3_ec2.type_defs import (
        CopyVolumesRequestTypeDef,
        FilterTypeDef,
        InstanceTypeDef,
        ReplaceRootVolumeTaskTypeDef,
        VolumeTypeDef,
    )

# Task states after which EC2 does nothing more (ReplaceRootVolumeTask.TaskState).
FINAL_STATES = ("succeeded", "failed", "failed-detached")
PURPOSE_TAG = "Purpose"
REPLACE = "replace-root"
PUT_BACK = "put-back-root"
TRADE = (
    "the new root volume is a crash-consistent copy taken at {copied}: writes made on the "
    "instance between the copy and its reboot exist only on the old root volume {old}, kept "
    "(tag {tag}); delete it once you no longer need it"
)


def client_token(execution: str, purpose: str) -> str:
    """The same token for every retry of one create, unique per execution and purpose (EC2
    allows 64 ASCII characters)."""
    return hashlib.sha256(f"{execution}/{purpose}".encode()).hexdigest()[:48]


def copy_root(ec2: EC2Client, plan: Plan) -> dict[str, Any]:
    """Copy the running root volume: same type and performance, tagged for this execution."""
    source = describe_volume(ec2, plan["RootVolumeId"])
    volume_type: VolumeTypeType = source.get("VolumeType", "gp2")
    request: CopyVolumesRequestTypeDef = {
        "SourceVolumeId": source["VolumeId"],
        # CopyVolumes defaults to gp2 whatever the source is.
        "VolumeType": volume_type,
        "ClientToken": client_token(plan["Execution"], "copy"),
        "TagSpecifications": tag_specifications(
            "volume", plan["Execution"], **{COPY_OF_TAG: source["VolumeId"]}
        ),
    }
    if volume_type in ("gp3", "io1", "io2") and source.get("Iops"):
        request["Iops"] = source["Iops"]
    if volume_type == "gp3" and source.get("Throughput"):
        request["Throughput"] = source["Throughput"]
    copy = ec2.copy_volumes(**request)["Volumes"][0]
    return {
        "VolumeId": copy["VolumeId"],
        "SourceVolumeId": source["VolumeId"],
        "CopiedAt": int(time.time()),
    }


def replace_root(ec2: EC2Client, plan: Plan, copy_id: str) -> dict[str, Any]:
    """Start replacing the root volume with the repaired copy; the old one is kept."""
    task = settled(
        lambda: ec2.create_replace_root_volume_task(
            InstanceId=plan["InstanceId"],
            VolumeId=copy_id,
            DeleteReplacedRootVolume=False,
            ClientToken=client_token(plan["Execution"], REPLACE),
            TagSpecifications=tag_specifications(
                "replace-root-volume-task", plan["Execution"], **{PURPOSE_TAG: REPLACE}
            ),
        )
    )["ReplaceRootVolumeTask"]
    return {"TaskId": task["ReplaceRootVolumeTaskId"], "State": task["TaskState"]}


def tasks_of(ec2: EC2Client, plan: Plan) -> list[ReplaceRootVolumeTaskTypeDef]:
    """This execution's root volume replacement tasks on the instance, oldest first."""
    found = ec2.describe_replace_root_volume_tasks(
        Filters=[{"Name": "instance-id", "Values": [plan["InstanceId"]]}]
    )["ReplaceRootVolumeTasks"]
    return [t for t in found if tag_value(t, EXECUTION_TAG) == plan["Execution"]]


def wait_replaced(ec2: EC2Client, plan: Plan, copy_id: str) -> dict[str, Any]:
    """Poll the task; once it succeeded, tag the old root volume it kept, and say what the
    run traded for never stopping the instance."""
    task = next((t for t in tasks_of(ec2, plan) if tag_value(t, PURPOSE_TAG) == REPLACE), None)
    if task is None:
        raise NotReady(
            f"the root volume replacement task of {plan['InstanceId']} is not listed yet"
        )
    state = task.get("TaskState", "pending")
    if state not in FINAL_STATES:
        # pending, in-progress, or failing: the final state says where the old root is.
        raise NotReady(f"root volume replacement task {task['ReplaceRootVolumeTaskId']} is {state}")
    if state != "succeeded":
        raise UnexpectedState(
            f"root volume replacement task {task['ReplaceRootVolumeTaskId']} of "
            f"{plan['InstanceId']} is {state}; rolling back to the old root volume "
            f"{plan['RootVolumeId']}"
        )
    old = plan["RootVolumeId"]
    ec2.create_tags(Resources=[old], Tags=[{"Key": REPLACED_BY_TAG, "Value": plan["Execution"]}])
    replaced = {
        "TaskId": task["ReplaceRootVolumeTaskId"],
        "RootVolumeId": copy_id,
        "ReplacedRootVolumeId": old,
        "At": time.time(),
    }
    # The task's own times (ReplaceRootVolumeTask: StartTime; CompleteTime, when "the instance
    # is available" again): the run's downtime is between them.
    for key in ("StartTime", "CompleteTime"):
        if task.get(key):
            replaced[key] = task[key]
    return replaced


# -- rollback ----------------------------------------------------------------------------------
def _instance(ec2: EC2Client, instance_id: str) -> InstanceTypeDef:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def _at_root(instance: InstanceTypeDef) -> str | None:
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == instance.get("RootDeviceName"):
            return mapping.get("Ebs", {}).get("VolumeId")
    return None


def _copy(ec2: EC2Client, plan: Plan) -> VolumeTypeDef | None:
    filters: list[FilterTypeDef] = [
        *execution_filter(plan["Execution"]),
        {"Name": f"tag:{COPY_OF_TAG}", "Values": [plan["RootVolumeId"]]},
    ]
    found = ec2.describe_volumes(Filters=filters)["Volumes"]
    return found[0] if found else None


Offline = Callable[["EC2Client", Plan], dict[str, Any]]


def roll_back(ec2: EC2Client, plan: Plan, offline: Offline) -> dict[str, Any]:
    """Put the old root volume back at the root device and delete the copy, reading EC2:
    wait for a task still running; after failed-detached (no root volume) stop, reattach and
    start as the offline rollback does; after a replacement that succeeded, a second task puts
    the old volume back (one more reboot)."""
    tasks = tasks_of(ec2, plan)
    for task in tasks:
        if task.get("TaskState") not in FINAL_STATES:
            raise NotReady(
                f"root volume replacement task {task['ReplaceRootVolumeTaskId']} is "
                f"{task.get('TaskState')}"
            )
    instance_id, old = plan["InstanceId"], plan["RootVolumeId"]
    instance = _instance(ec2, instance_id)
    at_root = _at_root(instance)
    copy = _copy(ec2, plan)
    if at_root is None:
        _reattach_old_root(ec2, plan, instance, offline)
    elif at_root != old:
        _put_back_old_root(ec2, plan, at_root, tasks)
    removed = _delete_copy(ec2, plan, copy)
    _untag_old_root(ec2, plan)
    # The old root at its device: the offline rollback's last steps (delete on termination,
    # the instance's state) finish the job.
    done = offline(ec2, plan)
    # A task was only ever created for a copy: no copy left means it is deleted (perhaps by
    # an earlier call of this rollback, which is asked again until everything is back).
    gone = removed or (f"the copy of {old}" if copy is None and tasks else None)
    return {**done, "Did": what_was_done(tasks, old, gone)}


def _reattach_old_root(
    ec2: EC2Client, plan: Plan, instance: InstanceTypeDef, offline: Offline
) -> None:
    """failed-detached: a root volume attaches only to a stopped instance; the offline
    rollback then attaches the old one at the root device and starts the instance."""
    state = instance["State"]["Name"]
    if state == "running":
        ec2.stop_instances(InstanceIds=[plan["InstanceId"]])
        raise NotReady(f"stopping {plan['InstanceId']}, which has no root volume, to reattach it")
    if state in ("pending", "stopping"):
        raise NotReady(f"{plan['InstanceId']} is {state}")
    offline(ec2, plan)


def _put_back_old_root(
    ec2: EC2Client, plan: Plan, at_root: str, tasks: list[ReplaceRootVolumeTaskTypeDef]
) -> None:
    put_back = next((t for t in tasks if tag_value(t, PURPOSE_TAG) == PUT_BACK), None)
    if put_back is not None and put_back.get("TaskState") == "failed":
        raise RollbackIncomplete(
            f"{plan['InstanceId']} runs on {at_root}; putting its old root volume "
            f"{plan['RootVolumeId']} back failed (task {put_back['ReplaceRootVolumeTaskId']}): "
            f"aws ec2 create-replace-root-volume-task --instance-id {plan['InstanceId']} "
            f"--volume-id {plan['RootVolumeId']}"
        )
    ec2.create_replace_root_volume_task(
        InstanceId=plan["InstanceId"],
        VolumeId=plan["RootVolumeId"],
        DeleteReplacedRootVolume=False,
        ClientToken=client_token(plan["Execution"], PUT_BACK),
        TagSpecifications=tag_specifications(
            "replace-root-volume-task", plan["Execution"], **{PURPOSE_TAG: PUT_BACK}
        ),
    )
    raise NotReady(
        f"putting {plan['RootVolumeId']} back as the root volume of {plan['InstanceId']}"
    )


def _untag_old_root(ec2: EC2Client, plan: Plan) -> None:
    """The old root volume is the root again: it no longer says it was replaced."""
    old = describe_volume(ec2, plan["RootVolumeId"])
    if tag_value(old, REPLACED_BY_TAG) == plan["Execution"]:
        ec2.delete_tags(Resources=[old["VolumeId"]], Tags=[{"Key": REPLACED_BY_TAG}])


def _delete_copy(ec2: EC2Client, plan: Plan, copy: VolumeTypeDef | None) -> str | None:
    """The copy goes once it is free: detached from the helper if it is there."""
    if copy is None:
        return None
    volume_id = copy["VolumeId"]
    current = attachment(copy)
    try:
        if current is not None:
            if current["InstanceId"] == plan["InstanceId"]:
                raise UnexpectedState(f"the copy {volume_id} is still on {plan['InstanceId']}")
            if current["State"] != "detaching":
                ec2.detach_volume(VolumeId=volume_id, InstanceId=current["InstanceId"])
            raise NotReady(f"detaching the copy {volume_id} from {current['InstanceId']}")
        if copy["State"] == "creating":
            raise NotReady(f"the copy {volume_id} is still being created")
        ec2.delete_volume(VolumeId=volume_id)
    except ClientError as error:
        if not_yet_visible(error):
            # Listed by the describe, so it exists: EC2 does not know it everywhere yet.
            raise NotReady(f"the copy {volume_id} is not visible to EC2 yet") from None
        raise
    return volume_id


def what_was_done(
    tasks: list[ReplaceRootVolumeTaskTypeDef], old: str, removed: str | None
) -> list[str]:
    """A replace-root rollback's RollbackDid: each task and how it ended, where the old root
    is ("again" only where it had left the root device), and the copy it deleted."""
    did = []
    for task in tasks:
        purpose = "put the old root back" if tag_value(task, PURPOSE_TAG) == PUT_BACK else "replace"
        did.append(f"task {task['ReplaceRootVolumeTaskId']} ({purpose}) ended {task['TaskState']}")
    if any(t.get("TaskState") == "failed-detached" for t in tasks):
        did.append(f"stopped the instance, attached {old} at its root device, started it")
    # "again" only where it left the root device (a task succeeded or failed detached): after
    # an abort before ReplaceRoot, or a task that failed with the old root attached, it never
    # moved, and the result claims no putting back.
    moved = any(t.get("TaskState") in ("succeeded", "failed-detached") for t in tasks)
    did.append(f"{old} is the root volume again" if moved else f"{old} is the root volume")
    if removed:
        did.append(f"deleted the copy {removed}")
    return did
