"""The permission table (stacks/permissions.py) is true to what the handlers call.

moto, under the workflow tests, does not enforce IAM: a missing permission would only show as
AccessDenied in a real account. This reads the calls from the handlers' code (aws_calls.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stacks.permissions import IMPLIED_ACTIONS, PERMISSIONS
from stacks.project import ROOT
from statemachine.phases import FUNCTIONS, Phase
from tests.support.aws_calls import Package

HANDLERS_DIR = ROOT / "lambdas" / "handlers"


@pytest.fixture(scope="module")
def package() -> Package:
    return Package(ROOT)


def handler_modules() -> list[str]:
    return sorted(p.stem for p in HANDLERS_DIR.glob("*.py") if p.stem != "__init__")


def table_actions(handler: str) -> set[str]:
    return {action for rule in PERMISSIONS[handler] for action in rule.actions}


def test_every_handler_module_has_permissions() -> None:
    missing = [h for h in handler_modules() if h not in PERMISSIONS]
    assert missing == [], "add these to PERMISSIONS in stacks/permissions.py"


def test_the_table_has_one_entry_per_phase_function() -> None:
    assert sorted(PERMISSIONS) == sorted(p.handler for p in FUNCTIONS)


def test_every_handler_module_is_a_phase_function() -> None:
    assert handler_modules() == sorted(p.handler for p in FUNCTIONS)


@pytest.mark.parametrize("phase", FUNCTIONS, ids=lambda p: p.name)
def test_every_deployed_function_has_its_handler_module(phase: Phase) -> None:
    module = ROOT / f"{phase.module.replace('.', '/')}.py"
    assert module.exists(), f"the stack deploys {phase.module}.handler"
    assert re.search(r"^(def handler\(|handler = )", module.read_text(encoding="utf-8"), re.M)


@pytest.mark.parametrize("handler", handler_modules())
def test_table_allows_every_call_the_handler_makes(package: Package, handler: str) -> None:
    called = package.actions(f"lambdas.handlers.{handler}")
    missing = sorted(called - table_actions(handler))
    assert missing == [], f"{handler} calls {missing}: add them to stacks/permissions.py"


@pytest.mark.parametrize("handler", handler_modules())
def test_table_allows_nothing_the_handler_does_not_need(package: Package, handler: str) -> None:
    called = package.actions(f"lambdas.handlers.{handler}")
    unused = sorted(table_actions(handler) - called - set(IMPLIED_ACTIONS))
    assert unused == [], f"{handler} never calls {unused}: remove them from the table"


def test_the_reader_finds_calls_through_imports_and_bound_methods(tmp_path: Path) -> None:
    pkg = tmp_path / "lambdas"
    (pkg / "handlers").mkdir(parents=True)
    (pkg / "logic").mkdir()
    for init in (pkg, pkg / "handlers", pkg / "logic"):
        (init / "__init__.py").write_text("")
    (pkg / "logic" / "work.py").write_text(
        "def helper(ec2):\n"
        "    return ec2.stop_instances(InstanceIds=[])\n"
        "def lookup(describe):\n"
        "    return describe()\n"
        "def find(ec2):\n"
        "    return lookup(ec2.describe_vpcs)\n"
        "def unused(ec2):\n"
        "    return ec2.terminate_instances(InstanceIds=[])\n"
    )
    (pkg / "logic" / "lock.py").write_text(
        "def take(db):\n    db.put_item(TableName='t', Item={})\n"
    )
    (pkg / "handlers" / "h.py").write_text(
        "from lambdas.logic.work import helper as stop, find\n"
        "from lambdas.logic import lock\n"
        "def h(event):\n"
        "    stop(client('ec2'))\n"
        "    find(client('ec2'))\n"
        "    lock.take(client('dynamodb'))\n"
        "    client('ssm').get_parameter(Name='x')\n"
    )
    assert Package(tmp_path).actions("lambdas.handlers.h") == {
        "ec2:StopInstances",
        "ec2:DescribeVpcs",
        "dynamodb:PutItem",
        "ssm:GetParameter",
    }
