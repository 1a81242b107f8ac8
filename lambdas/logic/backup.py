"""The backup taken before the root volume moves. Never waited for: an AMI or snapshot of a
stopped instance is point-in-time at the call, so the volume may move right away."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.logic.images import make_image, purpose_filter
from lambdas.logic.tags import tag_specifications
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

PURPOSE = "backup"


def take_backup(ec2: EC2Client, plan: Plan, first_attempt: bool = False) -> dict[str, Any]:
    """first_attempt: no earlier attempt can have started one, so none is looked for."""
    kind = plan["Backup"]
    execution = plan["Execution"]
    instance_id = plan["InstanceId"]
    if kind == "none":
        return {"Kind": "none"}
    if kind == "ami":
        image_id, _ = make_image(
            ec2,
            instance_id,
            execution,
            purpose=PURPOSE,
            name=f"ResetAccess-backup-{instance_id}-{{stamp}}",
            description=f"Backup of {instance_id} before ResetAccess execution {execution}",
            first_attempt=first_attempt,
        )
        return {"Kind": "ami", "ImageId": image_id}
    found = (
        []
        if first_attempt
        else ec2.describe_snapshots(OwnerIds=["self"], Filters=purpose_filter(execution, PURPOSE))[
            "Snapshots"
        ]
    )
    if found:
        return {"Kind": "snapshot", "SnapshotId": found[0]["SnapshotId"]}
    snapshot = ec2.create_snapshot(
        VolumeId=plan["RootVolumeId"],
        Description=f"Backup of {instance_id} root before ResetAccess execution {execution}",
        # Online the instance runs: a snapshot is crash-consistent, and needs no reboot.
        TagSpecifications=tag_specifications("snapshot", execution, Purpose=PURPOSE),
    )
    return {"Kind": "snapshot", "SnapshotId": snapshot["SnapshotId"]}
