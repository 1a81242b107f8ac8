"""`python -m local serve SCENARIO`: the local engine behind an HTTP endpoint.

The scenario's world and the stack's twin in the engine's local AWS, served by moto's server
on 127.0.0.1, so that `reset-access`, the AWS CLI or any SDK (AWS_ENDPOINT_URL, any
credentials, Region us-east-1) start, follow and fetch keys as they would in AWS.
Executions started through the endpoint run the real definition exactly as in `local run`: our
handlers for Lambda tasks, the rescue agent for Run Command, the scenario's faults. What
EventBridge does in AWS is done here too: the janitor for an execution that failed, timed out
or was stopped (a watcher), and the fleet started by an alarm going to ALARM, one reset per
instance it watches (the stack's alarm rule, delivered by local/eventbridge.py). The stack is
the CloudFormation stack `ResetAccess` with the Outputs the real stack declares. A client's
JSON-protocol requests meet AWS's rules (local/aws_rules.py) before moto answers them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import boto3
from werkzeug.serving import BaseWSGIServer, make_server

from lambdas.names import DEFAULT_ALARM_PREFIX, JANITOR_STATUSES, STACK_NAME
from local import aws_rules, emulator
from local.aws_model import Refusal
from local.emulator import ACCOUNT, REGION
from local.engine import Engine
from local.eventbridge import ALARM_STATE_CHANGE
from local.scenario import Scenario
from local.world import history

Echo = Callable[[str], None]
# Dummy credentials: the endpoint accepts any; an SDK only needs some to sign with.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
DEAD_LETTER_QUEUE = f"{STACK_NAME}-DeadLetters"
_START_EXECUTION = "AWSStepFunctions.StartExecution"


def stack_outputs(
    state_machine_arn: str,
    kms_key_arn: str,
    dead_letter_queue_url: str,
    fleet_state_machine_arn: str,
    topic_arn: str,
) -> dict[str, str]:
    """The Outputs stacks/reset_access_stack.py declares (tests/stack checks the names), with
    the twin's values."""
    from local.stack_twin import LOCK_TABLE, RESCUE_DOCUMENT

    return {
        "StateMachineArn": state_machine_arn,
        "LockTableName": LOCK_TABLE,
        "RescueDocumentName": RESCUE_DOCUMENT,
        "KmsKeyArn": kms_key_arn,
        "DeadLetterQueueUrl": dead_letter_queue_url,
        "AlarmPrefix": DEFAULT_ALARM_PREFIX,
        "FleetStateMachineArn": fleet_state_machine_arn,
        "NotifyTopicArn": topic_arn,
        # No dashboard locally; the name the stack gives it (stacks/operations.py).
        "DashboardName": f"{STACK_NAME}Ops",
    }


def publish_stack(engine: Engine) -> dict[str, str]:
    """The twin as CloudFormation stack `ResetAccess`: a template whose Outputs are the twin's
    values (moto holds it; nothing in it is deployed again). Returns the Outputs."""
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName=DEAD_LETTER_QUEUE)
    outputs = stack_outputs(
        engine.state_machine_arn,
        engine.kms_key_arn,
        queue["QueueUrl"],
        engine.fleet_state_machine_arn,
        engine.topic_arn,
    )
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    alarm_rule(engine.fleet_state_machine_arn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moto does not model the handle; the Outputs count
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK_NAME, TemplateBody=json.dumps(template)
        )
    return outputs


def alarm_rule(state_machine_arn: str) -> None:
    """The stack's alarm rule (stacks/triggers.py): an alarm named with the prefix going to
    ALARM starts the fleet with the whole event, one reset per instance it watches
    (local/eventbridge.py delivers it)."""
    events = boto3.client("events", region_name=REGION)
    events.put_rule(
        Name=f"{STACK_NAME}-AlarmRule",
        EventPattern=json.dumps(
            {
                "source": ["aws.cloudwatch"],
                "detail-type": [ALARM_STATE_CHANGE],
                "detail": {
                    "alarmName": [{"prefix": DEFAULT_ALARM_PREFIX}],
                    "state": {"value": ["ALARM"]},
                },
            }
        ),
    )
    events.put_targets(
        Rule=f"{STACK_NAME}-AlarmRule",
        Targets=[
            {
                "Id": "Target0",
                "Arn": state_machine_arn,
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-Role",
                "InputPath": "$",
            }
        ],
    )


