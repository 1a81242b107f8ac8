"""`make acceptance` on the local engine: the same code that runs in a real account resets a
throwaway instance whose key pair is gone, logs in with the stored key, and leaves the account
as it found it, also when any step fails or the user presses Ctrl-C."""

from __future__ import annotations

import os
import shutil
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from acceptance.__main__ import main
from acceptance.account import Options
from acceptance.report import Failure, explain
from acceptance.run import STEPS, Run
from acceptance.ssh import SshLogin, Target, instance_address
from local.acceptance import LocalAccount
from local.stack_twin import STACK
from tests.support.acceptance_world import calls_made, policy_actions, world

HELPER_PROFILE = f"{STACK}-Helper"  # carries SSM's rights: SSM reaches the instance


def denied(step: str) -> None:
    raise ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
        f"Op{step.title().replace(' ', '')}",
    )


def test_run_resets_a_lost_key_logs_in_and_leaves_the_account_as_it_was(
    account: LocalAccount,
) -> None:
    before = world(account)
    printed: list[str] = []

    with calls_made(account) as calls:
        run, report = account.run(Options(instance_profile=HELPER_PROFILE), echo=printed.append)

    outcomes = {step.name: step.outcome for step in report.steps}
    # The default VPC's subnets are public: SSH goes to the public IP, no endpoint needed.
    assert outcomes == {**dict.fromkeys(STEPS, "ok"), "connect endpoint": "skipped"}, report.lines()
    assert report.passed and report.left == []
    # The key pair was gone before the reset: only the stored key can have opened it.
    names = [step.name for step in report.steps]
    assert names.index("lose the key") < names.index("offline reset") < names.index("log in")
    login = next(step.detail for step in report.steps if step.name == "log in")
    if account.sshd is None:  # a real sshd read the volume's authorized_keys
        assert login.startswith("ssh root@127.0.0.1 with the stored key ran `id`: uid=0(root)")
    else:
        assert "the stored key's public half is in the authorized_keys of ec2-user" in login
    online = next(s.detail for s in report.steps if s.name == "online reset")
    assert (
        "; logged in again: ssh root@127.0.0.1 with the stored key ran `id`: uid=" in online
        or account.sshd is not None
    )
    assert world(account) == before
    # No private key the run fetched (or the workflow wrote) was printed.
    text = "\n".join(printed + report.lines())
    assert account.engine.secrets_written
    assert not any(secret in text for secret in account.engine.secrets_written)
    assert "facts" not in text and "private_key" not in run.facts
    # docs/acceptance-policy.json, the rights the README asks for, allows every request made.
    assert calls and calls <= policy_actions(), sorted(calls - policy_actions())


@pytest.mark.parametrize("index", range(len(STEPS)), ids=STEPS)
def test_an_error_at_any_step_is_one_line_and_leaves_nothing(
    account: LocalAccount, index: int
) -> None:
    step = STEPS[index]
    before = world(account)
    interrupt = index % 2 == 1

    def fault(name: str) -> None:
        if name == step:
            if interrupt:
                raise KeyboardInterrupt
            denied(name)

    _, report = account.run(Options(instance_profile=HELPER_PROFILE), fault=fault)

    last = report.steps[-1]
    assert last.name == step, report.lines()
    if interrupt:
        assert last.outcome == "interrupted"
    else:
        assert last.outcome == "failed"
        assert "\n" not in last.detail and "denied (AccessDenied)" in last.detail
        assert f"for the {step} step" in last.detail
    assert not report.passed
    assert all(c.outcome == "ok" for c in report.cleanup), report.lines()
    assert report.left == []
    assert world(account) == before


def test_ctrl_c_while_the_reset_runs_stops_it_and_the_janitor_puts_everything_back(
    account: LocalAccount,
) -> None:
    before = world(account)
    current: list[str] = []

    def sleep(seconds: float) -> None:
        if current == ["offline reset"]:
            raise KeyboardInterrupt

    with calls_made(account) as calls:
        _, report = account.run(
            Options(), fault=lambda name: current.__setitem__(slice(None), [name]), sleep=sleep
        )

    assert report.steps[-1].name == "offline reset", report.lines()
    assert report.steps[-1].outcome == "interrupted"
    stopped = next(c for c in report.cleanup if c.name == "executions")
    assert "stopped acceptance-" in stopped.detail and stopped.outcome == "ok"
    assert report.left == []
    # The helper is gone, the lock released, the root volume deleted with its instance.
    assert world(account) == before
    assert {"states:StopExecution", "dynamodb:GetItem"} <= calls <= policy_actions(), sorted(
        calls - policy_actions()
    )


