"""The backup taken before the root volume moves. Never waited for: an AMI or snapshot of a
stopped instance is point-in-time at the call, so the volume may move right away."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from lambdas.logic.tags import execution_filter, tag_specifications
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef


def take_backup(ec2: EC2Client, plan: Plan) -> dict[str, Any]:
    kind = plan["Backup"]
    execution = plan["Execution"]
    instance_id = plan["InstanceId"]
    if kind == "none":
        return {"Kind": "none"}
    # Only this run's backup: a Windows run also makes a password-enabled AMI with its tag.
    backups: list[FilterTypeDef] = [*execution_filter(execution),
                                    {"Name": "tag:Purpose", "Values": ["backup"]}]
    if kind == "ami":
        found = ec2.describe_images(Owners=["self"], Filters=backups)["Images"]
        if found:
            return {"Kind": "ami", "ImageId": found[0]["ImageId"]}
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        image_id = ec2.create_image(
            InstanceId=instance_id,
            # AMI names allow no ":" (InvalidAMIName.Malformed).
            Name=f"ResetAccess-backup-{instance_id}-{stamp}",
            Description=f"Backup of {instance_id} before ResetAccess execution {execution}",
            # The instance is stopped already; never reboot a running one behind the user's back.
            NoReboot=True,
            TagSpecifications=tag_specifications("image", execution, Purpose="backup")
            + tag_specifications("snapshot", execution, Purpose="backup"),
        )["ImageId"]
        return {"Kind": "ami", "ImageId": image_id}
    snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=backups)["Snapshots"]
    if snapshots:
        return {"Kind": "snapshot", "SnapshotId": snapshots[0]["SnapshotId"]}
    snapshot = ec2.create_snapshot(
        VolumeId=plan["RootVolumeId"],
        Description=f"Backup of {instance_id} root before ResetAccess execution {execution}",
        # Online the instance runs: a snapshot is crash-consistent, and needs no reboot.
        TagSpecifications=tag_specifications("snapshot", execution, Purpose="backup"),
    )
    return {"Kind": "snapshot", "SnapshotId": snapshot["SnapshotId"]}