class Watcher:
    """Follows every execution of the state machine: prints each state entered, keeps the
    history quota, and hands an execution that ended FAILED, TIMED_OUT or ABORTED to the
    janitor, as the stack's EventBridge rule does."""

    def __init__(self, engine: Engine, echo: Echo, interval: float = 0.1) -> None:
        self.engine = engine
        self.echo = echo
        self.interval = interval
        self.followed: set[str] = set()
        self._shown: dict[str, int] = {}
        self._ended: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="serve-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        while not self._stop.wait(self.interval):
            try:
                self.poll(sfn)
            except Exception as error:  # noqa: BLE001 - the endpoint keeps serving; say why
                self.echo(f"watcher: {type(error).__name__}: {error}")

    def poll(self, sfn: Any) -> None:
        for execution in executions(sfn, self.engine.state_machine_arn):
            arn = execution["executionArn"]
            if arn in self._ended:
                continue
            if arn not in self.followed:
                # Started without the endpoint's StartExecution (an alarm): follow it late.
                self.followed.add(arn)
                self.engine.follow(arn)
            self._echo_progress(sfn, execution)

    def _echo_progress(self, sfn: Any, execution: dict[str, Any]) -> None:
        arn, name = execution["executionArn"], execution["name"]
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] == "RUNNING":
            emulator.enforce_history_quota(arn)
        events = history(sfn, arn)
        for event in events[self._shown.get(arn, 0) :]:
            entered = event.get("stateEnteredEventDetails")
            if entered:
                self.echo(f"{name}: {entered['name']}")
        self._shown[arn] = len(events)
        if described["status"] == "RUNNING":
            return
        self._ended.add(arn)
        cause = (
            f": {described.get('error')}: {described.get('cause')}"
            if described.get("error")
            else ""
        )
        self.echo(f"{name}: {described['status']}{cause}")
        if described["status"] in JANITOR_STATUSES:
            self.engine.janitor(described)