def test_no_stack_says_deploy_first_and_makes_nothing(account: LocalAccount) -> None:
    before = world(account)
    _, report = account.run(Options(stack="NotDeployed"))
    assert [s.outcome for s in report.steps] == ["ok", "failed"]
    assert report.steps[-1].detail == (
        "stack NotDeployed is not deployed in this account and "
        "Region: run `make deploy` first (or pass --stack)"
    )
    assert report.cleanup == [] and world(account) == before


def test_a_private_subnet_without_the_aws_cli_is_refused_before_anything_is_made(
    account: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setattr("acceptance.steps.aws_cli", lambda: None)
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")[
        "Subnet"
    ]["SubnetId"]
    try:
        before = world(account)
        _, report = account.run(Options(subnet_id=subnet))
        assert report.steps[-1].name == "network" and report.steps[-1].outcome == "failed"
        assert report.steps[-1].detail == (
            f"subnet {subnet} has no route to an internet gateway: SSH goes through an EC2 "
            "Instance Connect Endpoint, which needs the AWS CLI v2 (`aws ec2-instance-connect "
            "open-tunnel`); install it, or pass --subnet with a public subnet"
        )
        assert world(account) == before
    finally:
        ec2.delete_subnet(SubnetId=subnet)
        ec2.delete_vpc(VpcId=vpc)


def test_a_private_instance_is_reached_through_the_endpoint_tunnel() -> None:
    session = boto3.Session(
        region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    run = Run(session.client, SshLogin(), Options(profile="dev"))
    run.facts.update(private=True, endpoint="eice-0123456789abcdef0")
    target = instance_address({"InstanceId": "i-0123456789abcdef0"}, run)
    assert (target.host, target.port, target.user) == ("i-0123456789abcdef0", 22, "ec2-user")
    assert target.proxy == (
        "aws ec2-instance-connect open-tunnel --instance-id %h "
        "--instance-connect-endpoint-id eice-0123456789abcdef0 "
        "--region eu-west-1 --profile dev"
    )


def test_ssh_that_cannot_connect_fails_in_one_line_with_what_ssh_said(tmp_path: Any) -> None:
    if not shutil.which("ssh"):
        pytest.skip("no ssh client here")
    run = Run(lambda service: None, SshLogin(), Options(login_timeout=0, poll_seconds=0))
    closed = SshLogin(lambda instance, run: Target("127.0.0.1", 1, "ec2-user"))
    with pytest.raises(Failure) as failure:
        closed(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
            {"InstanceId": "i-0123456789abcdef0"},
            run,
        )
    message = str(failure.value)
    assert message.startswith("cannot log in as ec2-user@127.0.0.1:1 with the stored key")
    assert "ssh said:" in message and "\n" not in message
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "acceptance: no AWS Region: pass --region or set AWS_REGION"),
        (
            {"AWS_REGION": "eu-west-1"},
            "acceptance: no AWS credentials found: run `aws configure`, "
            "set AWS_PROFILE, or pass --profile",
        ),
    ],
)
def test_make_acceptance_without_credentials_or_region_refuses_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
    env: dict[str, str],
    expected: str,
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to find
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main([]) == 2
    assert capsys.readouterr().err == expected + "\n"


