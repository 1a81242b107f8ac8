"""Fleet runs: the fleet's input in SSM Automation's shape from the command's options, and a
live table of its instances, refreshed from the fleet's history (its targets, once) and from
each child execution still running (its new events only). Not from the Map Run: its item counts
say how many, not which instance, and the children say both."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from cli import actions
from cli.aws import Aws
from cli.errors import Interrupted, Refused
from cli.follow import new_events

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient
    from rich.console import Console

FLEET_OUTPUT = "FleetStateMachineArn"
RESOLVE = "ResolveTargets"
REFUSED_STATE = "Refused"


def target(text: str) -> dict[str, Any]:
    """`tag:Team=web[,api]` or `InstanceIds=i-1,i-2` as one of SSM's Targets."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise Refused(
            f"--targets {text!r}: expected tag:KEY=VALUE[,VALUE...] or InstanceIds=ID[,ID...]"
        )
    return {"Key": key, "Values": [v for v in values.split(",") if v]}


def fleet_input(
    targets: list[str],
    locations: tuple[list[str], list[str]],
    rates: dict[str, str | None],
    per_instance: dict[str, Any],
) -> dict[str, Any]:
    """The fleet's input, checked by the fleet's own validation before any AWS call."""
    from lambdas.errors import InvalidInput
    from lambdas.logic.fleet import parse_fleet_request

    accounts, regions = locations
    given: dict[str, Any] = {"Targets": [target(t) for t in targets], **per_instance}
    if regions and not accounts:
        raise Refused("--regions needs --accounts (the accounts whose instances to reset)")
    if accounts:
        given["TargetLocations"] = [{"Accounts": accounts, "Regions": regions}]
    given.update({key: value for key, value in rates.items() if value is not None})
    try:
        parse_fleet_request(given)
    except InvalidInput as error:
        raise Refused(f"input refused (nothing was started): {error}") from None
    return given


def start(aws: Aws, given: dict[str, Any], name: str | None) -> str:
    return actions.start(aws, given, name, machine=FLEET_OUTPUT)


def machine_of(execution_arn: str) -> str:
    """arn:partition:states:region:account:execution:MACHINE:NAME -> MACHINE."""
    parts = execution_arn.split(":")
    return parts[6] if len(parts) > 7 and parts[5] == "execution" else ""


def is_fleet(aws: Aws, execution_arn: str) -> bool:
    """Whether the execution is the stack's fleet's, by its state machine's name (no call)."""
    from lambdas.names import fleet_machine_name

    return machine_of(execution_arn) == fleet_machine_name(aws.stack)


@dataclass
class Child:
    """One instance of the fleet: its ResetAccess execution as far as it was read."""

    instance: str
    where: str
    arn: str
    status: str = "WAITING"
    step: str = ""
    started: datetime | None = None
    stopped: datetime | None = None
    last_id: int = 0
    running: dict[str, datetime] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status not in ("WAITING", "RUNNING")

    def elapsed(self, now: datetime) -> str:
        if self.started is None:
            return ""
        return f"{((self.stopped or now) - self.started).total_seconds():.0f} s"


@dataclass
class FleetProgress:
    """What was read of the fleet so far: its events and its instances."""

    last_id: int = 0
    entered: list[str] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)

    def read_fleet(self, sfn: SFNClient, arn: str) -> None:
        for event in new_events(sfn, arn, self.last_id):
            self.last_id = max(self.last_id, int(event["id"]))
            entered = event.get("stateEnteredEventDetails")
            if entered:
                self.entered.append(entered["name"])
            exited = event.get("stateExitedEventDetails")
            if exited and exited["name"] == RESOLVE and not self.children:
                self.children = [_child(item) for item in _targets(exited.get("output"))]

    def read_children(self, sfn: SFNClient) -> None:
        """Only the children still running or not yet started; of each, only its new events."""
        for child in self.children:
            if not child.done:
                _read_child(sfn, child)

    def view(self, now: datetime) -> Group:
        """The table, and how many instances are in each state."""
        table = Table()
        for column in ("instance", "account/Region", "state", "current step", "elapsed"):
            table.add_column(column, no_wrap=True)
        for child in self.children:
            table.add_row(child.instance, child.where, child.status, child.step, child.elapsed(now))
        counts = Counter(child.status.lower() for child in self.children)
        line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return Group(table, Text(line or "resolving the targets"))


