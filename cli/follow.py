"""Following an execution: each state as it ends with its time, a spinner while states run,
and only the history events that are new since the last poll."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

from cli.errors import Interrupted

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# The instance is down from the moment StopInstance starts until it is back (offline path).
DOWN_FROM = "StopInstance"
DOWN_UNTIL = "WaitInitialState"
PAGE = 100


def console_link(execution_arn: str) -> str:
    """The execution's page in the Step Functions console, in the ARN's partition and Region."""
    parts = execution_arn.split(":")
    partition, region = parts[1], parts[3]
    host = {
        "aws-cn": f"https://{region}.console.amazonaws.cn",
        "aws-us-gov": f"https://{region}.console.amazonaws-us-gov.com",
    }.get(partition, f"https://{region}.console.aws.amazon.com")
    return f"{host}/states/home?region={region}#/v2/executions/details/{execution_arn}"


def new_events(sfn: SFNClient, execution_arn: str, after: int) -> list[dict[str, Any]]:
    """History events with an id above `after`, oldest first: read newest first, page by page,
    until a page reaches what was already seen, so a long run is not read again every poll."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        request: dict[str, Any] = {
            "executionArn": execution_arn,
            "reverseOrder": True,
            "maxResults": PAGE,
        }
        if token:
            request["nextToken"] = token
        page = sfn.get_execution_history(**request)
        fresh = [dict(event) for event in page["events"] if event["id"] > after]
        events += fresh
        token = page.get("nextToken")
        if len(fresh) < len(page["events"]) or not token:
            return sorted(events, key=lambda event: int(event["id"]))


@dataclass
class Progress:
    """What the events said so far: which states run, which ended and how long they took."""

    running: dict[str, datetime] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    down_from: datetime | None = None
    down_until: datetime | None = None
    entered: list[str] = field(default_factory=list)
    # Parallel states run while their branches do: the spinner names the branches' states.
    parallels: set[str] = field(default_factory=set)
    last_id: int = 0

    def read(self, event: dict[str, Any]) -> str | None:
        """Take one event; return the line to print for a state that ended."""
        self.last_id = max(self.last_id, int(event["id"]))
        at: datetime = event["timestamp"]
        entered = event.get("stateEnteredEventDetails")
        if entered:
            self.running[entered["name"]] = at
            self.entered.append(entered["name"])
            if str(event.get("type", "")).startswith("Parallel"):
                self.parallels.add(entered["name"])
            if entered["name"] == DOWN_FROM:
                self.down_from = at
            return None
        exited = event.get("stateExitedEventDetails")
        if not exited:
            return None
        name = exited["name"]
        started = self.running.pop(name, at)
        self.seconds[name] = (at - started).total_seconds()
        if name == DOWN_UNTIL:
            self.down_until = at
        return f"{at.astimezone(UTC):%H:%M:%S}  {name:<28} {self.seconds[name]:7.1f} s"

    def downtime(self) -> float | None:
        """Seconds the instance was stopped, or None if it never was (online, refused)."""
        if self.down_from is None or self.down_until is None:
            return None
        return round((self.down_until - self.down_from).total_seconds(), 1)

    def waiting_on(self, now: datetime) -> str:
        running = {n: at for n, at in self.running.items() if n not in self.parallels}
        if not running:
            return "waiting for the next state"
        oldest = min(running.values())
        names = ", ".join(sorted(running, key=running.__getitem__))
        return f"{names}  {max(0.0, (now - oldest).total_seconds()):.0f} s"


def follow(
    sfn: SFNClient,
    execution_arn: str,
    console: Console,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], Progress]:
    """Print states as they end until the execution ends; return it and what was seen."""
    progress = Progress()
    try:
        with console.status("starting", spinner="dots") as status:
            while True:
                _print_new(sfn, execution_arn, progress, console)
                described = dict(sfn.describe_execution(executionArn=execution_arn))
                if described["status"] != "RUNNING":
                    # Events written between the last read and the end.
                    _print_new(sfn, execution_arn, progress, console)
                    return described, progress
                waited = 0.0
                status.update(progress.waiting_on(datetime.now(UTC)))
                while waited < poll_seconds:
                    status.update(progress.waiting_on(datetime.now(UTC)))
                    step = min(0.25, poll_seconds - waited)
                    sleep(step)
                    waited += step
    except KeyboardInterrupt:
        raise interrupted(execution_arn) from None


def interrupted(execution_arn: str) -> Interrupted:
    return Interrupted(
        f"interrupted: the reset goes on; follow it with: reset-access follow {execution_arn}"
    )


def _print_new(sfn: SFNClient, arn: str, progress: Progress, console: Console) -> None:
    for event in new_events(sfn, arn, progress.last_id):
        line = progress.read(event)
        if line:
            console.print(line, highlight=False)
