"""The local engine is at least as strict as AWS IAM: each handler runs with its own function's
policy (stacks/permissions.py, rendered as the stack renders it), and a call that policy does
not allow fails as AWS fails it. So a green run here says the real roles suffice, and removing
any statement from the table makes some scenario fail (the mutation test below)."""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from lambdas.names import OPT_IN_TAG
from local.engine import Engine
from local.scenario import Fault, Scenario
from local.stack_twin import LOCK_TABLE
from stacks.permissions import PERMISSIONS, Rule
from statemachine.phases import FLEET_PHASES
from tests.support.workflow import Run, RunScenario, linux_instance, windows_instance

FAST_KEY = {"KeyType": "ed25519"}
REGION = "us-east-1"


def customer_managed_ebs_default(state: str = "Enabled") -> Callable[[Engine], None]:
    """A prepare step: the account encrypts new EBS volumes with its own KMS key by default."""

    def prepare(engine: Engine) -> None:
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="the account's EBS default key")["KeyMetadata"]["KeyId"]
        if state == "Disabled":
            kms.disable_key(KeyId=key_id)
        boto3.client("ec2", region_name=REGION).modify_ebs_default_kms_key_id(KmsKeyId=key_id)

    return prepare


def without(handler: str, index: int) -> dict[str, tuple[Rule, ...]]:
    """The permission table with one statement of one function removed."""
    table = dict(PERMISSIONS)
    table[handler] = tuple(r for i, r in enumerate(PERMISSIONS[handler]) if i != index)
    return table


def denied_in(run: Run) -> list[str]:
    return [
        f"{handler}: {check.action} on {check.resource}" for handler, check in run.engine.iam.denied
    ]


# -- the two denials a real account met -----------------------------------------------------
@pytest.mark.parametrize(
    ("faults", "prepare"),
    [
        # The first PublishResult moved the key and deleted the pending one, then its answer was
        # lost: the retry must learn that with what its role may do (it may not read
        # /ec2rl/openssh/*/key), not roll back a reset that worked.
        pytest.param(
            [{"state": "PublishResult", "when": "after", "error": "Lambda.ServiceException"}],
            None,
            id="retried-publish",
        ),
        # EBS encryption, permissions for users: kms:CreateGrant (GrantIsForAWSResource),
        # kms:Decrypt, kms:DescribeKey and kms:GenerateDataKeyWithoutPlaintext on the key, here
        # through EC2 only (kms:ViaService).
        pytest.param([], customer_managed_ebs_default(), id="customer-managed-ebs-default-key"),
    ],
)
def test_what_a_real_account_denied_is_allowed_and_the_key_opens(
    run_scenario: RunScenario,
    faults: list[dict[str, Any]],
    prepare: Callable[[Engine], None] | None,
) -> None:
    run = run_scenario(input={"InstanceId": "@web", **FAST_KEY}, faults=faults, prepare=prepare)

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    assert denied_in(run) == []
    run.assert_restored()
    run.assert_key_opens()
    run.assert_nothing_left()


def test_a_disabled_ebs_default_key_is_refused_before_anything_changes(
    run_scenario: RunScenario,
) -> None:
    run = run_scenario(
        input={"InstanceId": "@web", **FAST_KEY}, prepare=customer_managed_ebs_default("Disabled")
    )

    assert run.report["status"] == "FAILED"
    assert run.report["error"] == "Unsupported"
    assert "EBS default KMS key" in run.report["cause"]
    assert "is Disabled" in run.report["cause"]
    run.assert_unchanged(attempted=("dynamodb:PutItem", "dynamodb:DeleteItem", "ssm:PutParameter"))


def test_a_call_the_policy_does_not_allow_fails_as_in_aws_and_is_rolled_back() -> None:
    # EC2 answers UnauthorizedOperation, naming the action and the resource.
    scenario = Scenario.from_dict(
        {
            "instances": {"web": linux_instance()},
            "input": {"InstanceId": "@web", **FAST_KEY},
            "faults": [],
        }
    )
    engine = Engine(scenario)
    stop = next(
        i for i, r in enumerate(PERMISSIONS["stop_instance"]) if "ec2:StopInstances" in r.actions
    )
    engine.iam.permissions = without("stop_instance", stop)
    run = Run(engine, engine.run())

    assert run.report["status"] == "FAILED"
    assert "UnauthorizedOperation" in run.report["cause"]
    assert (
        "is not authorized to perform: ec2:StopInstances on resource: arn:aws:ec2:"
        in run.report["cause"]
    )
    assert denied_in(run) == [
        f"stop_instance: ec2:StopInstances on arn:aws:ec2:us-east-1:123456789012:instance/"
        f"{run.instance()['id']}"
    ]
    run.assert_restored()
    run.assert_nothing_left()