def _targets(output: Any) -> list[dict[str, Any]]:
    try:
        state = json.loads(output) if isinstance(output, str) else {}
    except ValueError:
        return []
    items = state.get("targets") if isinstance(state, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def _child(item: dict[str, Any]) -> Child:
    machine = str(item.get("StateMachineArn", ""))
    arn = machine.replace(":stateMachine:", ":execution:") + f":{item.get('Name', '')}"
    return Child(str(item.get("InstanceId")), f"{item.get('Account')}/{item.get('Region')}", arn)


def _read_child(sfn: SFNClient, child: Child) -> None:
    try:
        described = sfn.describe_execution(executionArn=child.arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        return  # not started yet: MaxConcurrency, or MaxErrors will leave it alone
    except Exception as error:
        if "AccessDenied" in type(error).__name__ or "AccessDenied" in str(error):
            child.status, child.step = "RUNNING", "(in its account; not readable here)"
            return
        raise
    child.status = str(described["status"])
    child.started = described.get("startDate")
    child.stopped = described.get("stopDate")
    for event in new_events(sfn, child.arn, child.last_id):
        child.last_id = max(child.last_id, int(event["id"]))
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            child.running[entered["name"]] = event["timestamp"]
        elif exited:
            child.running.pop(exited["name"], None)
    child.step = "" if child.done else max(child.running, key=child.running.__getitem__, default="")


def follow(
    sfn: SFNClient,
    arn: str,
    console: Console,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], FleetProgress]:
    """The live table until the fleet ends; the fleet described and what was read of it."""
    from rich.live import Live

    progress = FleetProgress()
    try:
        with Live(console=console, auto_refresh=False, transient=False) as live:
            while True:
                described = dict(sfn.describe_execution(executionArn=arn))
                progress.read_fleet(sfn, arn)
                progress.read_children(sfn)
                live.update(progress.view(datetime.now(UTC)), refresh=True)
                if described["status"] != "RUNNING":
                    break
                sleep(poll_seconds)
        if not console.is_terminal:
            console.line()  # Live's last render ends without one where it cannot redraw
        return described, progress
    except KeyboardInterrupt:
        raise interrupted(arn) from None


def interrupted(arn: str) -> Interrupted:
    return Interrupted(
        "interrupted: the fleet goes on (running resets finish, the rest start as "
        f"MaxConcurrency allows); follow it with: reset-access follow {arn}"
    )


def result_lines(aws: Aws, described: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The fleet's summary and its instances' lines: the output of a fleet that succeeded, or
    the result parameter a failed fleet wrote before it failed."""
    from lambdas.logic.fleet import fleet_parameter

    output = json.loads(described.get("output") or "null")
    if isinstance(output, dict) and "Instances" in output:
        return dict(output.get("Summary") or {}), list(output["Instances"])
    ssm = aws.ssm()
    try:
        value = ssm.get_parameter(Name=fleet_parameter(str(described["name"])))
    except ssm.exceptions.ParameterNotFound:
        return {}, []
    summary = json.loads(value["Parameter"]["Value"])
    lines: list[Any] = []
    for page in summary.get("Pages", []):
        lines += json.loads(ssm.get_parameter(Name=page)["Parameter"]["Value"])
    return summary, lines


def cause_of(described: dict[str, Any]) -> str:
    """The fleet's failure in one line: a refusing function's message without its trace."""
    cause = str(described.get("cause") or described.get("error") or "")
    try:
        raised = json.loads(cause)
    except ValueError:
        return " ".join(cause.split())
    message = raised.get("errorMessage") if isinstance(raised, dict) else None
    return " ".join(str(message or cause).split())


def record(described: dict[str, Any], summary: dict[str, Any], lines: list[Any]) -> dict[str, Any]:
    """The finished fleet as the command reports it (and prints with --output json)."""
    from cli.report import iso

    result: dict[str, Any] = {
        "ExecutionArn": described["executionArn"],
        "Status": described["status"],
        "StartedAt": iso(described.get("startDate")),
        "StoppedAt": iso(described.get("stopDate")),
        "Summary": summary,
        "Instances": lines,
    }
    if described["status"] != "SUCCEEDED":
        result["Error"] = described.get("error")
        result["Cause"] = cause_of(described)
    return result


def print_summary(console: Console, fleet: dict[str, Any]) -> None:
    summary = fleet.get("Summary") or {}
    console.print(
        f"fleet {fleet['Status'].lower()}: "
        + ", ".join(
            f"{summary.get(k, 0)} {k.lower()}"
            for k in ("Succeeded", "NotChanged", "Failed", "NotAttempted")
        )
        + f" of {summary.get('Total', len(fleet['Instances']))}",
        highlight=False,
        markup=False,
    )
    if fleet["Status"] != "SUCCEEDED":
        console.print(
            f"  {fleet.get('Error')}: {fleet.get('Cause')}", highlight=False, markup=False
        )
    table = Table()
    for column in ("instance", "account/Region", "outcome", "key parameter / error"):
        table.add_column(column, no_wrap=True)
    for line in fleet["Instances"]:
        detail = line.get("KeyParameter") or line.get("PasswordParameter") or line.get("Error")
        table.add_row(
            str(line.get("InstanceId")),
            f"{line.get('Account')}/{line.get('Region')}",
            str(line.get("Outcome")),
            str(detail or ""),
        )
    if fleet["Instances"]:
        console.print(table)
