"""Rollback: read where things really are, and bring the root volume and the instance back.

It trusts nothing the state remembered beyond the plan (what the instance looked like before):
each call looks at EC2, moves one step, and raises NotReady until the world is as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.errors import NotReady, RollbackIncomplete
from lambdas.logic import replace_root
from lambdas.logic.consistency import not_yet_visible
from lambdas.logic.instances import instance_state, restore_delete_on_termination
from lambdas.logic.tags import tag_value
from lambdas.logic.volumes import attach_volume, attachment, describe_volume
from lambdas.names import EXECUTION_TAG
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def rollback(ec2: EC2Client, plan: Plan) -> dict[str, Any]:
    if plan.get("Mode") == "replace-root":
        return replace_root.roll_back(ec2, plan, _put_back)
    return _put_back(ec2, plan)


def _put_back(ec2: EC2Client, plan: Plan) -> dict[str, Any]:
    """The root volume back on the instance at its root device, the instance as it was."""
    instance_id = plan["InstanceId"]
    volume_id = plan["RootVolumeId"]
    device = plan["RootDeviceName"]
    volume = describe_volume(ec2, volume_id)
    current = attachment(volume)

    if current is None:
        if volume["State"] != "available":
            raise RollbackIncomplete(
                f"root volume {volume_id} is {volume['State']}; attach it to {instance_id} at "
                f"{device} when it is available"
            )
        # As ReattachRootVolume does: if it still runs and attached it first, that is done too.
        attach_volume(ec2, volume_id, instance_id, device)
        raise NotReady(f"attaching {volume_id} back to {instance_id} at {device}")

    holder = current["InstanceId"]
    if holder != instance_id:
        if not _created_by(ec2, holder, plan["Execution"]):
            raise RollbackIncomplete(
                f"root volume {volume_id} is attached to {holder}, which this execution did not "
                f"create; detach it there and attach it to {instance_id} at {device}"
            )
        if current["State"] != "detaching":
            ec2.detach_volume(VolumeId=volume_id, InstanceId=holder)
        raise NotReady(f"detaching {volume_id} from helper {holder}")

    if current["Device"] != device:
        raise RollbackIncomplete(
            f"root volume {volume_id} is on {instance_id} at {current['Device']}, not its root "
            f"device {device}; detach it and attach it at {device}"
        )
    if current["State"] != "attached":
        raise NotReady(f"{volume_id} is {current['State']} on {instance_id}")

    restore_delete_on_termination(ec2, plan)
    state = instance_state(ec2, instance_id)
    if state in ("pending", "stopping"):
        raise NotReady(f"{instance_id} is {state}")
    if plan["InitialState"] == "running" and state == "stopped":
        ec2.start_instances(InstanceIds=[instance_id])
        raise NotReady(f"starting {instance_id} again")
    return {
        "InstanceState": state,
        "RootVolume": f"{volume_id} at {device} on {instance_id}",
        "Did": _where_it_ended(plan, state),
    }


def _where_it_ended(plan: Plan, state: str) -> list[str]:
    """What the rollback left, read from EC2: its calls are retried one step at a time, so the
    end state is what every caller (the Rollback state, the janitor) can report truthfully."""
    instance_id, initial = plan["InstanceId"], plan["InitialState"]
    as_before = "as before the run" if state == initial else f"it was {initial} before the run"
    return [
        f"{plan['RootVolumeId']} is the root volume, at {plan['RootDeviceName']} on {instance_id}",
        f"{instance_id} is {state} ({as_before})",
    ]


def _created_by(ec2: EC2Client, instance_id: str, execution: str) -> bool:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        if not_yet_visible(error):
            # The volume's holder exists; EC2 does not know it everywhere yet.
            raise NotReady(f"helper {instance_id} is not visible to EC2 yet") from None
        raise
    instance = reservations[0]["Instances"][0] if reservations else {}
    return tag_value(instance, EXECUTION_TAG) == execution


def where_things_are(ec2: EC2Client, plan: Plan) -> str:
    """A sentence a person can act on, read from EC2 at the moment of failure."""
    instance_id = plan["InstanceId"]
    volume_id = plan["RootVolumeId"]
    device = plan["RootDeviceName"]
    try:
        state = instance_state(ec2, instance_id)
        volume = describe_volume(ec2, volume_id)
    except Exception as error:  # noqa: BLE001 - this sentence must never hide the first error
        return f"could not read {instance_id} and {volume_id} ({error})"
    current = attachment(volume)
    if current and current["InstanceId"] == instance_id and current["Device"] == device:
        place = f"root volume {volume_id} is at {device} on {instance_id}"
    elif current:
        place = (
            f"root volume {volume_id} is {current['State']} on {current['InstanceId']} at "
            f"{current['Device']}; move it back to {instance_id} at {device}"
        )
    else:
        place = (
            f"root volume {volume_id} is {volume['State']}; attach it with `aws ec2 "
            f"attach-volume --volume-id {volume_id} --instance-id {instance_id} "
            f"--device {device}`"
        )
    wanted = plan["InitialState"]
    tail = "" if state == wanted else f" (it was {wanted}: start it once the volume is back)"
    return f"{instance_id} is {state}{tail}; {place}"