# -- every statement is needed: the mutation test --------------------------------------------
# Another execution holds the instance's lock: an alarm-started run withdraws from the breaker.
HELD = "alarm-started, lock held: refused"
# Each scenario: (name, instance, input overrides, faults, abort_at). One world runs them all.
SCENARIOS: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], str | None]] = [
    ("linux offline, encrypted root", "web", {}, [], None),
    (
        "linux offline in the instance's subnet",
        "web",
        {"SubnetId": "SelectedInstanceSubnet"},
        [],
        None,
    ),
    (
        "publish retried",
        "web",
        {},
        [{"state": "PublishResult", "when": "after", "error": "Lambda.ServiceException"}],
        None,
    ),
    ("windows offline, password AMI", "win", {"CreatePasswordEnabledAmi": True}, [], None),
    # A first attempt makes without looking (lambdas/runtime.first_attempt); a retry after the
    # side effect is what needs the look-ups (Describe*, ListCommands) that find the first's.
    (
        "changes retried after their side effect",
        "web",
        {},
        [
            {"state": state, "when": "after", "error": "Lambda.ServiceException"}
            for state in ("Backup", "DetachRootVolume", "AttachToHelper", "RunRescue")
        ],
        None,
    ),
    (
        "password AMI retried",
        "win",
        {"CreatePasswordEnabledAmi": True},
        [{"state": "CreatePasswordAmi", "when": "after", "error": "Lambda.ServiceException"}],
        None,
    ),
    ("linux online", "online", {}, [], None),
    ("windows online", "winon", {}, [], None),
    (
        "failure after the rescue: rollback",
        "web",
        {},
        [{"state": "RunRescue", "when": "after", "error": "InjectedFault"}],
        None,
    ),
    ("aborted at the rescue: janitor", "web", {}, [], "RunRescue"),
    ("aborted in Preflight: janitor releases the lock", "web", {}, [], "Preflight"),
    # Alarm-started: each ending records the run on the circuit breaker; Preflight announces a
    # suppressed one.
    ("alarm-started", "alarmed", {"StartedByAlarm": "ResetAccess-a"}, [], None),
    ("alarm-started again: suppressed", "alarmed", {"StartedByAlarm": "ResetAccess-a"}, [], None),
    (
        "alarm-started, fails: rollback",
        "alarmed2",
        {"StartedByAlarm": "ResetAccess-b"},
        [{"state": "RunRescue", "when": "after", "error": "InjectedFault"}],
        None,
    ),
    (
        "alarm-started, aborted: janitor",
        "alarmed3",
        {"StartedByAlarm": "ResetAccess-c"},
        [],
        "RunRescue",
    ),
    (HELD, "alarmed4", {"StartedByAlarm": "ResetAccess-d"}, [], None),
    ("replace-root, encrypted root", "rr", {"Mode": "replace-root"}, [], None),
    (
        "replace-root, failure after the swap: the old root goes back",
        "rrback",
        {"Mode": "replace-root"},
        [{"state": "WaitRootReplaced", "when": "after", "error": "InjectedFault"}],
        None,
    ),
    (
        "replace-root, aborted after the swap: janitor",
        "rrabort",
        {"Mode": "replace-root"},
        [],
        "PublishResult",
    ),
]
WORLD = {
    "rr": linux_instance(encrypted=True),
    "rrback": linux_instance(),
    "rrabort": linux_instance(),
    "web": linux_instance(encrypted=True),
    "alarmed": linux_instance(tags={OPT_IN_TAG: "true"}),
    "alarmed2": linux_instance(tags={OPT_IN_TAG: "true"}),
    "alarmed3": linux_instance(tags={OPT_IN_TAG: "true"}),
    "alarmed4": linux_instance(tags={OPT_IN_TAG: "true"}),
    "win": windows_instance(),
    "online": linux_instance(ssm=True),
    "winon": windows_instance(ssm=True),
}