def test_an_unknown_profile_refuses_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert main(["--profile", "nosuch", "--region", "eu-west-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("acceptance: The config profile (nosuch) could not be found")
    assert err.count("\n") == 1


def test_ctrl_c_before_run_instances_answers_still_terminates_the_instance(
    account: LocalAccount,
) -> None:
    """The instance exists once AWS accepted the request, whether or not its answer arrived:
    clean-up finds it by the run's tag."""
    before = world(account)
    ec2 = account.clients("ec2")

    def answer_lost(**kwargs: Any) -> None:
        raise KeyboardInterrupt

    ec2.meta.events.register("after-call.ec2.RunInstances", answer_lost, unique_id="lost")
    try:
        run, report = account.run(Options())
    finally:
        ec2.meta.events.unregister("after-call.ec2.RunInstances", unique_id="lost")
    assert report.steps[-1].name == "launch" and report.steps[-1].outcome == "interrupted"
    assert run.made.instance_id is not None  # found by its tag during clean-up
    assert any(c.name == "instance" and "terminated" in c.detail for c in report.cleanup)
    assert report.left == [] and world(account) == before


def test_the_documented_policy_names_real_actions_and_no_wildcard() -> None:
    """A misspelt action would only show as AccessDenied in the user's account; botocore's
    models list every API each service has. Two actions are permissions without an API of
    that name: iam:PassRole, and ec2-instance-connect:OpenTunnel (a WebSocket; "Actions
    defined by Amazon EC2 Instance Connect", Service Authorization Reference)."""
    import botocore.session

    session = botocore.session.get_session()
    services = {"states": "stepfunctions", "ec2-instance-connect": "ec2-instance-connect"}
    for action in policy_actions() - {"iam:PassRole", "ec2-instance-connect:OpenTunnel"}:
        prefix, name = action.split(":")
        assert "*" not in action
        model = session.get_service_model(services.get(prefix, prefix))
        assert name in model.operation_names, action
    # What only a private subnet or an interrupted run asks for is in it too; an endpoint
    # also needs CreateNetworkInterface and CreateServiceLinkedRole ("Grant permissions to
    # use EC2 Instance Connect Endpoint", EC2 User Guide).
    assert {
        "ec2:CreateInstanceConnectEndpoint",
        "ec2:DeleteInstanceConnectEndpoint",
        "ec2:CreateNetworkInterface",
        "iam:CreateServiceLinkedRole",
        "ec2-instance-connect:OpenTunnel",
        "ec2:DeleteVolume",
    } <= policy_actions()


def test_a_region_without_a_default_vpc_asks_for_a_subnet(account: LocalAccount) -> None:
    from local import emulator

    vpcs = [v for v in emulator.ec2_backend().vpcs.values() if v.is_default]
    for vpc in vpcs:
        vpc.is_default = False  # as after `aws ec2 delete-vpc` of the default VPC
    try:
        before = world(account)
        _, report = account.run(Options())
    finally:
        for vpc in vpcs:
            vpc.is_default = True
    assert report.steps[-1].name == "network" and report.steps[-1].outcome == "failed"
    assert report.steps[-1].detail == (
        "this Region has no default VPC: pass --subnet with a "
        "subnet whose route table reaches an internet gateway"
    )
    assert world(account) == before


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            NoCredentialsError(),
            "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile",
        ),
        (
            ClientError(
                {"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "GetCallerIdentity"
            ),
            "your AWS credentials are not valid (ExpiredToken): refresh them and run again",
        ),
        (
            ClientError(
                {"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "RunInstances"
            ),
            "RunInstances was denied (UnauthorizedOperation): your credentials need it "
            "for the launch step; docs/acceptance-policy.json lists every right the run uses",
        ),
        (
            EndpointConnectionError(endpoint_url="https://ec2.xx-nowhere-1.amazonaws.com/"),
            "cannot reach AWS (Could not connect to the endpoint URL: "
            '"https://ec2.xx-nowhere-1.amazonaws.com/"); check the network and the Region',
        ),
    ],
)
def test_each_aws_failure_a_user_can_meet_is_one_line_saying_what_to_do(
    error: Exception, line: str
) -> None:
    assert explain(error, "launch") == line


def test_without_sshd_the_login_is_the_key_pair_match_and_a_foreign_key_fails(
    tmp_path: Any,
) -> None:
    from types import SimpleNamespace

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from local.acceptance import AUTHORIZED_KEYS, KeyPairMatch
    from local.checks import public_key_of

    def private() -> str:
        return (
            Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
            .decode()
        )

    stored, foreign = private(), private()
    keys = tmp_path / AUTHORIZED_KEYS
    keys.parent.mkdir(parents=True)
    keys.write_text(f"{public_key_of(stored)} reset-access\n")
    account = SimpleNamespace(sshd="not root", tree_of=lambda instance: tmp_path)
    match = KeyPairMatch(account)  # type: ignore[arg-type]
    run = Run(lambda service: None, match, Options())
    assert "uid=1000" in match(stored, {}, run)
    with pytest.raises(Failure, match="not in ec2-user's authorized_keys"):
        match(foreign, {}, run)


def test_a_reset_that_fails_in_the_account_is_one_line_and_leaves_nothing(
    account: LocalAccount,
) -> None:
    from local.scenario import Fault

    before = world(account)
    with account.engine.faults(Fault("LaunchHelper", "before", "InsufficientInstanceCapacity")):
        _, report = account.run(Options())
    last = report.steps[-1]
    assert (last.name, last.outcome) == ("offline reset", "failed"), report.lines()
    assert last.detail.startswith("offline reset FAILED: ") and "\n" not in last.detail
    assert "LaunchHelper" in last.detail and "/result" in last.detail
    assert report.left == [] and world(account) == before
