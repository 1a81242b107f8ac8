"""The AMIs a run makes (lambdas/logic/images.py) against moto: Backup's and the password-enabled
one, each made once per run and told apart by their Purpose tag."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.ec2.models.amis import AmiBackend

from lambdas.logic.backup import PURPOSE, take_backup
from lambdas.logic.windows import PASSWORD_AMI_PURPOSE, create_password_ami, find_password_ami
from lambdas.names import EXECUTION_TAG
from local import emulator
from tests.support.moto_world import World


@pytest.fixture(autouse=True)
def snapshot_tags() -> Iterator[None]:
    """moto refuses CreateImage's snapshot tags, which AWS applies: the engine's correction."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            AmiBackend,
            "create_image",
            emulator.create_image_tagging_snapshots(AmiBackend.create_image),
        )
        yield


def tags(world: World, image_id: str) -> dict[str, str]:
    image = world.ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return {t["Key"]: t["Value"] for t in image.get("Tags", [])}


def test_a_retried_backup_finds_the_ami_it_made(world: World) -> None:
    world.stop()
    world.plan["Backup"] = "ami"

    first = take_backup(world.ec2, world.plan)
    again = take_backup(world.ec2, world.plan)

    assert first == again == {"Kind": "ami", "ImageId": first["ImageId"]}
    assert tags(world, first["ImageId"])[EXECUTION_TAG] == world.execution
    assert tags(world, first["ImageId"])["Purpose"] == PURPOSE


def test_the_password_enabled_ami_is_not_taken_for_the_backup(world: World) -> None:
    world.stop()
    world.plan["Backup"] = "ami"

    backup = take_backup(world.ec2, world.plan)
    made = create_password_ami(world.ec2, world.plan)
    again = create_password_ami(world.ec2, world.plan)

    image_id = made["PasswordEnabledImageId"]
    assert made == {"PasswordEnabledImageId": image_id, "Created": True}
    assert again == {"PasswordEnabledImageId": image_id, "Created": False}
    assert image_id != backup["ImageId"]
    assert tags(world, image_id)["Purpose"] == PASSWORD_AMI_PURPOSE
    assert find_password_ami(world.ec2, world.execution) == image_id
    assert take_backup(world.ec2, world.plan) == backup


def test_an_ami_name_has_its_instance_and_no_colon(world: World) -> None:
    world.stop()
    world.plan["Backup"] = "ami"

    image_id = take_backup(world.ec2, world.plan)["ImageId"]

    name = world.ec2.describe_images(ImageIds=[image_id])["Images"][0]["Name"]
    assert name.startswith(f"ResetAccess-backup-{world.instance_id}-")
    assert ":" not in name
