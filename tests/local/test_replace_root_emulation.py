"""EC2 CopyVolumes and root volume replacement as the engine emulates them (moto 5.2.5 has
neither), each test stating the documented behaviour it checks (local/replace_root.py):

- API_CopyVolumes: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyVolumes.html
- API_CreateReplaceRootVolumeTask and API_ReplaceRootVolumeTask (TaskState), and the user
  guide https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/replace-root.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import emulator
from tests.support.corrected_moto import corrected_moto


@dataclass
class Aws:
    world: emulator.SsmWorld
    ec2: Any
    instance_id: str
    root: str

    def instance(self) -> dict[str, Any]:
        found = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        return dict(found["Reservations"][0]["Instances"][0])

    def at_root(self) -> str | None:
        instance = self.instance()
        for mapping in instance["BlockDeviceMappings"]:
            if mapping["DeviceName"] == instance["RootDeviceName"]:
                return str(mapping["Ebs"]["VolumeId"])
        return None

    def volume(self, volume_id: str) -> dict[str, Any]:
        return dict(self.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0])

    def available_copy(self, **params: Any) -> str:
        copy = self.ec2.copy_volumes(SourceVolumeId=self.root, **params)["Volumes"][0]
        states = [self.volume(copy["VolumeId"])["State"] for _ in range(2)]
        assert states == ["creating", "available"], states
        return str(copy["VolumeId"])

    def task_states(self, task_id: str, polls: int = 5) -> list[str]:
        states = []
        for _ in range(polls):
            task = self.ec2.describe_replace_root_volume_tasks(ReplaceRootVolumeTaskIds=[task_id])
            states.append(task["ReplaceRootVolumeTasks"][0]["TaskState"])
        return states


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Aws]:
    with corrected_moto() as (world, ec2, image):
        instance = ec2.run_instances(
            ImageId=image,
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.micro",
            Placement={"AvailabilityZone": "us-east-1a"},
        )["Instances"][0]
        root = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        tree = tmp_path / root
        (tree / "etc").mkdir(parents=True)
        (tree / "etc/hostname").write_text("web\n")
        world.volume_trees[root] = tree
        yield Aws(world, ec2, instance["InstanceId"], root)


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


# -- CopyVolumes ---------------------------------------------------------------------------------
def test_a_copy_is_creating_then_available_in_the_same_zone_with_its_tags(aws: Aws) -> None:
    # "The volume copy can be attached ... once it reaches the available state."
    copy = aws.ec2.copy_volumes(
        SourceVolumeId=aws.root,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["Volumes"][0]
    assert copy["State"] == "creating"
    assert copy["SourceVolumeId"] == aws.root
    assert copy["Tags"] == [{"Key": "k", "Value": "v"}]
    source = aws.volume(aws.root)
    assert copy["AvailabilityZone"] == source["AvailabilityZone"]
    assert copy["Size"] == source["Size"]
    assert [aws.volume(copy["VolumeId"])["State"] for _ in range(2)] == ["creating", "available"]


def test_a_creating_copy_does_not_attach(aws: Aws) -> None:
    copy = aws.ec2.copy_volumes(SourceVolumeId=aws.root)["Volumes"][0]["VolumeId"]
    with pytest.raises(ClientError) as raised:
        aws.ec2.attach_volume(VolumeId=copy, InstanceId=aws.instance_id, Device="/dev/sdf")
    assert error_code(raised) == "IncorrectState"


def test_the_copy_holds_the_data_as_it_was_at_the_call(aws: Aws) -> None:
    # "a crash-consistent, point-in-time copy": later writes to either side stay there.
    copy = aws.available_copy()
    source_tree = aws.world.volume_trees[aws.root]
    copy_tree = aws.world.volume_trees[copy]
    (source_tree / "etc/hostname").write_text("written after the copy\n")
    assert (copy_tree / "etc/hostname").read_text() == "web\n"


def test_the_copy_type_defaults_to_gp2(aws: Aws) -> None:
    # VolumeType: "If not specified, the volume type defaults to gp2."
    copy = aws.ec2.copy_volumes(SourceVolumeId=aws.root)["Volumes"][0]
    assert copy["VolumeType"] == "gp2"


@pytest.mark.parametrize(
    "params,code",
    [
        ({"Size": 1}, "InvalidParameterValue"),  # "equal to or greater than the source"
        ({"VolumeType": "io2"}, "InvalidParameterValue"),  # Iops "Required for io1 and io2"
        ({"VolumeType": "gp2", "Iops": 3000}, "InvalidParameterCombination"),  # "Omit for ..."
        ({"VolumeType": "gp2", "Throughput": 200}, "InvalidParameterCombination"),  # gp3 only
        ({"VolumeType": "gp3", "MultiAttachEnabled": True}, "InvalidParameterCombination"),
    ],
)
def test_copy_parameters_aws_refuses(aws: Aws, params: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as raised:
        aws.ec2.copy_volumes(SourceVolumeId=aws.root, **params)
    assert error_code(raised) == code


def test_an_encrypted_source_gives_an_encrypted_copy(aws: Aws) -> None:
    # Encrypted: "If the source volume is encrypted, the service always encrypts the copy."
    volume = emulator.ec2_backend().get_volume(aws.root)
    volume.encrypted, volume.kms_key_id = True, "arn:aws:kms:us-east-1:123456789012:key/k"
    copy = aws.ec2.copy_volumes(SourceVolumeId=aws.root)["Volumes"][0]
    assert copy["Encrypted"] is True
    assert copy["KmsKeyId"] == volume.kms_key_id


def test_the_same_client_token_gives_the_same_copy(aws: Aws) -> None:
    # ClientToken: idempotency, so a retried call makes no second copy.
    first = aws.ec2.copy_volumes(SourceVolumeId=aws.root, ClientToken="t")["Volumes"][0]
    again = aws.ec2.copy_volumes(SourceVolumeId=aws.root, ClientToken="t")["Volumes"][0]
    assert first["VolumeId"] == again["VolumeId"]
    assert len(aws.ec2.describe_volumes()["Volumes"]) == 2


# -- CreateReplaceRootVolumeTask -------------------------------------------------------------------
def test_a_task_swaps_the_root_keeps_the_old_volume_and_reboots_in_place(aws: Aws) -> None:
    before = aws.instance()
    copy = aws.available_copy()
    task = aws.ec2.create_replace_root_volume_task(
        InstanceId=aws.instance_id, VolumeId=copy, DeleteReplacedRootVolume=False
    )["ReplaceRootVolumeTask"]
    assert task["TaskState"] == "pending"
    assert aws.task_states(task["ReplaceRootVolumeTaskId"], 3) == [
        "in-progress",
        "succeeded",
        "succeeded",
    ]
    after = aws.instance()
    assert aws.at_root() == copy
    assert aws.volume(aws.root)["State"] == "available"  # kept, detached
    # Never stopped; the same interfaces and addresses; one reboot.
    assert after["State"]["Name"] == "running"
    assert after["PublicIpAddress"] == before["PublicIpAddress"]
    assert (
        after["NetworkInterfaces"][0]["NetworkInterfaceId"]
        == (before["NetworkInterfaces"][0]["NetworkInterfaceId"])
    )
    assert aws.world.ebs.reboots == {aws.instance_id: 1}


def test_delete_replaced_root_volume_deletes_the_old_one(aws: Aws) -> None:
    copy = aws.available_copy()
    task = aws.ec2.create_replace_root_volume_task(
        InstanceId=aws.instance_id, VolumeId=copy, DeleteReplacedRootVolume=True
    )["ReplaceRootVolumeTask"]
    aws.task_states(task["ReplaceRootVolumeTaskId"], 2)
    assert aws.root not in [v["VolumeId"] for v in aws.ec2.describe_volumes()["Volumes"]]


@pytest.mark.parametrize(
    "outcome,states,root_after",
    [
        # "failed - the replacement task has failed but the original root volume is still
        # attached."
        ("failed", ["in-progress", "failing", "failed"], "original"),
        # "failed-detached - the replacement task has failed and the instance has no root
        # volume attached."
        ("failed-detached", ["in-progress", "failing-detached", "failed-detached"], None),
    ],
)
def test_failed_tasks(aws: Aws, outcome: str, states: list[str], root_after: str | None) -> None:
    copy = aws.available_copy()
    aws.world.ebs.outcomes[aws.instance_id] = outcome
    task = aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=copy)
    assert aws.task_states(task["ReplaceRootVolumeTask"]["ReplaceRootVolumeTaskId"], 3) == states
    assert aws.at_root() == (aws.root if root_after else None)
    assert aws.volume(copy)["State"] == "available"
    assert aws.world.ebs.reboots == {}


def test_a_stopped_instance_is_refused(aws: Aws) -> None:
    # "replace the root Amazon EBS volume for a running instance"
    copy = aws.available_copy()
    aws.ec2.stop_instances(InstanceIds=[aws.instance_id])
    with pytest.raises(ClientError) as raised:
        aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=copy)
    assert error_code(raised) == "IncorrectInstanceState"


@pytest.mark.parametrize(
    "change",
    ["metal", "marketplace", "instance-store"],
)
def test_unsupported_instances_are_refused(aws: Aws, change: str) -> None:
    # Not supported: bare metal (other than Mac), Marketplace product codes, instance store.
    copy = aws.available_copy()
    instance = emulator.ec2_backend().get_instance(aws.instance_id)
    if change == "metal":
        instance.instance_type = "m5.metal"
    elif change == "marketplace":
        instance.product_codes = [{"ProductCodeId": "abc", "ProductCodeType": "marketplace"}]
    else:
        instance.root_device_type = "instance-store"
    with pytest.raises(ClientError) as raised:
        aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=copy)
    assert error_code(raised) == "UnsupportedOperation"


def test_a_mac_metal_instance_is_supported(aws: Aws) -> None:
    copy = aws.available_copy()
    emulator.ec2_backend().get_instance(aws.instance_id).instance_type = "mac2.metal"
    aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=copy)


def test_the_replacement_volume_must_be_available_in_the_zone_and_as_large(aws: Aws) -> None:
    # VolumeId: "must be in the same Availability Zone as the instance, must be in the
    # available state, and must not be attached to an instance"; encrypted if the original is.
    creating = aws.ec2.copy_volumes(SourceVolumeId=aws.root)["Volumes"][0]["VolumeId"]
    other_zone = aws.ec2.create_volume(AvailabilityZone="us-east-1b", Size=8)["VolumeId"]
    small = aws.ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    codes = {}
    for name, volume_id in (
        ("creating", creating),
        ("other zone", other_zone),
        ("smaller", small),
        ("in use", aws.root),
    ):
        with pytest.raises(ClientError) as raised:
            aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=volume_id)
        codes[name] = error_code(raised)
    original = emulator.ec2_backend().get_volume(aws.root)
    original.encrypted = True
    plain = aws.available_copy()
    emulator.ec2_backend().get_volume(plain).encrypted = False
    with pytest.raises(ClientError) as raised:
        aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=plain)
    codes["unencrypted"] = error_code(raised)
    assert codes == {
        "creating": "IncorrectState",
        "other zone": "InvalidParameterValue",
        "smaller": "InvalidParameterValue",
        "in use": "IncorrectState",
        "unencrypted": "InvalidParameterValue",
    }


def test_one_task_at_a_time_and_the_same_token_gives_the_same_task(aws: Aws) -> None:
    first = aws.available_copy()
    second = aws.available_copy()
    task = aws.ec2.create_replace_root_volume_task(
        InstanceId=aws.instance_id, VolumeId=first, ClientToken="t"
    )["ReplaceRootVolumeTask"]
    again = aws.ec2.create_replace_root_volume_task(
        InstanceId=aws.instance_id, VolumeId=first, ClientToken="t"
    )["ReplaceRootVolumeTask"]
    assert again["ReplaceRootVolumeTaskId"] == task["ReplaceRootVolumeTaskId"]
    with pytest.raises(ClientError) as raised:
        aws.ec2.create_replace_root_volume_task(InstanceId=aws.instance_id, VolumeId=second)
    assert error_code(raised) == "IncorrectState"


def test_tasks_are_listed_by_instance_with_their_tags(aws: Aws) -> None:
    copy = aws.available_copy()
    aws.ec2.create_replace_root_volume_task(
        InstanceId=aws.instance_id,
        VolumeId=copy,
        TagSpecifications=[
            {"ResourceType": "replace-root-volume-task", "Tags": [{"Key": "k", "Value": "v"}]}
        ],
    )
    listed = aws.ec2.describe_replace_root_volume_tasks(
        Filters=[{"Name": "instance-id", "Values": [aws.instance_id]}]
    )["ReplaceRootVolumeTasks"]
    assert [(t["InstanceId"], t["Tags"]) for t in listed] == [
        (aws.instance_id, [{"Key": "k", "Value": "v"}])
    ]
    other = aws.ec2.describe_replace_root_volume_tasks(
        Filters=[{"Name": "instance-id", "Values": ["i-0123456789abcdef0"]}]
    )["ReplaceRootVolumeTasks"]
    assert other == []


def test_a_running_instance_root_volume_does_not_detach(aws: Aws) -> None:
    # DetachVolume: "If an Amazon EBS volume is the root device of an instance, it can't be
    # detached while the instance is running."
    with pytest.raises(ClientError) as raised:
        aws.ec2.detach_volume(VolumeId=aws.root, InstanceId=aws.instance_id)
    assert error_code(raised) == "IncorrectState"
    aws.ec2.stop_instances(InstanceIds=[aws.instance_id])
    aws.ec2.detach_volume(VolumeId=aws.root, InstanceId=aws.instance_id)
    assert aws.at_root() is None
