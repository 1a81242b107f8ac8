"""Each correction the local engine makes to moto, checked against AWS's documented behaviour."""

from __future__ import annotations

import pytest

from local.emulator import aws_extract_json


@pytest.mark.parametrize("path,expected", [
    # A definite path yields the node itself, also under an array index (AWS Step Functions
    # "Paths" doc: Reference Paths select a single node).
    ("$[0].helper", {"InstanceId": "i-1"}),
    ("$[1].backup.ImageId", "ami-1"),
    ("$[0]", {"helper": {"InstanceId": "i-1"}}),
    ("$.x", 1),
])
def test_definite_path_yields_the_node(path: str, expected: object) -> None:
    data = [{"helper": {"InstanceId": "i-1"}}, {"backup": {"ImageId": "ami-1"}}]
    if path == "$.x":
        data = {"x": 1}  # type: ignore[assignment]
    assert aws_extract_json(path, data) == expected


def test_wildcard_path_still_yields_a_list() -> None:
    data = {"items": [{"id": 1}, {"id": 2}]}
    assert aws_extract_json("$.items[*].id", data) == [1, 2]


@pytest.fixture
def corrected_aws():  # type: ignore[no-untyped-def]
    import os

    import boto3
    from moto import mock_aws

    from local import emulator

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    world = emulator.SsmWorld(document_name="ResetAccess-Rescue")
    with mock_aws(), emulator.corrections(world, lambda function, event=None: ("{}", False, "")):
        ec2 = boto3.client("ec2", region_name="us-east-1")
        image = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]
                     if not i.get("Platform"))
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        yield world, ec2, boto3.client("ssm", region_name="us-east-1"), instance["InstanceId"]


def test_only_instances_with_an_agent_are_managed(corrected_aws) -> None:  # type: ignore[no-untyped-def]
    world, _, ssm, instance_id = corrected_aws
    listed = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
    assert listed == []
    world.agent_instances.add(instance_id)
    listed = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"]) for i in listed] == [(instance_id, "Online")]


def test_send_command_to_an_unmanaged_instance_fails(corrected_aws) -> None:  # type: ignore[no-untyped-def]
    _, _, ssm, instance_id = corrected_aws
    with pytest.raises(ssm.exceptions.ClientError, match="InvalidInstanceId"):
        ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[instance_id],
                         Parameters={"commands": ["true"]})


def test_create_image_tags_its_snapshots(corrected_aws) -> None:  # type: ignore[no-untyped-def]
    _, ec2, _, instance_id = corrected_aws
    tag = [{"Key": "ResetAccess:Execution", "Value": "x"}]
    image_id = ec2.create_image(
        InstanceId=instance_id, Name="backup-image",
        TagSpecifications=[{"ResourceType": "image", "Tags": tag},
                           {"ResourceType": "snapshot", "Tags": tag}])["ImageId"]
    snapshots = ec2.describe_snapshots(
        Filters=[{"Name": "tag:ResetAccess:Execution", "Values": ["x"]}])["Snapshots"]
    assert len(snapshots) == 1 and image_id in snapshots[0]["Description"]


def test_root_override_without_size_takes_the_image_size(corrected_aws) -> None:  # type: ignore[no-untyped-def]
    _, ec2, _, _ = corrected_aws
    image = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]
                 if not i.get("Platform"))
    launched = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1,
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1",
                              "Ebs": {"VolumeType": "gp3", "Encrypted": True}}])["Instances"][0]
    assert launched["State"]["Name"] in ("pending", "running")
