"""What each subcommand does in AWS, apart from how it is asked for and printed."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from cli.aws import Aws
from cli.errors import Refused
from lambdas.names import (
    LOCK_EXPIRY,
    LOCK_KEY,
    OPT_IN_TAG,
    execution_name_problem,
    key_parameter,
    result_parameter,
)


def checked_instance_id(instance_id: str) -> str:
    """The instance ID as Preflight checks it (one rule, not a copy)."""
    from lambdas.errors import InvalidInput
    from lambdas.logic.inputs import parse_request

    try:
        return parse_request({"InstanceId": instance_id}).instance_id
    except InvalidInput as error:
        raise Refused(str(error)) from None


def checked_input(execution_input: dict[str, Any]) -> None:
    """Refuse before any AWS call what Preflight would refuse from the input alone."""
    from lambdas.errors import InvalidInput
    from lambdas.logic.inputs import parse_request

    try:
        parse_request(execution_input)
    except InvalidInput as error:
        raise Refused(f"input refused (nothing was started): {error}") from None


def checked_name(name: str | None) -> str | None:
    if name is None:
        return None
    problem = execution_name_problem(name)
    if problem:
        raise Refused(f"--name {name!r}: {problem}")
    return name


def read_public_key(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise Refused(f"--public-key-file {path}: {error.strerror or error}") from None


def start(
    aws: Aws, execution_input: dict[str, Any], name: str | None, machine: str = "StateMachineArn"
) -> str:
    """Start the state machine of that stack output (ResetAccess, or the fleet's)."""
    request: dict[str, Any] = {
        "stateMachineArn": aws.output(machine),
        "input": json.dumps(execution_input),
    }
    if name:
        request["name"] = name
    sfn = aws.stepfunctions()
    try:
        return str(sfn.start_execution(**request)["executionArn"])
    except sfn.exceptions.ExecutionAlreadyExists:
        raise Refused(
            f"an execution named {name} already exists (names stay taken for 90 days); "
            "choose another --name or leave it out"
        ) from None


def get_key(aws: Aws, instance_id: str, out: str, force: bool) -> str:
    """Write the stored private key to a new file readable by you alone, or to a pipe."""
    to_stdout = out == "-"
    if to_stdout and sys.stdout.isatty():
        raise Refused(
            "--out - writes the private key to stdout only when it is piped or redirected "
            "(e.g. `| ssh-add -`); give a file name instead"
        )
    path = Path(out)
    if not to_stdout:
        _check_writable(path, force)
    name = key_parameter(instance_id)
    ssm = aws.ssm()
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise Refused(
            f"no key at {name}: no reset has finished for {instance_id} (or it was given a "
            f"PublicKey); see `reset-access status {instance_id}`"
        ) from None
    text = value if value.endswith("\n") else value + "\n"
    if to_stdout:
        sys.stdout.write(text)
        sys.stdout.flush()
        return "stdout"
    _write_private(path, text, force)
    return str(path)


def _check_writable(path: Path, force: bool) -> None:
    if not path.parent.is_dir():
        raise Refused(
            f"--out {path}: folder {path.parent} does not exist; create it or choose another --out"
        )
    if path.exists() and not force:
        raise Refused(f"--out {path} exists; choose another --out or pass --force")


def _write_private(path: Path, text: str, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except OSError as error:
        raise Refused(f"--out {path}: {error.strerror}; choose another --out") from None
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def history(aws: Aws, instance_id: str) -> list[dict[str, Any]]:
    """Every finished reset of the instance, newest first, whoever started it: each run ends
    by writing the result parameter, and Parameter Store keeps its last 100 versions."""
    ssm = aws.ssm()
    results: list[dict[str, Any]] = []
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(
            Name=result_parameter(instance_id)
        ):
            for version in page["Parameters"]:
                result = _parsed(version.get("Value"))
                result.setdefault("RecordedAt", version.get("LastModifiedDate"))
                results.append(result)
    except ssm.exceptions.ParameterNotFound:
        return []
    return sorted(results, key=lambda r: str(r.get("RecordedAt")), reverse=True)


def _parsed(value: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"Outcome": "unreadable", "Cause": str(value)[:200]}
    return parsed if isinstance(parsed, dict) else {"Outcome": "unreadable"}


def running(aws: Aws, instance_id: str) -> dict[str, Any] | None:
    """The execution holding the instance's lock (a reset in progress), described."""
    table = aws.output("LockTableName")
    item = (
        aws.dynamodb()
        .get_item(TableName=table, Key={LOCK_KEY: {"S": instance_id}}, ConsistentRead=True)
        .get("Item")
    )
    if not item or int(item.get(LOCK_EXPIRY, {}).get("N", "0")) < time.time():
        return None
    arn = item["ExecutionArn"]["S"]
    described = aws.stepfunctions().describe_execution(executionArn=arn)
    return {
        "ExecutionArn": arn,
        "Status": described["status"],
        "StartedAt": described.get("startDate"),
    }


def last_result(aws: Aws, instance_id: str) -> dict[str, Any] | None:
    ssm = aws.ssm()
    try:
        value = ssm.get_parameter(Name=result_parameter(instance_id))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return _parsed(value)


def _check_instance(aws: Aws, instance_id: str) -> list[dict[str, Any]]:
    ec2 = aws.ec2()
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as error:
        code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
        if code.startswith("InvalidInstanceID"):
            raise Refused(
                f"no instance {instance_id} in {aws.region_name}; check the ID and --region"
            ) from None
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances or instances[0]["State"]["Name"] == "terminated":
        raise Refused(f"no instance {instance_id} in {aws.region_name}; check the ID and --region")
    return [dict(tag) for tag in instances[0].get("Tags", [])]


def arm_alarm(aws: Aws, instance_id: str) -> str:
    """The opt-in tag, then the status-check alarm the stack's rule listens to. The tag comes
    first: an alarm without it would start resets that only skip; without an alarm the tag
    does nothing. If the alarm cannot be made, a tag this call added is taken off again."""
    tags = _check_instance(aws, instance_id)
    name = f"{aws.output('AlarmPrefix')}{instance_id}"
    had_tag = any(t["Key"] == OPT_IN_TAG and t["Value"] == "true" for t in tags)
    ec2 = aws.ec2()
    ec2.create_tags(Resources=[instance_id], Tags=[{"Key": OPT_IN_TAG, "Value": "true"}])
    try:
        aws.cloudwatch().put_metric_alarm(
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
    except BaseException:
        if not had_tag:
            ec2.delete_tags(Resources=[instance_id], Tags=[{"Key": OPT_IN_TAG}])
        raise
    return name


def disarm_alarm(aws: Aws, instance_id: str) -> str:
    """The alarm first (no reset starts after this), then the opt-in tag."""
    _check_instance(aws, instance_id)
    name = f"{aws.output('AlarmPrefix')}{instance_id}"
    aws.cloudwatch().delete_alarms(AlarmNames=[name])
    aws.ec2().delete_tags(Resources=[instance_id], Tags=[{"Key": OPT_IN_TAG}])
    return name
