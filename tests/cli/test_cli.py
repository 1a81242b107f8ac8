"""The reset-access command without a served world: its surface (help, options, exit codes),
what it refuses before calling AWS, how it reads AWS's errors, and how it reads history."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption

from cli.app import GLOBAL_OPTIONS, app, hoisted
from cli.follow import Progress, console_link, new_events
from lambdas.names import execution_name_problem
from tests.support.cli import aws_env, clean_env, one_line_error, run

INSTANCE = "i-0123456789abcdef0"
ARN = "arn:aws:states:us-east-1:123456789012:execution:ResetAccess:run-1"


@pytest.fixture
def closed_port() -> str:
    """An endpoint nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Denying(BaseHTTPRequestHandler):
    """Step Functions' answer to an identity without the permission (awsJson1_0 protocol)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {
                "__type": "com.amazon.coral.service#AccessDeniedException",
                "message": "User: arn:aws:iam::123456789012:user/dev is not authorized to "
                "perform: states:GetExecutionHistory",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def denying() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Denying)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_every_option_and_command_has_help() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    commands = root.commands
    assert set(commands) == {
        "start",
        "follow",
        "get-key",
        "history",
        "status",
        "arm-alarm",
        "disarm-alarm",
    }
    for command in [root, *commands.values()]:
        assert command.help, command.name
        for param in command.params:
            if isinstance(param, TyperOption):
                assert param.help, f"{command.name} {param.name}"
    assert set(GLOBAL_OPTIONS) <= {opt for p in root.params for opt in p.opts}


def test_help_documents_exit_codes(tmp_path: Path) -> None:
    ran = run(["--help"], clean_env(tmp_path))
    assert ran.code == 0
    text = " ".join(ran.out.split())
    assert "0 done; 1 the reset failed; 2 usage error or refused" in text
    assert "130 interrupted" in text


def test_help_does_not_load_boto3() -> None:
    # What keeps `reset-access --help` fast (python -m cli.coldstart prints the figure).
    probe = (
        "import sys; from cli.app import main; main(['--help']); "
        "sys.exit(1 if 'boto3' in sys.modules or 'botocore' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_global_options_go_before_or_after_the_subcommand() -> None:
    assert hoisted(["status", INSTANCE, "--region", "eu-west-1", "--output=json"]) == [
        "--region",
        "eu-west-1",
        "--output=json",
        "status",
        INSTANCE,
    ]
    assert hoisted(["--profile", "dev", "follow", ARN]) == ["--profile", "dev", "follow", ARN]


def test_a_usage_error_exits_2_without_traceback(tmp_path: Path) -> None:
    ran = run(["start"], clean_env(tmp_path))
    assert ran.code == 2
    assert "Traceback" not in ran.said
    assert "INSTANCE_ID" in ran.err.upper()


def test_bad_input_is_refused_before_any_call_with_its_errors(
    tmp_path: Path, closed_port: str
) -> None:
    # The endpoint is unreachable: reaching it would say so instead of naming the input.
    ran = run(
        ["start", "i-bad", "--mode", "sideways", "--endpoint-url", closed_port],
        aws_env(tmp_path, closed_port),
    )
    assert ran.code == 2
    line = one_line_error(ran)
    assert "input refused (nothing was started)" in line
    assert "InstanceId" in line


def test_an_execution_name_step_functions_refuses_is_refused_here() -> None:
    # Step Functions API reference, StartExecution `name`.
    assert execution_name_problem("reset-web-1") is None
    assert execution_name_problem("a" * 80) is None
    assert execution_name_problem("é-ünïcode") is None
    for bad in ("", "a" * 81, "two words", "a/b", "a:b", "x[1]", "why?", "tab\tin", "\x7f"):
        assert execution_name_problem(bad), repr(bad)


def test_the_command_and_the_engine_refuse_the_same_execution_names() -> None:
    from local.aws_rules import EXECUTION_NAME_REFUSED

    for character in map(chr, [*range(0x00, 0x250), 0x2028, 0x3000, 0xFEFF, 0xFFFE, 0xFFFF]):
        name = f"run{character}1"
        engine_refuses = bool(EXECUTION_NAME_REFUSED.search(name))
        assert bool(execution_name_problem(name)) == engine_refuses, hex(ord(character))


def test_bad_name_exits_2(tmp_path: Path, closed_port: str) -> None:
    ran = run(["start", INSTANCE, "--name", "my reset"], aws_env(tmp_path, closed_port))
    assert ran.code == 2
    assert "--name 'my reset'" in one_line_error(ran)


def test_no_region_says_how_to_set_one(tmp_path: Path) -> None:
    env = clean_env(tmp_path, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b")
    ran = run(["status", INSTANCE], env)
    assert ran.code == 2
    assert "no AWS Region: pass --region" in one_line_error(ran)


def test_no_credentials_says_how_to_get_them(tmp_path: Path, closed_port: str) -> None:
    env = clean_env(tmp_path, AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=closed_port)
    ran = run(["follow", ARN], env)
    assert ran.code == 2
    assert "no AWS credentials found" in one_line_error(ran)


def test_unknown_profile_is_named(tmp_path: Path) -> None:
    ran = run(["history", INSTANCE, "--profile", "nope"], clean_env(tmp_path))
    assert ran.code == 2
    assert "profile 'nope' is not in your AWS config" in one_line_error(ran)


def test_unreachable_endpoint_is_named(tmp_path: Path, closed_port: str) -> None:
    ran = run(["follow", ARN], aws_env(tmp_path, closed_port))
    assert ran.code == 2
    line = one_line_error(ran)
    assert f"cannot reach {closed_port}" in line
    assert "AWS_ENDPOINT_URL" in line


def test_access_denied_names_the_call(tmp_path: Path, denying: str) -> None:
    ran = run(["follow", ARN], aws_env(tmp_path, denying))
    assert ran.code == 2
    line = one_line_error(ran)
    assert "access denied to GetExecutionHistory (AccessDeniedException)" in line


def test_out_in_a_missing_folder_is_refused_before_reading_the_key(
    tmp_path: Path, closed_port: str
) -> None:
    out = tmp_path / "missing" / "key.pem"
    ran = run(["get-key", INSTANCE, "--out", str(out)], aws_env(tmp_path, closed_port))
    assert ran.code == 2
    assert f"folder {out.parent} does not exist" in one_line_error(ran)


def test_console_link_is_in_the_executions_partition_and_region() -> None:
    assert console_link(ARN) == (
        "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
        f"#/v2/executions/details/{ARN}"
    )
    china = ARN.replace("arn:aws:", "arn:aws-cn:").replace("us-east-1", "cn-north-1")
    assert console_link(china).startswith("https://cn-north-1.console.amazonaws.cn/")


class PagedHistory:
    """GetExecutionHistory as the API reference describes it: maxResults per page, newest first
    with reverseOrder, nextToken to go on. Counts the events it hands out."""

    def __init__(self, count: int) -> None:
        start = datetime(2026, 1, 1, tzinfo=UTC)
        self.events = [
            {"id": i, "timestamp": start + timedelta(seconds=i), "type": "PassStateEntered"}
            for i in range(1, count + 1)
        ]
        self.handed_out = 0

    def get_execution_history(self, **request: Any) -> dict[str, Any]:
        ordered = self.events[::-1] if request.get("reverseOrder") else self.events
        start = int(request.get("nextToken", 0))
        page = ordered[start : start + request.get("maxResults", 1000)]
        self.handed_out += len(page)
        answer: dict[str, Any] = {"events": page}
        if start + len(page) < len(ordered):
            answer["nextToken"] = str(start + len(page))
        return answer


def test_follow_reads_only_new_events() -> None:
    history = PagedHistory(450)
    first = new_events(history, ARN, 0)  # type: ignore[arg-type]
    assert [e["id"] for e in first] == list(range(1, 451))
    history.handed_out = 0
    history.events += [
        {"id": i, "timestamp": datetime.now(UTC), "type": "PassStateEntered"}
        for i in range(451, 456)
    ]
    assert [e["id"] for e in new_events(history, ARN, 450)] == list(range(451, 456))  # type: ignore[arg-type]
    # One page of at most 100 events, not the 455 of the whole history.
    assert history.handed_out <= 100


def test_progress_times_each_state_and_the_downtime() -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    progress = Progress()

    def event(number: int, seconds: int, kind: str, name: str) -> dict[str, Any]:
        return {"id": number, "timestamp": at + timedelta(seconds=seconds), kind: {"name": name}}

    parallel = event(0, 0, "stateEnteredEventDetails", "Prepare") | {"type": "ParallelStateEntered"}
    assert progress.read(parallel) is None
    assert progress.read(event(1, 0, "stateEnteredEventDetails", "StopInstance")) is None
    line = progress.read(event(2, 3, "stateExitedEventDetails", "StopInstance"))
    assert line == "12:00:03  StopInstance                     3.0 s"
    progress.read(event(3, 40, "stateEnteredEventDetails", "WaitInitialState"))
    # The spinner names the branch's state, not the Parallel around it, and its time so far.
    assert progress.waiting_on(at + timedelta(seconds=52)) == "WaitInitialState  12 s"
    progress.read(event(4, 70, "stateExitedEventDetails", "WaitInitialState"))
    assert progress.downtime() == 70.0
    assert progress.seconds == {"StopInstance": 3.0, "WaitInitialState": 30.0}
    assert progress.last_id == 4


@pytest.mark.parametrize(
    ("mode", "downtime", "followed", "says"),
    [
        ("replace-root", 38.25, None, "38.2 s (one reboot, the root volume replaced)"),
        ("offline", 71.0, 70.0, "71.0 s"),
        ("online", 0.0, None, "none (not stopped)"),
    ],
)
def test_the_summary_reports_the_runs_own_downtime(
    mode: str, downtime: float, followed: float | None, says: str
) -> None:
    from rich.console import Console

    from cli import report

    output = {"Outcome": "succeeded", "InstanceId": "i-1", "Mode": mode}
    described = {
        "executionArn": "arn:aws:states:us-east-1:111122223333:execution:ResetAccess:x",
        "status": "SUCCEEDED",
        "output": json.dumps({**output, "DowntimeSeconds": downtime}),
    }
    record = report.execution_record(described, followed, {})
    console = Console(record=True, width=200)
    report.print_execution(console, record)
    assert f"downtime      {says}" in console.export_text()
    # --output json carries the same figure.
    assert record["DowntimeSeconds"] == (downtime or followed)


def test_the_commands_policy_names_real_operations_and_no_wildcard() -> None:
    import botocore.session

    policy = json.loads((Path(__file__).resolve().parents[2] / "docs/cli-policy.json").read_text())
    session = botocore.session.get_session()
    prefixes = {"states": "stepfunctions", "cloudwatch": "cloudwatch"}
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            service, operation = action.split(":")
            assert "*" not in action
            model = session.get_service_model(prefixes.get(service, service))
            assert operation in model.operation_names, action


def test_arm_alarm_takes_its_tag_off_again_when_the_alarm_cannot_be_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from cli.actions import arm_alarm
    from cli.aws import Aws

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)

    class NoAlarms(Aws):
        def output(self, key: str) -> str:
            return "ResetAccess-"

        def cloudwatch(self) -> Any:
            class Refusing:
                def put_metric_alarm(self, **_: Any) -> None:
                    error = {"Error": {"Code": "LimitExceeded", "Message": "too many alarms"}}
                    raise ClientError(error, "PutMetricAlarm")

            return Refusing()

    with mock_aws():
        ec2 = boto3.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
        with pytest.raises(ClientError, match="LimitExceeded"):
            arm_alarm(NoAlarms(), instance["InstanceId"])
        described = ec2.describe_instances(InstanceIds=[instance["InstanceId"]])
        tags = described["Reservations"][0]["Instances"][0].get("Tags", [])
        assert "ResetAccess:AutoRecover" not in {t["Key"] for t in tags}


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("ExpiredToken", "AWS refused your credentials (ExpiredToken); refresh them"),
        ("UnrecognizedClientException", "AWS refused your credentials"),
        ("UnauthorizedOperation", "access denied to DescribeInstances (UnauthorizedOperation)"),
        ("InvalidParameterValue", "DescribeInstances failed: InvalidParameterValue: bad value"),
    ],
)
def test_aws_errors_become_one_line_naming_the_cause(code: str, says: str) -> None:
    from botocore.exceptions import ClientError

    from cli.aws import explain

    error = ClientError({"Error": {"Code": code, "Message": "bad\nvalue"}}, "DescribeInstances")
    explained = explain(error, None)
    assert explained is not None
    assert says in str(explained)
    assert "\n" not in str(explained)
    assert explained.code == 2


def test_an_error_that_is_not_aws_is_left_as_a_bug() -> None:
    from cli.aws import explain

    assert explain(ValueError("ours"), None) is None
