"""Each correction the local engine makes to moto, checked against AWS's documented behaviour."""

from __future__ import annotations

import pytest

from local.emulator import aws_extract_json


@pytest.mark.parametrize(
    "path,expected",
    [
        # A definite path yields the node itself, also under an array index (AWS Step Functions
        # "Paths" doc: Reference Paths select a single node).
        ("$[0].helper", {"InstanceId": "i-1"}),
        ("$[1].backup.ImageId", "ami-1"),
        ("$[0]", {"helper": {"InstanceId": "i-1"}}),
        ("$.x", 1),
    ],
)
def test_definite_path_yields_the_node(path: str, expected: object) -> None:
    data = [{"helper": {"InstanceId": "i-1"}}, {"backup": {"ImageId": "ami-1"}}]
    if path == "$.x":
        data = {"x": 1}  # type: ignore[assignment]
    assert aws_extract_json(path, data) == expected


def test_wildcard_path_still_yields_a_list() -> None:
    data = {"items": [{"id": 1}, {"id": 2}]}
    assert aws_extract_json("$.items[*].id", data) == [1, 2]


@pytest.fixture
def corrected_aws():
    import boto3

    from tests.support.corrected_moto import corrected_moto

    with corrected_moto() as (world, ec2, image):
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        yield world, ec2, boto3.client("ssm", region_name="us-east-1"), instance["InstanceId"]


def test_only_instances_with_an_agent_are_managed(corrected_aws) -> None:
    world, _, ssm, instance_id = corrected_aws
    listed = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
    )["InstanceInformationList"]
    assert listed == []
    world.agent_instances.add(instance_id)
    listed = ssm.describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
    )["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"]) for i in listed] == [(instance_id, "Online")]


def test_send_command_to_an_unmanaged_instance_fails(corrected_aws) -> None:
    _, _, ssm, instance_id = corrected_aws
    with pytest.raises(ssm.exceptions.ClientError, match="InvalidInstanceId"):
        ssm.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=[instance_id],
            Parameters={"commands": ["true"]},
        )


def test_create_image_tags_its_snapshots(corrected_aws) -> None:
    _, ec2, _, instance_id = corrected_aws
    tag = [{"Key": "ResetAccess:Execution", "Value": "x"}]
    image_id = ec2.create_image(
        InstanceId=instance_id,
        Name="backup-image",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": tag},
            {"ResourceType": "snapshot", "Tags": tag},
        ],
    )["ImageId"]
    snapshots = ec2.describe_snapshots(
        Filters=[{"Name": "tag:ResetAccess:Execution", "Values": ["x"]}]
    )["Snapshots"]
    assert len(snapshots) == 1 and image_id in snapshots[0]["Description"]


def test_root_override_without_size_takes_the_image_size(corrected_aws) -> None:
    _, ec2, _, _ = corrected_aws
    image = next(
        i["ImageId"]
        for i in ec2.describe_images(Owners=["amazon"])["Images"]
        if not i.get("Platform")
    )
    launched = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeType": "gp3", "Encrypted": True}}
        ],
    )["Instances"][0]
    assert launched["State"]["Name"] in ("pending", "running")


def test_a_command_runs_only_on_the_instances_it_names(corrected_aws) -> None:
    world, ec2, ssm, instance_id = corrected_aws
    image = next(
        i["ImageId"]
        for i in ec2.describe_images(Owners=["amazon"])["Images"]
        if not i.get("Platform")
    )
    other = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    world.agent_instances.update({instance_id, other["InstanceId"]})
    command = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[instance_id],
        Parameters={"commands": ["true"]},
    )["Command"]
    listed = ssm.list_commands(CommandId=command["CommandId"])["Commands"][0]
    assert listed["InstanceIds"] == [instance_id]


