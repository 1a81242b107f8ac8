"""`python -m local serve`: an SDK or the AWS CLI resets the scenario's instance through the
endpoint, as they would in AWS, and the key they fetch opens it (local/serve.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.names import DEFAULT_ALARM_PREFIX, LOCK_KEY, OPT_IN_TAG, STACK_NAME, key_parameter
from local.checks import public_key_of
from local.emulator import REGION
from local.engine import Engine
from local.volumes import read_authorized_keys
from tests.support.served_world import SERVE_INSTANCE, SERVED

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "local" / "scenarios" / "lost-key-linux.json"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
pytestmark = SERVED


@pytest.fixture
def endpoint(served: tuple[str, Engine]) -> tuple[str, Engine]:
    """The session's endpoint (tests/conftest.py), whose instance `web` is this module's."""
    return served


def client(url: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=url, region_name=REGION, **CREDENTIALS)


def follow(url: str, execution_arn: str, timeout: float = 300) -> dict[str, Any]:
    sfn = client(url, "stepfunctions")
    deadline = time.monotonic() + timeout
    while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.2)
    return dict(described)


def web_instance(url: str) -> dict[str, Any]:
    reservations = client(url, "ec2").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": [SERVE_INSTANCE]}]
    )["Reservations"]
    return dict(reservations[0]["Instances"][0])


def assert_key_opens(url: str, engine: Engine, instance_id: str) -> None:
    """The instance runs on its own root volume again, and the key stored for it (read
    through the endpoint, as a user would) is in ec2-user's authorized_keys on that volume."""
    instance = web_instance(url)
    assert instance["State"]["Name"] == "running"
    root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda")
    assert root["Ebs"]["VolumeId"] == engine.root_volumes[SERVE_INSTANCE]
    private = client(url, "ssm").get_parameter(Name=key_parameter(instance_id), WithDecryption=True)
    public = public_key_of(private["Parameter"]["Value"]).split()[:2]
    tree = engine.ssm_world.volume_trees[engine.root_volumes[SERVE_INSTANCE]]
    spec = engine.scenario.instances[SERVE_INSTANCE]["volume"]
    keys = read_authorized_keys(tree, spec)["ec2-user"]
    assert any(line.split()[:2] == public for line in keys), keys


