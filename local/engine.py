"""Run the real workflow on moto with our handlers in-process, and report the world after.

The run loop: a local AWS (moto, corrected by local/emulator.py) with the stack's twin
(local/stack_twin.py) and the scenario's world (local/world.py) in it; executions started and
watched; each Lambda invocation handed to its handler with the engine's seams (faults, the
janitor's clock; local/seams.py) on its context; every AWS call through the layers of
local/calls.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from moto import mock_aws

from lambdas.names import JANITOR_STATUSES, MEMBER_ROLE_NAME
from lambdas.runtime import Seams
from local import aws_rules, emulator, locations, nested, sessions, trust
from local import iam as local_iam
from local.calls import Call, CallPipeline, Layer
from local.consistency import EventualConsistency
from local.emulator import ACCOUNT, REGION, SsmWorld
from local.locations import HOME, Location
from local.scenario import Fault, Scenario
from local.seams import Faults, FunctionRef, LambdaContext, scaled_sleep, skipped_time_clock
from local.stack_twin import (
    RESCUE_DOCUMENT,
    STACK,
    DeployedStack,
    create_member,
    create_stack,
    member_policy,
)
from local.world import World, history, report, transitions
from statemachine.phases import EVENT_FUNCTIONS

# moto logs every state's error with a full repr of the interpreter; the report says it better.
logging.getLogger("moto").setLevel(logging.CRITICAL)


class Engine:
    def __init__(
        self,
        scenario: Scenario,
        *,
        echo: Callable[[str], None] | None = None,
        workdir: Path | None = None,
        janitor: bool = True,
        prepare: Callable[[Engine], None] | None = None,
        copies: int = 1,
    ) -> None:
        """prepare runs inside the local AWS after the world is built, before the execution
        starts: a test's way to set up what a scenario file cannot say (a held lock...).
        copies: start that many executions of the same input at once (the lock's test); the
        report's top level is the first, `executions` lists them all."""
        self.scenario = scenario
        self.echo = echo or (lambda line: None)
        self.echo_progress = echo is not None
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="reset-access-local-"))
        self.run_janitor = janitor
        self.prepare = prepare
        self.world_before: dict[str, Any] = {}
        self.stack: DeployedStack | None = None
        # Member deployments (stacks/member.py) where the scenario's instances live elsewhere.
        self.members: dict[Location, DeployedStack] = {}
        self.api_calls: Counter[str] = Counter()
        self.calls_by_function: dict[str, Counter[str]] = defaultdict(Counter)
        # (monotonic time, "service:Operation") of every handler call, for request rates.
        self.call_log: list[tuple[float, str]] = []
        self.logs = io.StringIO()
        self.secrets_written: list[str] = []
        self._local = threading.local()
        self._sfn_clients: dict[Location, Any] = {}
        # Seconds a run may take before the engine calls itself stuck (a benchmark's fleet of 50
        # on a busy machine takes longer).
        self.time_limit = 600.0
        self.injected = Faults(scenario)
        # Phase invocations still running: a stopped execution's Lambdas run on, as in AWS.
        self._phases_running = 0
        self._phases_done = threading.Condition()
        self.execution_arn = ""
        self.ssm_world = SsmWorld(document_name=RESCUE_DOCUMENT)
        self.world = World(scenario, self.ssm_world)
        self.injected.execution = lambda: getattr(self._local, "execution", None)
        self.injected.ids = self.world.ids
        # Scenario name -> instance ID, and -> its root volume's ID.
        self.ids = self.world.ids
        self.root_volumes = self.world.root_volumes
        # Handed to every invocation on its context; set for each local AWS.
        self.seams = Seams()
        self.iam = local_iam.for_engine(self)
        self._next_execution(copies)

    def _next_execution(self, copies: int = 1) -> None:
        """Fresh names, counts, faults and janitor results for the next execution(s)."""
        self.execution_name = f"local-{uuid.uuid4().hex[:12]}"
        self.execution_names = [self.execution_name] + [
            f"{self.execution_name}-{n}" for n in range(2, copies + 1)
        ]
        self.api_calls.clear()
        self.calls_by_function.clear()
        self.call_log.clear()
        self.iam.reset()
        self.janitor_results: list[Any] = []
        self.injected.reset()
        self._aborted = False
        self.consistency = EventualConsistency.from_spec(self.scenario.eventual_consistency)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        with self._local_aws():
            return self._execute()

    @contextlib.contextmanager
    def session(self) -> Iterator[Callable[[Any], dict[str, Any]]]:
        """One local AWS and one world for many executions: each call starts one execution
        with the given input (`@NAME` resolved) and returns its report. Hundreds of generated
        inputs run this way in the time a few separate worlds would take to build."""
        with self._local_aws():

            def execute(execution_input: Any) -> dict[str, Any]:
                self.scenario.input = execution_input
                self._next_execution()
                return self._execute()

            yield execute

    def local_aws(self) -> contextlib.AbstractContextManager[None]:
        """The stack deployed in a fresh local AWS, no execution: for drivers that start their
        own (local/acceptance.py)."""
        return self._local_aws()

    @contextlib.contextmanager
    def _local_aws(self) -> Iterator[None]:
        saved_env = dict(os.environ)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_SERVICE_NAME": "reset-access",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            }
        )
        try:
            with (
                locations.per_thread_environment(),
                emulator.world_images(),
                mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
                emulator.corrections(self.ssm_world, self._lambda_invoker()),
                nested.corrections(),
                CallPipeline(self._call_layers(), self._calling_function),
            ):
                sessions.begin_world()
                # One janitor clock per world, as one CLOCK was: its time only advances.
                self.seams = Seams(
                    fault=self.injected,
                    clock=skipped_time_clock(self._wait_for_running_phases),
                    sleep=scaled_sleep,
                )
                self._sfn_clients.clear()
                self.stack = create_stack(self.ssm_world, self.logs)
                self.members = {
                    where: create_member(where, ACCOUNT, self.ssm_world)
                    for where in self.world.locations()
                    if where != HOME
                }
                self.world.build(self.workdir)
                if self.prepare:
                    self.prepare(self)
                self.world_before = self._world()
                yield
        finally:
            sessions.end_world()
            os.environ.clear()
            os.environ.update(saved_env)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def follow(self, execution_arn: str) -> None:
        """An execution started by someone else (local/serve.py): the scenario's faults,
        abort_at and eventual consistency apply to it afresh, as to one the engine starts."""
        self._next_execution()
        self.execution_arn = execution_arn

    def settle(self) -> None:
        """Wait until no phase Lambda runs (a stopped execution's run on, as in AWS)."""
        self._wait_for_running_phases()

    @property
    def _deployed(self) -> DeployedStack:
        if self.stack is None:
            raise RuntimeError("the stack exists only inside the engine's local AWS")
        return self.stack

    @property
    def kms_key_arn(self) -> str:
        return self._deployed.kms_key_arn

    @property
    def helper_profile_arn(self) -> str:
        return self._deployed.helper_profile_arn

    @property
    def state_machine_arn(self) -> str:
        return self._deployed.state_machine_arn

    @property
    def fleet_state_machine_arn(self) -> str:
        return self._deployed.fleet_state_machine_arn

    @property
    def topic_arn(self) -> str:
        return self._deployed.topic_arn

    @property
    def handlers(self) -> dict[str, Any]:
        """Function name -> its handler module (a test may put a wrapper in its place)."""
        return self._deployed.handlers

    def _world(self) -> dict[str, Any]:
        return self.world.snapshot(self.execution_names)

    def _execute(self) -> dict[str, Any]:
        sfn = sessions.client("stepfunctions")
        execution_input = self.scenario.resolve_input(self.ids)
        fleet = self.scenario.workflow == "fleet"
        machine = self.fleet_state_machine_arn if fleet else self.state_machine_arn
        arns = [
            sfn.start_execution(
                stateMachineArn=machine, name=name, input=json.dumps(execution_input)
            )["executionArn"]
            for name in self.execution_names
        ]
        self.execution_arn = arns[0]
        events = self._wait(sfn, arns, fleet)
        ended = [sfn.describe_execution(executionArn=arn) for arn in arns]
        if fleet:
            return self._fleet_report(sfn, ended[0], events)
        if self.run_janitor:
            for execution in ended:
                if execution["status"] in JANITOR_STATUSES:
                    self.janitor(execution)
        described = sfn.describe_execution(executionArn=self.execution_arn)
        result = report(described, events, self.api_calls, self._world())
        result["executions"] = [
            {
                "name": e["name"],
                "status": e["status"],
                "error": e.get("error"),
                "cause": e.get("cause"),
                "states": [
                    h["stateEnteredEventDetails"]["name"]
                    for h in history(sfn, arn)
                    if "stateEnteredEventDetails" in h
                ],
            }
            for arn, e in zip(arns, ended, strict=True)
        ]
        result["janitor"] = self.janitor_results
        if self.consistency:
            result["eventual_consistency"] = dict(sorted(self.consistency.injected.items()))
        return result

    def _wait(self, sfn: Any, arns: list[str], fleet: bool) -> list[dict[str, Any]]:
        """Until the executions (and a fleet's children) end; the first one's history."""
        started = time.monotonic()
        shown = 0
        while True:
            running = any(emulator.execution_running(arn) for arn in arns) or (
                fleet and bool(self._children(sfn, "RUNNING"))
            )
            if self.echo_progress or not running:
                events = history(sfn, self.execution_arn)
                for event in events[shown:]:
                    entered = event.get("stateEnteredEventDetails")
                    if entered:
                        self.echo(f"{time.monotonic() - started:7.2f}s  {entered['name']}")
                shown = len(events)
            if not running:
                break
            for arn in arns:
                emulator.enforce_history_quota(arn)
            if time.monotonic() - started > self.time_limit:
                raise RuntimeError(
                    f"the local execution ran for {self.time_limit / 60:.0f} minutes; engine stuck?"
                )
            # Woken as an execution ends; the timeout is for the history quota and the echo.
            with emulator.EXECUTION_ENDED:
                emulator.EXECUTION_ENDED.wait(0.1 if self.echo_progress else 0.02)
        return events

    def _sfn(self, where: Location) -> Any:
        """The engine's own Step Functions client in a location, made once per world."""
        if where not in self._sfn_clients:
            self._sfn_clients[where] = locations.client("stepfunctions", where)
        return self._sfn_clients[where]

    def _children(self, sfn: Any, status: str | None = None) -> list[dict[str, Any]]:
        """The ResetAccess executions in this world (a fleet's children) in every location,
        oldest first."""
        filters = {"statusFilter": status} if status else {}
        found: list[dict[str, Any]] = []
        machines = [(HOME, self.state_machine_arn)] + [
            (where, member.state_machine_arn) for where, member in self.members.items()
        ]
        for where, machine in machines:
            client = sfn if where == HOME else self._sfn(where)
            for page in client.get_paginator("list_executions").paginate(
                stateMachineArn=machine, **filters
            ):
                found += page["executions"]
        return sorted(found, key=lambda e: e["startDate"])

    def _fleet_report(
        self, sfn: Any, fleet: dict[str, Any], events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The fleet's report: its status and output, each child (instance, status), the
        janitor for each child that did not finish, and the world of all of them."""
        children = [
            self._sfn(locations.of_arn(c["executionArn"])).describe_execution(
                executionArn=c["executionArn"]
            )
            for c in self._children(sfn)
        ]
        if self.run_janitor:
            for child in children:
                if child["status"] in JANITOR_STATUSES:
                    self.janitor(child)
        names = [c["name"] for c in children] or self.execution_names
        by_id = {instance_id: name for name, instance_id in self.ids.items()}
        result = report(fleet, events, self.api_calls, self.world.snapshot(names))
        result["world_before"] = self.world_before
        result["executions"] = [
            {
                "name": c["name"],
                "instance": next((n for i, n in by_id.items() if i in c["name"]), None),
                "account": locations.of_arn(c["executionArn"]).account,
                "region": locations.of_arn(c["executionArn"]).region,
                "status": c["status"],
                "error": c.get("error"),
                "cause": c.get("cause"),
                "started": c["startDate"].timestamp(),
                "stopped": c["stopDate"].timestamp() if c.get("stopDate") else None,
                "transitions": transitions(
                    history(self._sfn(locations.of_arn(c["executionArn"])), c["executionArn"])
                ),
            }
            for c in children
        ]
        result["max_running"] = max_running(result["executions"])
        result["janitor"] = self.janitor_results
        return result

    def janitor(self, execution: dict[str, Any]) -> None:
        """What EventBridge does in AWS: hand the ended execution to the janitor function."""
        name = f"{STACK}-Janitor"
        if name not in self.handlers:
            return
        status = execution["status"]
        where = locations.of_arn(execution["executionArn"])
        machine = self.state_machine_arn if where == HOME else self.members[where].state_machine_arn
        event = {
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "executionArn": execution["executionArn"],
                "status": status,
                "name": execution["name"],
                "stateMachineArn": machine,
            },
        }
        self.echo(f"  janitor for {status} execution")
        function = FunctionRef(name, account_id=where.account, region=where.region)
        payload, errored, _ = self._invoke(function, json.dumps(event))
        self.janitor_results.append({"errored": errored, **json.loads(payload)})
        if errored:
            self.echo(f"  janitor failed: {payload}")

    # -- Lambda, faults, API counting --------------------------------------------------------
    def _lambda_invoker(self) -> Callable[..., tuple[str, bool, str]]:
        """Stands in for moto's LambdaFunction._invoke_lambda (self is the moto function)."""
        return lambda function, event=None: self._invoke(function, event)

    def _invoke(self, function: Any, event: Any = None) -> tuple[str, bool, str]:
        name = function.function_name
        # Each function runs in its own account and Region, with its own environment.
        where = Location(function.account_id, function.region)
        member = self.members.get(where)
        handler = (member.handlers if member else self.handlers)[name].handler
        environment = member.environment if member else {}
        if isinstance(event, (bytes, bytearray)):
            event = event.decode()
        payload = json.loads(event) if isinstance(event, str) else (event or {})
        context = LambdaContext(
            name,
            f"arn:aws:lambda:{where.region}:{where.account}:function:{name}",
            uuid.uuid4().hex,
            seams=self.seams,
        )
        self._local.function = name
        self._local.execution = payload.get("execution") if isinstance(payload, dict) else None
        phase = name not in {f"{STACK}-{f.name}" for f in EVENT_FUNCTIONS}
        if phase:
            with self._phases_done:
                self._phases_running += 1
        try:
            with locations.at(where, environment):
                result = handler(payload, context)
            outcome = json.dumps(result), False, ""
        except Exception as error:  # noqa: BLE001 - every error goes back to Step Functions
            error_name = getattr(error, "error_name", type(error).__name__)
            # As AWS's Python runtime reports it, stack trace included.
            error_payload = {
                "errorMessage": str(error),
                "errorType": error_name,
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            outcome = json.dumps(error_payload), True, ""
        finally:
            self._local.function = None
            self._local.execution = None
            if phase:
                with self._phases_done:
                    self._phases_running -= 1
                    self._phases_done.notify_all()
        state = payload.get("state") if isinstance(payload, dict) else None
        if state and state == self.scenario.abort_at and not self._aborted:
            self._aborted = True
            sessions.client("stepfunctions").stop_execution(
                executionArn=self.execution_arn,
                error="Aborted",
                cause=f"stopped by the scenario at {state}",
            )
        return outcome

    def _wait_for_running_phases(self) -> None:
        """What the janitor's wait is for in AWS: a stopped execution's phase Lambdas finish
        (Preflight may still take the lock). Here its wait takes no time, so it waits for them."""
        with self._phases_done:
            self._phases_done.wait_for(lambda: self._phases_running == 0, timeout=30)

    def faults(self, *faults: Fault) -> contextlib.AbstractContextManager[None]:
        """Inject these faults, instead of the scenario's, into what runs inside the block:
        for drivers that start their own executions (local/acceptance.py)."""
        return self.injected.instead(*faults)

    def count_call(self, service: str, operation: str) -> None:
        function = self._calling_function()
        if function:
            key = f"{service}:{operation}"
            self.api_calls[key] += 1
            self.calls_by_function[function][key] += 1
            self.call_log.append((time.monotonic(), key))

    # -- the layers every AWS call passes ----------------------------------------------------
    def _calling_function(self) -> str | None:
        """The function whose handler runs in this thread, None for the engine's own calls."""
        return getattr(self._local, "function", None)

    def _call_layers(self) -> list[Layer]:
        return [
            Layer("count", self._count),
            Layer("iam", self._authorize),
            Layer(
                "aws_rules", lambda call: aws_rules.check(call.client, call.operation, call.params)
            ),
            Layer("trust", self._trusted),
            Layer("eventual_consistency", self._lag_before, self._lag_after),
        ]

    def _caller_role(self, call: Call) -> str:
        """The role a handler's call is made as: its function's, or a role it assumed."""
        return trust.caller_role(call.client, locations.current().account, f"{STACK}-Role")

    def _authorize(self, call: Call) -> None:
        """A handler's call under its function's policy; one made as an assumed member role
        (a fleet's way into a member account) under that role's policy (stacks/member.py)."""
        if not call.function:
            return
        role = self._caller_role(call)
        if f":role/{MEMBER_ROLE_NAME}-" in role:
            region = call.client.meta.region_name
            where = Location(role.split(":")[4], region)
            self.iam.authorize_role(
                role, member_policy(where), region, (call.service, call.operation, call.params)
            )
            return
        self.iam.authorize(call.function, call.service, call.operation, call.params)

    def _trusted(self, call: Call) -> None:
        """AssumeRole only as the role's trust policy allows the caller (local/trust.py)."""
        if call.function and (call.service, call.operation) == ("sts", "AssumeRole"):
            trust.check(str(call.params.get("RoleArn", "")), self._caller_role(call))

    def _count(self, call: Call) -> None:
        """Count the handlers' calls (not the interpreter's own Lambda calls)."""
        self.count_call(call.service, call.operation)
        if call.operation == "PutParameter" and call.params.get("Type") == "SecureString":
            # Every secret ever written, also those a failed run deleted again: the
            # tests look for each of them where no secret may be.
            self.secrets_written.append(str(call.params.get("Value", "")))

    def _lag_before(self, call: Call) -> None:
        if call.function and self.consistency:
            self.consistency.before(call.service, call.operation, call.params)

    def _lag_after(self, call: Call, response: Any) -> None:
        if call.function and self.consistency:
            self.consistency.after(call.service, call.operation, response)


def max_running(executions: list[dict[str, Any]]) -> int:
    """The most executions that ran at one time, from their start and stop times."""
    edges = sorted(
        [(e["started"], 1) for e in executions]
        + [(e["stopped"], -1) for e in executions if e["stopped"] is not None]
    )
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
