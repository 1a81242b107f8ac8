"""The rescue document as AWS runs it: the version sent, the target's python3, the helper type.

Each test encodes an AWS rule the local engine enforces (local/rescue_run.py, Preflight):
AWS would otherwise run or refuse what moto lets through.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from lambdas.logic.rescue_contract import MIN_PYTHON
from local.engine import Engine
from local.stack_twin import RESCUE_DOCUMENT, document_stand_in
from tests.support.workflow import Run, RunScenario, linux_instance


def result(run: Run) -> dict[str, Any]:
    parameter = run.world["parameters"][f"/reset-access/{run.instance()['id']}/result"]
    return dict(json.loads(parameter["value"]))


@pytest.mark.parametrize(
    ("key", "helper_type", "nitro"),
    [
        ("HelperInstanceType", "t2.small", "t3.small"),
        ("HelperInstanceType", "t2.medium", "t3.medium"),
        # The runbook's EC2RescueInstanceType gets its Nitro equivalent instead, with a note
        # (tests/workflow/test_runbook_input.py): a user coming from it passes its Xen default.
    ],
)
def test_a_xen_helper_type_is_refused_before_anything_changes(
    run_scenario: RunScenario, key: str, helper_type: str, nitro: str
) -> None:
    # AWS: DescribeInstanceTypes Hypervisor "xen" types show EBS volumes as /dev/xvdX with no
    # NVMe serial naming the volume, so the helper could repair the wrong disk.
    run = run_scenario(input={"InstanceId": "@web", key: helper_type})

    assert run.report["status"] == "FAILED"
    assert f"{helper_type} runs on the Xen hypervisor" in run.report["cause"]
    assert f"such as {nitro}" in run.report["cause"]
    run.assert_unchanged()


def test_an_updated_document_runs_the_version_the_stack_deployed_last(
    run_scenario: RunScenario,
) -> None:
    # AWS: SendCommand without DocumentVersion runs $DEFAULT; a default set back by hand (or not
    # yet moved by CloudFormation's update) would run an older agent. RunRescue sends $LATEST.
    def redeploy(engine: Engine) -> None:
        ssm = boto3.client("ssm", region_name="us-east-1")
        content = {**document_stand_in(), "description": "a newer agent"}
        ssm.update_document(
            Name=RESCUE_DOCUMENT, Content=json.dumps(content), DocumentVersion="$LATEST"
        )
        described = ssm.describe_document(Name=RESCUE_DOCUMENT)["Document"]
        assert (described["DefaultVersion"], described["LatestVersion"]) == ("1", "2")

    run = run_scenario(prepare=redeploy)

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    run.assert_restored()
    run.assert_key_opens()


def test_online_on_an_old_python_falls_back_to_the_helper_and_says_why(
    run_scenario: RunScenario,
) -> None:
    # CentOS/RHEL 7's python3 is 3.6: the document's first step refuses it with its own reason
    # (tests/stack runs that step under a real 3.6), and Mode auto goes offline.
    found = "3.6.8"

    def old_python(engine: Engine) -> None:
        engine.ssm_world.python3[engine.ids["web"]] = found

    run = run_scenario({"web": linux_instance(ssm=True)}, prepare=old_python)

    assert run.report["status"] == "SUCCEEDED", run.report["cause"]
    states = run.states_entered()
    assert states.index("OnlineFailed") < states.index("FallBackOffline")
    run.assert_restored()
    run.assert_key_opens()
    outcome = result(run)
    assert outcome["Mode"] == "offline"
    wanted = ".".join(map(str, MIN_PYTHON))
    assert f"python3 on this instance is {found}" in outcome["OnlineError"]
    assert f"needs Python {wanted} or later" in outcome["OnlineError"]
    assert "cannot run online" in outcome["OnlineError"]


def test_online_only_on_an_old_python_fails_naming_the_cause(run_scenario: RunScenario) -> None:
    def old_python(engine: Engine) -> None:
        engine.ssm_world.python3[engine.ids["web"]] = "3.6.8"

    run = run_scenario(
        {"web": linux_instance(ssm=True)},
        input={"InstanceId": "@web", "Mode": "online"},
        prepare=old_python,
    )

    assert run.report["status"] == "FAILED"
    assert "python3 on this instance is 3.6.8" in run.report["cause"]
    assert "Mode offline" in run.report["cause"]
    run.assert_restored("web", "running")