def test_boto3_resets_the_instance_through_the_endpoint(endpoint: tuple[str, Engine]) -> None:
    url, engine = endpoint
    stack = client(url, "cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert set(outputs) == {
        "StateMachineArn",
        "LockTableName",
        "RescueDocumentName",
        "KmsKeyArn",
        "DeadLetterQueueUrl",
        "AlarmPrefix",
        "FleetStateMachineArn",
        "NotifyTopicArn",
        "DashboardName",
    }
    assert outputs["FleetStateMachineArn"] == engine.fleet_state_machine_arn
    instance_id = web_instance(url)["InstanceId"]
    sfn = client(url, "stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=outputs["StateMachineArn"],
        name="through-the-endpoint",
        input=json.dumps({"InstanceId": instance_id}),
    )["executionArn"]
    described = follow(url, arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    entered = entered_states(sfn, arn)
    assert entered[0] == "Preflight" and "RunRescue" in entered and entered[-1] == "Done"
    assert_key_opens(url, engine, instance_id)


def test_a_reset_stopped_through_the_endpoint_is_undone_by_the_janitor(
    endpoint: tuple[str, Engine],
) -> None:
    """StopExecution once the root volume is off the instance: as EventBridge would, the
    endpoint hands the ABORTED execution to the janitor, which puts the volume back, starts
    the instance and releases the lock."""
    url, engine = endpoint
    instance_id = web_instance(url)["InstanceId"]
    sfn = client(url, "stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=engine.state_machine_arn, input=json.dumps({"InstanceId": instance_id})
    )["executionArn"]
    deadline = time.monotonic() + 300
    while "WaitRootDetached" not in entered_states(sfn, arn):
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # Started without a name: AWS names it with a UUID (moto's would be named "None").
    assert uuid.UUID(arn.rsplit(":", 1)[1])
    sfn.stop_execution(executionArn=arn, error="ByUser", cause="changed my mind")
    assert follow(url, arn)["status"] == "ABORTED"
    dynamodb = client(url, "dynamodb")
    # The instance's lock (the run's sealed in-flight item stays for the table's TTL).
    while "Item" in dynamodb.get_item(
        TableName=f"{STACK_NAME}-Locks", Key={LOCK_KEY: {"S": instance_id}}, ConsistentRead=True
    ):
        assert time.monotonic() < deadline, "the lock was never released"
        time.sleep(0.2)
    instance = web_instance(url)
    assert instance["State"]["Name"] == "running"
    root = next(m for m in instance["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda")
    assert root["Ebs"]["VolumeId"] == engine.root_volumes[SERVE_INSTANCE]


def entered_states(sfn: Any, arn: str) -> list[str]:
    events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


@pytest.mark.skipif(not shutil.which("aws"), reason="the AWS CLI is not installed")
def test_the_aws_cli_resets_the_instance_through_the_endpoint(
    endpoint: tuple[str, Engine],
) -> None:
    """AWS_ENDPOINT_URL and dummy credentials are all the CLI needs; an execution started
    without a name gets a UUID as in AWS (moto's would be named "None")."""
    url, engine = endpoint
    aws = aws_cli(url)
    machine = aws(
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        STACK_NAME,
        "--query",
        "Stacks[0].Outputs[?OutputKey=='StateMachineArn'].OutputValue | [0]",
    )
    instance_id = web_instance(url)["InstanceId"]
    started = aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        machine,
        "--input",
        json.dumps({"InstanceId": instance_id}),
    )
    name = started["executionArn"].rsplit(":", 1)[1]
    assert uuid.UUID(name)
    deadline = time.monotonic() + 300
    while (
        status := aws(
            "stepfunctions", "describe-execution", "--execution-arn", started["executionArn"]
        )
    )["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert status["status"] == "SUCCEEDED", status.get("cause")
    assert_key_opens(url, engine, instance_id)


def aws_cli(url: str) -> Any:
    """The AWS CLI pointed at the endpoint, as a user would (nothing but environment)."""
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    env.pop("AWS_SESSION_TOKEN", None)
    env.pop("AWS_PROFILE", None)

    def aws(*args: str, ok: bool = True) -> Any:
        done = subprocess.run(
            ["aws", *args, "--output", "json"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if not ok:
            assert done.returncode != 0, done.stdout
            return done.stderr
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return aws


@pytest.mark.skipif(not shutil.which("aws"), reason="the AWS CLI is not installed")
def test_the_endpoint_refuses_what_aws_refuses(endpoint: tuple[str, Engine]) -> None:
    """A request from outside meets AWS's rules as the handlers' do (local/aws_rules.py):
    an execution name with a space, a parameter name with a character SSM refuses."""
    url, engine = endpoint
    aws = aws_cli(url)
    machine = engine.state_machine_arn
    refused = aws(
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        machine,
        "--name",
        "my reset",
        "--input",
        "{}",
        ok=False,
    )
    assert "(InvalidName)" in refused and "Invalid Name: 'my reset'" in refused, refused
    refused = aws("ssm", "get-parameter", "--name", "/reset-access/a b", ok=False)
    assert "(ValidationException)" in refused, refused
    sfn = client(url, "stepfunctions")
    assert sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"] == []


def _serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "local", "serve", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _endpoint_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        found = re.match(r"endpoint: (http://127\.0\.0\.1:\d+)$", line.strip())
        if found:
            return found.group(1)
    raise AssertionError(f"no endpoint line; stderr: {process.communicate()[1]}")


def test_ctrl_c_stops_the_endpoint_cleanly_even_mid_execution() -> None:
    """Ctrl-C while a reset runs: the execution is stopped, exit 0, no traceback."""
    process = _serve(str(SCENARIO), "--port", "0")
    try:
        url = _endpoint_of(process)
        machine = client(url, "cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"][0][
            "Outputs"
        ]
        arn = next(o["OutputValue"] for o in machine if o["OutputKey"] == "StateMachineArn")
        instance_id = web_instance(url)["InstanceId"]
        client(url, "stepfunctions").start_execution(
            stateMachineArn=arn, input=json.dumps({"InstanceId": instance_id})
        )
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in out + err, err
    assert "stopping" in out


def test_a_port_in_use_is_one_line_and_exit_2(endpoint: tuple[str, Engine]) -> None:
    port = endpoint[0].rsplit(":", 1)[1]
    process = _serve(str(SCENARIO), "--port", port)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert err.strip().splitlines() == [
        f"cannot serve on 127.0.0.1:{port}: Address already in use; pick another --port"
    ]


def test_an_alarm_going_to_alarm_resets_the_instance_through_the_rule(
    endpoint: tuple[str, Engine],
) -> None:
    """As in AWS: the alarm's state change is an EventBridge event, the stack's alarm rule
    starts the fleet with it, and the fleet one reset for the instance of the alarm's metric,
    saying which alarm started it. An alarm without the prefix, or going back to OK, starts
    nothing."""
    url, engine = endpoint
    instance_id = web_instance(url)["InstanceId"]
    client(url, "ec2").create_tags(
        Resources=[instance_id], Tags=[{"Key": OPT_IN_TAG, "Value": "true"}]
    )
    cloudwatch = client(url, "cloudwatch")
    sfn = client(url, "stepfunctions")
    machine = engine.fleet_state_machine_arn
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]}
    for name in (f"{DEFAULT_ALARM_PREFIX}web", "other-web"):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/EC2",
            MetricName="StatusCheckFailed_Instance",
            Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=3,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="check failed")
    started = [
        e
        for e in sfn.list_executions(stateMachineArn=machine)["executions"]
        if e["executionArn"] not in before
    ]
    assert len(started) == 1, started
    execution = sfn.describe_execution(executionArn=started[0]["executionArn"])
    event = json.loads(execution["input"])
    assert event["detail"]["alarmName"] == f"{DEFAULT_ALARM_PREFIX}web"
    fleet = follow(url, started[0]["executionArn"])
    assert fleet["status"] == "SUCCEEDED", fleet.get("cause")
    (line,) = json.loads(fleet["output"])["Instances"]
    assert line["InstanceId"] == instance_id
    assert line["Outcome"] == "Succeeded"
    child_arn = engine.state_machine_arn.replace(":stateMachine:", ":execution:")
    reset = sfn.describe_execution(executionArn=f"{child_arn}:{line['Execution']}")
    assert json.loads(reset["input"]) == {
        "InstanceId": instance_id,
        "StartedByAlarm": f"{DEFAULT_ALARM_PREFIX}web",
    }
    assert json.loads(reset["output"])["Outcome"] == "succeeded", reset["output"]
    assert_key_opens(url, engine, instance_id)
