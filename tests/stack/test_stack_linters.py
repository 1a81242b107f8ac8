"""Outside judges of the stack: cdk-nag (AwsSolutions), cfn-lint, asl-validator, the CDK CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from statemachine.definition import render, substitute
from statemachine.phases import PHASES
from tests.support.synth import ROOT, Synth

NODE_BIN = ROOT / "node_modules" / ".bin"
# cfn-lint checks we disable, each with why.
CFN_LINT_IGNORED = {
    # CDK adds DependsOn from each function to its role and policy; the role's GetAtt already
    # implies one of them. Harmless, and not ours to change.
    "W3005",
}
# cfn-lint findings that are wrong, each with why: (rule, the start of its message).
CFN_LINT_FALSE_POSITIVES = {
    # The States Language allows OutputPath on a Succeed state (states-language.net, "State
    # type table"), as Step Functions and asl-validator do; cfn-lint's schema of the definition
    # does not (1.58). asl-validator below checks the definition as a whole.
    ("E3601", "Additional properties are not allowed ('OutputPath' was unexpected)"),
}


def node_tool(name: str) -> str:
    tool = NODE_BIN / name
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `make node` (npm ci)", pytrace=False)
    return str(tool)


def run_tool(*command: str, env: dict[str, str] | None = None) -> str:
    """Run a linter or CLI from the repository root; it must exit 0. Returns its stdout."""
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cdk_nag_has_no_unacknowledged_finding(synth: Synth) -> None:
    assert synth.nag_violations() == []


def acknowledgements(synth: Synth) -> dict[tuple[str, str], str]:
    """(construct path, rule) -> reason, for every acknowledgement in the assembly."""
    found = {}
    for path, entries in synth.metadata.items():
        for entry in entries:
            if entry["type"] == "aws:cdk:acknowledged-rules":
                for rule, reason in entry["data"].items():
                    found[(path.lstrip("/"), rule.split("::", 1)[1])] = reason
    return found


def test_every_acknowledgement_gives_a_specific_reason(synth: Synth) -> None:
    acks = acknowledgements(synth)
    assert acks, "expected acknowledgements (IAM5 for Describe*, IAM4 for the helper, L1)"
    for (path, rule), reason in acks.items():
        assert len(reason) >= 60, (path, rule, reason)
        assert not re.search(r"\b(TODO|FIXME|TBD|ignore|n/a)\b", reason, re.I), (path, reason)


def test_every_acknowledgement_is_still_needed(synth: Synth) -> None:
    assert synth.validation is not None
    suppressed = {
        (c["constructPath"], v["ruleName"])
        for report in synth.validation["pluginReports"]
        for v in report.get("suppressedViolations", [])
        for c in v["violatingConstructs"]
    }
    stale = [
        f"{rule} on {path}"
        for path, rule in acknowledgements(synth)
        if not any(p == path or p.startswith(f"{path}/") for p, r in suppressed if r == rule)
    ]
    assert stale == [], "these acknowledge findings that no longer occur: remove them"


def test_cfn_lint_finds_nothing(synth: Synth) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),  # the venv's, beside its python
            "--format",
            "json",
            "--ignore-checks",
            *sorted(CFN_LINT_IGNORED),
            "--",
            str(synth.template_path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.stdout.strip(), result.stderr
    findings = [
        f"{f['Rule']['Id']} {f['Message']}"
        for f in json.loads(result.stdout)
        if not any(
            f["Rule"]["Id"] == rule and f["Message"].startswith(message)
            for rule, message in CFN_LINT_FALSE_POSITIVES
        )
    ]
    assert findings == [], result.stderr


def test_asl_validator_accepts_the_workflow_as_written_and_as_deployed(tmp_path: Path) -> None:
    written = tmp_path / "reset_access.asl.json"
    written.write_text(render(), encoding="utf-8")
    # As deployed: every ${...} replaced by a function ARN, as CloudFormation does.
    functions = "arn:aws:lambda:eu-west-1:123456789012:function:ResetAccess-"
    text = substitute(render(), {p.placeholder: f"{functions}{p.name}" for p in PHASES})
    assert "${" not in text
    deployed = tmp_path / "deployed.asl.json"
    deployed.write_text(text, encoding="utf-8")
    json.loads(text)
    run_tool(node_tool("asl-validator"), "--json-path", str(written), "--json-path", str(deployed))


def test_cdk_cli_reads_the_cloud_assembly(synth: Synth) -> None:
    """The CLI (package.json's aws-cdk) understands the assembly aws-cdk-lib writes.

    A CLI older than the library's cloud-assembly schema refuses to deploy; `cdk ls` on the
    session's synthesis checks that in 2 s, where a second full `cdk synth` would take 15.
    """
    env = {
        **os.environ,
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    listed = run_tool(node_tool("cdk"), "ls", "--no-notices", "--app", str(synth.outdir), env=env)
    assert listed.split() == ["ResetAccess"]


def test_cdk_json_runs_app_py_with_the_projects_python() -> None:
    config = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert config["app"] == ".venv/bin/python app.py"
    assert "build_app()" in (ROOT / "app.py").read_text(encoding="utf-8")
    assert config["context"]["alarmPrefix"] == "ResetAccess-"
