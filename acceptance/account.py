"""The state one acceptance run shares between its steps and its clean-up, and the AWS helpers
both use: clients made once per service, the run's tag on what it creates, waiting out EC2's
eventual consistency, each result recorded in the report.

A base class so that the steps (acceptance/steps.py) and the deletions (acceptance/cleanup.py)
each read on their own, with the same `self` as before the split.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from acceptance.report import Failure, Report, StepResult
from lambdas.names import ACCEPTANCE_TAG, STACK_NAME

Clients = Callable[[str], Any]
Echo = Callable[[str], None]


class Login(Protocol):
    """Logs in to the instance with the stored private key; says how, and what `id` printed."""

    def __call__(self, private_key: str, instance: dict[str, Any], run: Account) -> str: ...


@dataclass
class Options:
    stack: str = STACK_NAME
    subnet_id: str | None = None
    architecture: str = "x86_64"
    instance_type: str | None = None
    # An instance profile with AmazonSSMManagedInstanceCore lets the online reset run too.
    instance_profile: str | None = None
    profile: str | None = None  # the AWS CLI's, for its EC2 Instance Connect tunnel
    ssh_cidr: str | None = None
    online: bool = True
    reset_timeout: float = 30 * 60
    boot_timeout: float = 10 * 60
    login_timeout: float = 5 * 60
    ssm_timeout: float = 5 * 60
    cleanup_timeout: float = 15 * 60
    poll_seconds: float = 5.0


@dataclass
class Made:
    """What this run created, by ID, recorded as soon as AWS returns it."""

    # Set before the first create: from then on clean-up also looks for the run's tag, which
    # finds what a create made even when its answer never arrived (Ctrl-C, a lost response).
    creating: bool = False
    key_name: str | None = None
    security_group_id: str | None = None
    endpoint_id: str | None = None
    instance_id: str | None = None
    executions: list[str] = field(default_factory=list)


class Account:
    """One run's clients, options and state, and the helpers every step and deletion uses."""

    def __init__(
        self,
        clients: Clients,
        login: Login,
        options: Options | None = None,
        *,
        echo: Echo = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        fault: Callable[[str], None] | None = None,
        public_ip: Callable[[], str] | None = None,
        shield: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
    ) -> None:
        self.clients = clients
        self.login = login
        self.options = options or Options()
        self.echo = echo
        self.sleep = sleep
        self.clock = clock
        self.fault = fault or (lambda step: None)
        self.public_ip = public_ip or checkip
        self.shield = shield or contextlib.nullcontext
        self.run_id = uuid.uuid4().hex[:12]
        self.name = f"reset-access-acceptance-{self.run_id}"
        self.made = Made()
        self.report = Report()
        self.facts: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.clients(service)
        return self._clients[service]

    def record(
        self, where: list[StepResult], name: str, outcome: str, began: float, detail: str
    ) -> None:
        result = StepResult(name, outcome, self.clock() - began, detail)
        where.append(result)
        prefix = "  " if where is self.report.steps else f"clean-up {name}: "
        self.echo(f"{prefix}{outcome}: {detail}" if detail else f"{prefix}{outcome}")

    def tags(self, resource_type: str, **extra: str) -> list[dict[str, Any]]:
        tags = [{"Key": ACCEPTANCE_TAG, "Value": self.run_id}]
        tags += [{"Key": k, "Value": v} for k, v in extra.items()]
        return [{"ResourceType": resource_type, "Tags": tags}]

    def wait(self, done: Callable[[], bool], timeout: float, message: str) -> None:
        deadline = self.clock() + timeout
        while True:
            try:
                if done():
                    return
            except ClientError as error:
                # EC2 answers *.NotFound for a while after a create (eventual consistency).
                if not _not_found(error):
                    raise
            if self.clock() > deadline:
                raise Failure(f"{message} after {timeout / 60:.0f} min")
            self.sleep(self.options.poll_seconds)

    def eventually(self, call: Callable[[], Any]) -> Any:
        """A call on a resource just created: retried while EC2 still answers NotFound."""
        result: list[Any] = []

        def attempt() -> bool:
            result.append(call())
            return True

        self.wait(attempt, 60, "the resource just created is still unknown to EC2")
        return result[-1]

    def mine(self) -> list[dict[str, Any]]:
        """The filter that finds what this run made by its tag."""
        return [{"Name": f"tag:{ACCEPTANCE_TAG}", "Values": [self.run_id]}]


def _not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")).endswith(".NotFound")


CHECKIP = "https://checkip.amazonaws.com"


def aws_cli() -> str | None:
    """The AWS CLI, which opens EC2 Instance Connect Endpoint tunnels for ssh."""
    import shutil

    return shutil.which("aws")


def checkip() -> str:
    """This machine's public IP as AWS sees it: the security group lets SSH in from it only."""
    from urllib.request import urlopen

    with urlopen(CHECKIP, timeout=10) as answer:
        return str(answer.read().decode().strip())