@pytest.mark.parametrize("platform", ["windows", None])
def test_aws_windows_tool_resets_the_password_into_parameter_store(corrected_aws, platform) -> None:
    """AWS (EC2 Windows guide, EC2Rescue with Run Command): ResetAccess stores a random
    password as SecureString /EC2Rescue/Passwords/<id> with the given KMS key; the output names
    the parameter only. The document runs PowerShell: not on Linux."""
    from local.emulator import ec2_backend

    world, _, ssm, instance_id = corrected_aws
    world.agent_instances.add(instance_id)
    ec2_backend().get_instance(instance_id).platform = platform
    command = ssm.send_command(
        DocumentName="AWSSupport-RunEC2RescueForWindowsTool",
        InstanceIds=[instance_id],
        Parameters={"Command": ["ResetAccess"], "Parameters": ["alias/reset-access"]},
    )["Command"]
    invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=instance_id)
    name = f"/EC2Rescue/Passwords/{instance_id}"
    if platform is None:
        assert invocation["Status"] == "Failed"
        assert ssm.describe_parameters()["Parameters"] == []
        return
    assert invocation["Status"] == "Success" and name in invocation["StandardOutputContent"]
    stored = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and len(stored["Value"]) >= 16
    assert stored["Value"] not in invocation["StandardOutputContent"]
    assert world.windows_passwords_reset == [instance_id]


def test_send_command_refuses_a_parameter_the_document_does_not_declare(corrected_aws) -> None:
    import json

    world, _, ssm, instance_id = corrected_aws
    world.agent_instances.add(instance_id)
    world.document_parameters = {"Target"}
    ssm.create_document(
        Name=world.document_name,
        DocumentType="Command",
        DocumentFormat="JSON",
        Content=json.dumps(
            {
                "schemaVersion": "2.2",
                "parameters": {"Target": {"type": "String"}},
                "mainSteps": [
                    {
                        "action": "aws:runShellScript",
                        "name": "x",
                        "inputs": {"runCommand": ["true"]},
                    }
                ],
            }
        ),
    )
    with pytest.raises(ssm.exceptions.InvalidParameters, match="Nope"):
        ssm.send_command(
            DocumentName=world.document_name,
            InstanceIds=[instance_id],
            Parameters={"Target": ["/"], "Nope": ["x"]},
        )
    # A refused request creates nothing.
    assert ssm.list_commands()["Commands"] == []


def test_a_request_does_not_fail_because_another_changes_the_account(
    corrected_aws, monkeypatch
) -> None:
    # AWS: requests from two Parallel branches never fail each other. moto walks its dicts
    # in place; here one Describe is held in the middle of its walk while another request
    # creates a snapshot, which in bare moto fails the walk ("dictionary changed size").
    import threading
    import time

    from moto.ec2.models.elastic_block_store import EBSBackend

    _, ec2, _, instance_id = corrected_aws
    volume = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0][
        "BlockDeviceMappings"
    ][0]["Ebs"]["VolumeId"]
    for _ in range(3):
        ec2.create_snapshot(VolumeId=volume)
    walking = threading.Event()
    original = EBSBackend.describe_snapshots

    def slow_walk(self, *args, **kwargs):
        for seen, _ in enumerate(self.snapshots):
            if seen < 3:
                walking.set()
                time.sleep(0.05)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EBSBackend, "describe_snapshots", slow_walk)
    outcome: list[object] = []

    def describe() -> None:
        try:
            outcome.append(len(ec2.describe_snapshots(Filters=mine)["Snapshots"]))
        except Exception as error:  # noqa: BLE001 - the failure is what the test reports
            outcome.append(error)

    mine = [{"Name": "volume-id", "Values": [volume]}]
    reader = threading.Thread(target=describe)
    reader.start()
    assert walking.wait(5)
    ec2.create_snapshot(VolumeId=volume)
    reader.join(10)

    assert outcome == [3]
    assert len(ec2.describe_snapshots(Filters=mine)["Snapshots"]) == 4


def test_stop_execution_aborts_even_inside_a_parallel_retry(run_scenario) -> None:
    # AWS: StopExecution ends the execution ABORTED; no Retry or Catch runs after it,
    # whatever a Parallel branch was doing.
    run = run_scenario(abort_at="CleanUp")
    assert run.report["status"] == "ABORTED"
    assert "Rollback" not in run.states_entered()


def test_each_execution_gets_its_own_components_from_one_parse(corrected_aws) -> None:
    # The parse tree is kept; what an execution evaluates is built anew each time, so two
    # executions of one definition share no evaluation state.
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": 1, "End": true}}}'
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)
    assert second_tree is first_tree
    assert second_program is not first_program
    assert type(second_program) is type(first_program)
