"""Windows: where the new password comes from, the password-enabled AMI, and what to tell the
person who lost access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.logic.images import find_image, make_image
from lambdas.plan import Plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

PASSWORD_AMI_PURPOSE = "password-enabled"  # noqa: S105 - a tag value, not a password


def find_password_ami(ec2: EC2Client, execution: str) -> str | None:
    return find_image(ec2, execution, PASSWORD_AMI_PURPOSE)


def create_password_ami(ec2: EC2Client, plan: Plan, first_attempt: bool = False) -> dict[str, Any]:
    """An AMI of the stopped instance whose launch agent now sets a new password at boot:
    launched with a new key pair, it gives a password that key decrypts. Not waited for, so
    the instance may start right away."""
    instance_id = plan["InstanceId"]
    execution = plan["Execution"]
    image_id, created = make_image(
        ec2,
        instance_id,
        execution,
        purpose=PASSWORD_AMI_PURPOSE,
        name=f"ResetAccess password-enabled {instance_id} {{stamp}}",
        description=(
            f"{instance_id} with Administrator password generation on, made by "
            f"ResetAccess execution {execution}"
        ),
        first_attempt=first_attempt,
    )
    return {"PasswordEnabledImageId": image_id, "Created": created}


def how_to_get_password(plan: Plan, image_id: str | None) -> list[str]:
    """Sentences a person can follow to get the new Administrator password."""
    instance_id = plan["InstanceId"]
    if plan["Mode"] == "online":
        name = plan["PasswordParameter"]
        return [
            f"aws ssm get-parameter --name {name} --with-decryption "
            "--query Parameter.Value --output text"
        ]
    key = plan.get("KeyName")
    start = (
        ""
        if plan["InitialState"] == "running"
        else f"start it (aws ec2 start-instances --instance-ids {instance_id}), then "
    )
    if key:
        steps = [
            f"with the instance's key pair ({key}): {start}allow up to 15 minutes after the "
            f"start and run aws ec2 get-password-data --instance-id {instance_id} "
            f"--priv-launch-key {key}.pem"
        ]
    else:
        steps = [
            f"{instance_id} has no key pair, so EC2 cannot encrypt a password for it: "
            "use the password-enabled AMI with a new key pair"
        ]
    if image_id:
        steps.append(
            f"without that key pair: launch {image_id} with a new key pair, then "
            "get-password-data for the new instance with the new key"
        )
    return steps