def executions(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        found += page["executions"]
    return found


# The JSON-protocol services the stack uses: their requests are checked as the handlers' are.
CHECKED_SERVICES = ("stepfunctions", "ssm", "dynamodb", "kms", "events", "logs", "sqs")


@functools.cache
def _json_services() -> dict[str, Any]:
    """X-Amz-Target prefix -> the service's botocore model."""
    import botocore.session

    session = botocore.session.get_session()
    models = [session.get_service_model(name) for name in CHECKED_SERVICES]
    return {model.metadata["targetPrefix"]: model for model in models}


def refusal(environ: dict[str, Any]) -> Refusal | None:
    """What AWS would answer a JSON-protocol request that breaks one of its rules
    (local/aws_rules.py: names, sizes, botocore's constraints), None when it breaks none.
    The body is read and put back for moto."""
    prefix, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")
    model = _json_services().get(prefix)
    if model is None or operation not in model.operation_names:
        return None
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return None  # moto answers a body that is not JSON as AWS does: SerializationException
    return aws_rules.refusal(
        model.service_name,
        operation,
        params,
        operation_model=model.operation_model(operation),
        protocol=model.protocol,
    )


class Endpoint:
    """moto's server app, one request at a time with the engine's own requests
    (emulator.REQUESTS), after AWS's rules (refusal); a StartExecution through it is
    followed from its first state."""

    def __init__(self, engine: Engine, watcher: Watcher) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.engine = engine
        self.watcher = watcher
        self.app = DomainDispatcherApplication(create_backend_app)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        starting = environ.get("HTTP_X_AMZ_TARGET") == _START_EXECUTION
        status: list[str] = []

        def respond(code: str, headers: list[tuple[str, str]], *rest: Any) -> Any:
            status.append(code)
            return start_response(code, headers, *rest)

        refused = refusal(environ)
        if refused is not None:
            start_response(
                "400 Bad Request",
                [
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("x-amzn-RequestId", str(uuid.uuid4())),
                ],
            )
            return [json.dumps({"__type": refused.code, "message": refused.message}).encode()]
        with emulator.REQUESTS:
            if starting:
                # Faults and lag afresh before the execution's first state can run.
                self.engine.follow("")
            body = b"".join(self.app(environ, respond))
            if starting and status and status[0].startswith("200"):
                arn = json.loads(body)["executionArn"]
                self.engine.execution_arn = arn
                self.watcher.followed.add(arn)
        return [body]


def _stop_running(engine: Engine) -> None:
    """Stop what still runs and let its Lambdas finish: nothing may call out once the local
    AWS is gone (its calls would go to the real AWS)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    running = [
        e["executionArn"]
        for e in executions(sfn, engine.state_machine_arn)
        if e["status"] == "RUNNING"
    ]
    for arn in running:
        sfn.stop_execution(executionArn=arn, error="Shutdown", cause="the local endpoint stopped")
    for arn in running:
        with contextlib.suppress(Exception):
            _wait_ended(sfn, arn)
    engine.settle()


def _wait_ended(sfn: Any, arn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


@contextlib.contextmanager
def serving(scenario_path: Path | str, port: int = 0, echo: Echo | None = None) -> Iterator[str]:
    """The scenario's world served on 127.0.0.1:port (0: any free port); yields the endpoint
    URL. On leaving, running executions are stopped and the server shut down."""
    with served(Scenario.load(scenario_path), port, echo) as (url, _):
        yield url


@contextlib.contextmanager
def served(
    scenario: Scenario, port: int = 0, echo: Echo | None = None
) -> Iterator[tuple[str, Engine]]:
    """serving(), with the engine behind the endpoint (its instances' IDs, its logs)."""
    engine = Engine(scenario)
    with engine.local_aws():
        publish_stack(engine)
        watcher = Watcher(engine, echo or (lambda line: None))
        # Bound here: werkzeug would print its own message and exit on a port in use.
        with socket.create_server(("127.0.0.1", port)) as bound:
            server: BaseWSGIServer = make_server(
                "127.0.0.1",
                bound.getsockname()[1],
                Endpoint(engine, watcher),
                threaded=True,
                request_handler=_handler(),
                fd=bound.fileno(),
            )
        thread = threading.Thread(target=server.serve_forever, name="serve-http", daemon=True)
        thread.start()
        watcher.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", engine
        finally:
            server.shutdown()
            thread.join()
            watcher.stop()
            _stop_running(engine)


def _handler() -> Any:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        """No access log line per request: the watcher says what happens."""

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return QuietHandler


def instructions(url: str, engine_ids: dict[str, str], state_machine_arn: str) -> list[str]:
    """How to use the endpoint, printed when it starts."""
    lines = [
        f"endpoint: {url}",
        "use it with any SDK or the AWS CLI (any credentials; the Region is " + REGION + "):",
        f"  export AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={REGION} "
        + " ".join(f"{k}={v}" for k, v in CREDENTIALS.items()),
        f"stack {STACK_NAME}: state machine {state_machine_arn}",
    ]
    for name, instance_id in engine_ids.items():
        lines.append(f"instance {name}: {instance_id}")
    return lines


def main(scenario_path: Path, port: int) -> int:
    """`python -m local serve`: serve until Ctrl-C or SIGTERM; 2 for a refused scenario or a
    port in use."""
    from local.scenario import ScenarioError

    try:
        scenario = Scenario.load(scenario_path)
    except ScenarioError as error:
        print(f"scenario refused: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Ctrl-C and SIGTERM only ask to stop (also while the world is built, or again while it
    # stops), so the clean-up always runs and no traceback is printed.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop.set())
    try:
        with served(scenario, port, echo=lambda line: print(line, flush=True)) as (url, engine):
            for line in instructions(url, engine.ids, engine.state_machine_arn):
                print(line)
            example = json.dumps(scenario.resolve_input(engine.ids))
            print(
                "  aws stepfunctions start-execution --state-machine-arn "
                f"{engine.state_machine_arn} --input '{example}'"
            )
            print("serving until Ctrl-C", flush=True)
            stop.wait()
            print("stopping: running executions are stopped, the world is discarded", flush=True)
    except OSError as error:
        reason = os.strerror(error.errno or 0)
        print(
            f"cannot serve on 127.0.0.1:{port}: {reason}; pick another --port",
            file=sys.stderr,
        )
        return 2
    return 0
