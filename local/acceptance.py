"""The acceptance run (acceptance/run.py) on the local engine: the same code, local clients.

What AWS does outside the API calls the run makes, this module does for it:
- cloud-init: a launched Amazon Linux instance's root volume holds `ec2-user` with the launch
  key pair's public key in `~/.ssh/authorized_keys` (a real directory tree the agent edits);
- the stack's outputs: a CloudFormation stack named like ours whose outputs name the engine's
  state machine and lock table;
- EventBridge: an execution that ends ABORTED, TIMED_OUT or FAILED is handed to the janitor;
- the instance's sshd: a real sshd on 127.0.0.1 reads the volume's authorized_keys (root and
  sshd needed; elsewhere the login is the key-pair match, and the report says so).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3

from acceptance.account import Account, Options
from acceptance.report import Failure, Report
from acceptance.run import Run
from acceptance.ssh import SshLogin, Target
from acceptance.steps import AL2023_PARAMETER, LOGIN_USER
from lambdas.names import JANITOR_STATUSES
from local import emulator
from local.checks import public_key_of
from local.engine import Engine
from local.scenario import Scenario
from local.sshd import SshdError, start_sshd, stop_sshd
from local.stack_twin import (
    LOCK_TABLE,
    STACK,
    linux_image,
    put_public_parameter,
)
from local.volumes import build_linux_tree

AUTHORIZED_KEYS = f"home/{LOGIN_USER}/.ssh/authorized_keys"


class LocalAccount:
    """One engine world (stack deployed) in which acceptance runs are made, one after another."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.janitor_done: set[str] = set()
        self.sshd = _sshd_available()
        self._clients: dict[str, Any] = {}

    def clients(self, service: str) -> Any:
        """One client per service for every run: making one costs a fifth of a second."""
        if service not in self._clients:
            self._clients[service] = self._client(service)
        return self._clients[service]

    def _client(self, service: str) -> Any:
        client = boto3.Session(region_name=emulator.REGION).client(service)
        if service == "ec2":
            client.meta.events.register("after-call.ec2.RunInstances", self._cloud_init)
        if service == "stepfunctions":
            client.meta.events.register("after-call.sfn.DescribeExecution", self._eventbridge)
        return client

    def run(self, options: Options | None = None, **kwargs: Any) -> tuple[Run, Report]:
        options = options or Options()
        # The engine's Wait states and retries take no time: neither do the run's polls.
        options.poll_seconds = 0.02
        login = self._login if self.sshd is None else KeyPairMatch(self)
        # SSH comes from this machine: the security group admits 127.0.0.1.
        run = Run(self.clients, login, options, public_ip=lambda: "127.0.0.1", **kwargs)
        try:
            report = run()
        except KeyboardInterrupt:
            report = run.report
        return run, report

    # -- what AWS does around the API calls ---------------------------------------------------
    def _cloud_init(
        self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any
    ) -> None:
        backend = emulator.ec2_backend()
        for launched in parsed.get("Instances", []):
            instance = backend.get_instance(launched["InstanceId"])
            key = backend.key_pairs.get(instance.key_name) if instance.key_name else None
            volume_id = instance.block_device_mapping[instance.root_device_name].volume_id
            tree = self.engine.workdir / "volumes" / volume_id
            tree.mkdir(parents=True)
            users = [
                {
                    "name": LOGIN_USER,
                    "uid": 1000,
                    "gid": 1000,
                    "authorized_keys": [key.material_public.decode().strip()] if key else [],
                }
            ]
            build_linux_tree(tree, {"distro": "amzn2023", "users": users})
            self.engine.ssm_world.volume_trees[volume_id] = tree

    def _eventbridge(
        self, http_response: Any, parsed: dict[str, Any], model: Any, **kwargs: Any
    ) -> None:
        arn = parsed.get("executionArn", "")
        if parsed.get("status") in JANITOR_STATUSES and arn not in self.janitor_done:
            self.janitor_done.add(arn)
            self.engine.janitor(parsed)

    def tree_of(self, instance: dict[str, Any]) -> Path:
        root = instance["RootDeviceName"]
        volume_id = next(
            m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"] if m["DeviceName"] == root
        )
        return self.engine.ssm_world.volume_trees[volume_id]

    def _login(self, private_key: str, instance: dict[str, Any], run: Account) -> str:
        """The real SSH login of acceptance/ssh.py, to an sshd that lives for this login."""
        try:
            return SshLogin(self._local_sshd)(private_key, instance, run)
        finally:
            _stop_sshds()

    def _local_sshd(self, instance: dict[str, Any], run: Account) -> Target:
        """The instance's sshd, here: it reads ec2-user's authorized_keys on the volume."""
        keys = self.tree_of(instance) / AUTHORIZED_KEYS
        port = _start_sshd(keys, self.engine.workdir)
        # Root stands in for ec2-user: this machine has no such account.
        return Target("127.0.0.1", port, "root")


class KeyPairMatch:
    """Where no sshd can run: the stored key's public half is in ec2-user's authorized_keys."""

    def __init__(self, account: LocalAccount) -> None:
        self.account = account

    def __call__(self, private_key: str, instance: dict[str, Any], run: Account) -> str:
        public = public_key_of(private_key).split()[:2]
        lines = (self.account.tree_of(instance) / AUTHORIZED_KEYS).read_text().splitlines()
        if not any(line.split()[:2] == public for line in lines):
            raise Failure("the stored key's public half is not in ec2-user's authorized_keys")
        return (
            f"no sshd here ({self.account.sshd}): the stored key's public half is in "
            f"the authorized_keys of {LOGIN_USER} (uid=1000)"
        )


def _sshd_available() -> str | None:
    """None when a real sshd can run here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("sshd", "ssh"):
        if not shutil.which(tool):
            return f"no {tool}"
    return None


_SSHDS: list[subprocess.Popen[bytes]] = []


def _start_sshd(authorized_keys: Path, workdir: Path) -> int:
    try:
        process, port = start_sshd(authorized_keys, workdir)
    except SshdError as error:
        raise Failure(str(error)) from None
    _SSHDS.append(process)
    return port


def _stop_sshds() -> None:
    while _SSHDS:
        stop_sshd(_SSHDS.pop())


@contextlib.contextmanager
def local_account(workdir: Path | None = None) -> Iterator[LocalAccount]:
    """The engine's world with the stack deployed and no instance: the run launches its own."""
    engine = Engine(Scenario(instances={}, input={}), workdir=workdir)
    with engine.local_aws():
        session = boto3.Session(region_name=emulator.REGION)
        template = {
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {
                "StateMachineArn": {"Value": engine.state_machine_arn},
                "LockTableName": {"Value": LOCK_TABLE},
            },
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # moto does not model the handle; the outputs count
            session.client("cloudformation").create_stack(
                StackName=STACK, TemplateBody=json.dumps(template)
            )
        # AWS publishes the image; here it is one of moto's own Linux images.
        for arch in ("x86_64", "arm64"):
            put_public_parameter(AL2023_PARAMETER.format(arch=arch), linux_image(arch))
        try:
            yield LocalAccount(engine)
        finally:
            _stop_sshds()


def main() -> int:
    """`python -m local acceptance`: the acceptance run on the embedded AWS."""
    started = time.monotonic()
    with local_account() as account:
        options = Options(instance_profile=f"{STACK}-Helper")
        _, report = account.run(options)
    for line in report.lines():
        print(line)
    print(f"(local engine, {time.monotonic() - started:.1f} s with the world's set-up)")
    return 0 if report.passed else 1