# Every statement these alone allow some call for, another scenario's run allows alone too
# (the web instance's other runs, the password AMI retried, Run Command on a helper), so the
# derivation does not run them; their paths run with these roles in tests/workflow and tests/faults
# (the engine checks every call there too). A path only one of them takes would show here as
# its statement named unneeded: then run it again.
NOT_RUN: set[str] = {
    "linux offline, encrypted root",
    "windows offline, password AMI",
    "linux online",
    "windows online",
    "aborted in Preflight: janitor releases the lock",
}


# Real runs with one statement removed, on top of the derivation: the denial fails the run
# and the failure path still puts the instance back.
REAL_MUTATIONS = [
    ("publish retried", "publish_result", "ssm:DescribeParameters"),
    ("linux offline, encrypted root", "launch_helper", "kms:GenerateDataKeyWithoutPlaintext"),
]


def test_each_statement_is_needed_and_removing_one_fails_a_run() -> None:
    """One world, every scenario but NOT_RUN once with the full table (each must pass with
    its roles alone), recording which statements alone allowed some call. A run with one statement
    removed is the same run up to the first call that statement alone allowed, which is then
    denied: so a statement no scenario needs alone is either more than the functions need
    (least privilege: remove it) or a path without a scenario (add one)."""
    engine = Engine(
        Scenario.from_dict({"instances": copy.deepcopy(WORLD), "input": {}, "faults": []}),
        prepare=customer_managed_ebs_default(),
    )
    needed: dict[tuple[str, int], list[str]] = defaultdict(list)
    outcomes: dict[str, Any] = {}
    with engine.session() as execute:

        def run(name: str) -> dict[str, Any]:
            _, instance, extra, faults, abort_at = next(s for s in SCENARIOS if s[0] == name)
            engine.scenario.faults = [Fault(f["state"], f["when"], f["error"]) for f in faults]
            engine.scenario.abort_at = abort_at
            if name == HELD:
                boto3.client("dynamodb", region_name="us-east-1").put_item(
                    TableName=LOCK_TABLE,
                    Item={
                        "InstanceId": {"S": engine.ids[instance]},
                        "ExecutionArn": {"S": "arn:aws:states:us-east-1:123456789012:x"},
                    },
                )
            return execute({"InstanceId": f"@{instance}", **FAST_KEY, **extra})

        for name, *_ in SCENARIOS:
            if name in NOT_RUN:
                continue
            report = run(name)
            outcomes[name] = (report["status"], engine.iam.denied[:])
            for key in engine.iam.sole_grants:
                needed[key].append(name)

        for name, handler, action in REAL_MUTATIONS:
            index = next(i for i, r in enumerate(PERMISSIONS[handler]) if action in r.actions)
            engine.iam.permissions = without(handler, index)
            report = run(name)
            engine.iam.permissions = PERMISSIONS
            assert report["status"] == "FAILED", (handler, action)
            assert [(h, c.action) for h, c in engine.iam.denied] == [(handler, action)]
            assert any(
                code in report["cause"]
                for code in ("AccessDeniedException", "UnauthorizedOperation")
            )
            # The instance it ran on is as it was (replace-root runs changed theirs on purpose).
            instance = next(s[1] for s in SCENARIOS if s[0] == name)
            after = report["world"]["instances"][instance]
            assert after == engine.world_before["instances"][instance]

    expected: dict[str, tuple[str, list[str]]] = {
        name: ("ABORTED" if abort_at else "FAILED" if faults else "SUCCEEDED", [])
        for name, _, _, faults, abort_at in SCENARIOS
        if name not in NOT_RUN
    }
    for retried in (
        "publish retried",
        "changes retried after their side effect",
        "password AMI retried",
    ):
        expected[retried] = ("SUCCEEDED", [])
    expected[HELD] = ("FAILED", [])
    assert outcomes == expected
    unneeded = [
        f"{handler}[{index}] {rule.actions} on {rule.resources}"
        for handler, rules in PERMISSIONS.items()
        # The fleet's functions: tests/fleet/test_fleet_iam.py, with fleet runs.
        if handler not in {phase.handler for phase in FLEET_PHASES}
        for index, rule in enumerate(rules)
        if (handler, index) not in needed
    ]
    assert unneeded == [], "\n".join(unneeded)
