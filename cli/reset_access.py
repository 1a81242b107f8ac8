"""The `reset-access` command, for people who would rather not paste JSON into a console.

    python -m cli start i-0123456789abcdef0            # start, follow, say where the key is
    python -m cli follow EXECUTION_ARN
    python -m cli get-key i-0123456789abcdef0 --out key.pem
    python -m cli arm-alarm i-0123456789abcdef0         # alarm + opt-in tag: resets by itself

It talks to the deployed stack (found by its CloudFormation outputs) with your AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from lambdas.names import DEFAULT_ALARM_PREFIX, OPT_IN_TAG, STACK_NAME, key_parameter

Echo = Callable[[str], None]


class CliError(Exception):
    """A failure the user can act on; printed without a traceback."""


def state_machine_arn(cloudformation: Any, stack: str) -> str:
    try:
        outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    except cloudformation.exceptions.ClientError as error:
        code = error.response["Error"]["Code"]
        raise CliError(
            f"stack {stack} not found in this account and Region ({code}); deploy it with "
            "`npx cdk deploy`, or pass --state-machine-arn"
        ) from None
    for output in outputs:
        if output["OutputKey"] == "StateMachineArn":
            return str(output["OutputValue"])
    raise CliError(f"stack {stack} has no StateMachineArn output; is it a ResetAccess stack?")


def build_input(args: argparse.Namespace) -> dict[str, Any]:
    """Only what the user set: the workflow's own defaults stay the single source of them."""
    execution_input: dict[str, Any] = {"InstanceId": args.instance_id}
    for flag, key in (
        ("subnet", "SubnetId"),
        ("helper_type", "HelperInstanceType"),
        ("mode", "Mode"),
        ("key_type", "KeyType"),
        ("backup", "Backup"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            execution_input[key] = value
    if getattr(args, "public_key_file", None):
        try:
            execution_input["PublicKey"] = Path(args.public_key_file).read_text().strip()
        except OSError as error:
            raise CliError(f"--public-key-file: {error}") from None
    if getattr(args, "no_password_ami", False):
        execution_input["CreatePasswordEnabledAmi"] = False
    if getattr(args, "dry_run", False):
        execution_input["DryRun"] = True
    return execution_input


def start(sfn: Any, machine_arn: str, execution_input: dict[str, Any]) -> str:
    name = f"{execution_input['InstanceId']}-{time.strftime('%Y%m%dT%H%M%S')}"
    return str(
        sfn.start_execution(
            stateMachineArn=machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
    )


def follow(
    sfn: Any,
    execution_arn: str,
    echo: Echo,
    poll_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Print each state as it is entered; return the finished execution."""
    seen: set[int] = set()
    while True:
        events = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events += page["events"]
        for event in events:
            details = event.get("stateEnteredEventDetails")
            if details and event["id"] not in seen:
                seen.add(event["id"])
                echo(f"{event['timestamp']:%H:%M:%S}  {details['name']}")
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return dict(described)
        sleep(poll_seconds)


def summarize(described: dict[str, Any], echo: Echo) -> int:
    status = described["status"]
    if status != "SUCCEEDED":
        echo(f"{status}: {described.get('error', '')}: {described.get('cause', '')}")
        return 1
    output = json.loads(described.get("output") or "{}")
    echo(f"SUCCEEDED: {json.dumps(output, indent=2)}")
    if output.get("KeyParameter"):
        echo(f"get the key: python -m cli get-key {output['InstanceId']} --out key.pem")
    return 0


def get_key(ssm: Any, instance_id: str, out: Path, force: bool = False) -> Path:
    """Write the stored private key to a new file readable by you alone; never to the screen."""
    name = key_parameter(instance_id)
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise CliError(
            f"no key at {name}: no reset has finished for {instance_id} "
            "(or it was given a PublicKey)"
        ) from None
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(out, flags, 0o600)
    except FileExistsError:
        raise CliError(f"{out} exists; choose another --out or pass --force") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(value if value.endswith("\n") else value + "\n")
    out.chmod(0o600)
    return out


def arm_alarm(cloudwatch: Any, ec2: Any, instance_id: str, prefix: str) -> str:
    """An instance status-check alarm the stack's rule listens to, and the opt-in tag."""
    name = f"{prefix}{instance_id}"
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription="ResetAccess: reset access when the instance status check fails",
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed_Instance",
        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=5,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="missing",
    )
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": OPT_IN_TAG, "Value": "true"}])
    return name


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="reset-access",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--stack", default=STACK_NAME, help="CloudFormation stack name")
    root.add_argument("--state-machine-arn", help="skip the stack lookup")
    commands = root.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("start", help="start a reset (and follow it)")
    begin.add_argument("instance_id")
    begin.add_argument("--subnet", help="CreateNewVPC, SelectedInstanceSubnet or subnet-...")
    begin.add_argument("--helper-type")
    begin.add_argument("--mode", choices=["auto", "online", "offline"])
    begin.add_argument("--public-key-file", help="inject this .pub instead of a new key")
    begin.add_argument("--key-type", choices=["rsa", "ed25519"])
    begin.add_argument("--backup", choices=["ami", "snapshot", "none"])
    begin.add_argument("--no-password-ami", action="store_true")
    begin.add_argument("--dry-run", action="store_true")
    begin.add_argument("--no-follow", action="store_true")
    watch = commands.add_parser("follow", help="follow an execution to its end")
    watch.add_argument("execution_arn")
    key = commands.add_parser("get-key", help="write the stored private key to a file")
    key.add_argument("instance_id")
    key.add_argument("--out", type=Path, required=True)
    key.add_argument("--force", action="store_true", help="overwrite --out")
    alarm = commands.add_parser("arm-alarm", help="reset by itself when status checks fail")
    alarm.add_argument("instance_id")
    alarm.add_argument("--prefix", default=DEFAULT_ALARM_PREFIX)
    return root


def main(argv: list[str] | None = None, echo: Echo = print) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "get-key":
            path = get_key(boto3.client("ssm"), args.instance_id, args.out, args.force)
            echo(f"wrote {path} (mode 600)")
            return 0
        if args.command == "arm-alarm":
            name = arm_alarm(
                boto3.client("cloudwatch"), boto3.client("ec2"), args.instance_id, args.prefix
            )
            echo(f"alarm {name} armed; {args.instance_id} tagged {OPT_IN_TAG}=true")
            return 0
        sfn = boto3.client("stepfunctions")
        if args.command == "follow":
            return summarize(follow(sfn, args.execution_arn, echo), echo)
        machine = args.state_machine_arn or state_machine_arn(
            boto3.client("cloudformation"), args.stack
        )
        execution_arn = start(sfn, machine, build_input(args))
        echo(f"started {execution_arn}")
        if args.no_follow:
            return 0
        return summarize(follow(sfn, execution_arn, echo), echo)
    except CliError as error:
        print(f"reset-access: {error}", file=sys.stderr)
        return 2
