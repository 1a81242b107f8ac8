"""Moving the root volume: detach, attach, and polls that wait for EC2 to finish each move."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from lambdas.errors import NotReady, UnexpectedState
from lambdas.logic.consistency import settled

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import VolumeAttachmentTypeDef, VolumeTypeDef


# EC2's refusals of an attach or detach the volume's attachment explains (Error codes for the
# Amazon EC2 API): a Describe then says whether an earlier attempt already did it.
NOT_AS_ASKED = frozenset({"IncorrectState", "InvalidAttachment.NotFound", "VolumeInUse"})


def describe_volume(ec2: EC2Client, volume_id: str) -> VolumeTypeDef:
    # Replace-root's copy is a volume the run just made: EC2 may not know its ID yet.
    return settled(lambda: ec2.describe_volumes(VolumeIds=[volume_id]))["Volumes"][0]


def attachment(volume: VolumeTypeDef) -> VolumeAttachmentTypeDef | None:
    for item in volume.get("Attachments", []):
        if item.get("State") in ("attaching", "attached", "detaching"):
            return item
    return None


def detach_volume(ec2: EC2Client, volume_id: str, instance_id: str) -> dict[str, Any]:
    """DetachVolume names the instance and EC2 refuses it unless the volume is attached there,
    so EC2 is asked directly; only a refusal needs a Describe, to say where the volume is."""
    try:
        # The instance may be the helper this run launched: its ID may not have propagated.
        settled(lambda: ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id))
        return {"VolumeId": volume_id, "Detached": True}
    except ClientError as error:
        if _code(error) not in NOT_AS_ASKED:
            raise
    volume = describe_volume(ec2, volume_id)
    current = attachment(volume)
    if current is None:
        return {"VolumeId": volume_id, "Detached": False}
    if current["InstanceId"] != instance_id:
        raise UnexpectedState(
            f"{volume_id} is attached to {current['InstanceId']}, not {instance_id}; "
            "not detaching a volume this run did not expect there"
        )
    if current["State"] != "detaching":
        settled(lambda: ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id))
    return {"VolumeId": volume_id, "Detached": True}


def attach_volume(ec2: EC2Client, volume_id: str, instance_id: str, device: str) -> dict[str, Any]:
    """EC2 refuses to attach a volume that is attached anywhere (VolumeInUse) or not available,
    so EC2 is asked directly; only a refusal needs a Describe: attached here at this device
    (an earlier attempt) is done, anywhere else is not ours to move."""
    attached = {"VolumeId": volume_id, "InstanceId": instance_id, "Device": device}
    try:
        # The instance may be the helper this run launched: its ID may not have propagated.
        settled(
            lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
        )
        return attached
    except ClientError as error:
        if _code(error) not in NOT_AS_ASKED:
            raise
    volume = describe_volume(ec2, volume_id)
    current = attachment(volume)
    if current is not None:
        if current["InstanceId"] == instance_id and current["Device"] == device:
            return attached
        raise UnexpectedState(
            f"{volume_id} is {current['State']} on {current['InstanceId']} at "
            f"{current['Device']}; expected it free to attach to {instance_id}"
        )
    if volume["State"] != "available":
        raise NotReady(f"{volume_id} is {volume['State']}")
    # Free by now (it was still detaching when EC2 refused).
    settled(lambda: ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device))
    return attached


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def wait_volume(
    ec2: EC2Client, volume_id: str, wanted: str, instance_id: str | None = None
) -> dict[str, Any]:
    """wanted is 'available' or 'attached' (to instance_id)."""
    volume = describe_volume(ec2, volume_id)
    current = attachment(volume)
    if wanted == "available":
        if volume["State"] == "available" and current is None:
            return {"VolumeId": volume_id, "State": "available"}
        raise NotReady(
            f"{volume_id} is {volume['State']}"
            + (f" ({current['State']} on {current['InstanceId']})" if current else "")
        )
    if current and current["InstanceId"] == instance_id and current["State"] == "attached":
        return {
            "VolumeId": volume_id,
            "State": "attached",
            "InstanceId": instance_id,
            "Device": current["Device"],
        }
    if current and current["InstanceId"] != instance_id:
        raise UnexpectedState(f"{volume_id} went to {current['InstanceId']}, not {instance_id}")
    raise NotReady(f"{volume_id} is not yet attached to {instance_id}")
