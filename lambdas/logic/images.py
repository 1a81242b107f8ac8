"""The AMIs a run makes of the target (Backup's, and Windows' password-enabled one): one way to
make them, found again by the run's tag and their Purpose, so a retried call makes no second."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lambdas.logic.tags import execution_filter, tag_specifications

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef


def purpose_filter(execution: str, purpose: str) -> list[FilterTypeDef]:
    """This run's images or snapshots made for one purpose (a run may make several)."""
    return [*execution_filter(execution), {"Name": "tag:Purpose", "Values": [purpose]}]


def find_image(ec2: EC2Client, execution: str, purpose: str) -> str | None:
    images = ec2.describe_images(Owners=["self"], Filters=purpose_filter(execution, purpose))[
        "Images"
    ]
    return str(images[0]["ImageId"]) if images else None


def make_image(
    ec2: EC2Client,
    instance_id: str,
    execution: str,
    *,
    purpose: str,
    name: str,
    description: str,
    first_attempt: bool = False,
) -> tuple[str, bool]:
    """(image ID, made now): an AMI of the stopped instance, or the one an earlier attempt made
    (not looked for on the state's first attempt).

    Not waited for: an AMI of a stopped instance is point-in-time at the call, so the instance
    may change or start right away. name: a format string that gets `stamp` (UTC, no ":").
    """
    found = None if first_attempt else find_image(ec2, execution, purpose)
    if found:  # a retried call after a lost response
        return found, False
    image_id = ec2.create_image(
        InstanceId=instance_id,
        # AMI names allow no ":" (InvalidAMIName.Malformed).
        Name=name.format(stamp=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())),
        Description=description,
        # The instance is stopped already; never reboot a running one behind its owner's back.
        NoReboot=True,
        TagSpecifications=tag_specifications("image", execution, Purpose=purpose)
        + tag_specifications("snapshot", execution, Purpose=purpose),
    )["ImageId"]
    return str(image_id), True
