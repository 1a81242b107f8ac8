"""A wrong CDK context value stops synth with one line naming it, as `cdk synth -c` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    "prefix,says",
    [
        ("  ", "alarmPrefix: must not be empty (it would match every alarm in the account)"),
        ("Reset\tAccess-", "alarmPrefix: 'Reset\\tAccess-' cannot begin an alarm name"),
    ],
)
def test_a_bad_context_value_is_one_line_naming_it(tmp_path: Path, prefix: str, says: str) -> None:
    # The CDK CLI hands -c values to the app in CDK_CONTEXT_JSON; app.py is what it runs.
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"alarmPrefix": prefix}),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",  # as the Makefile sets it
    }
    ran = subprocess.run(
        [sys.executable, "app.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"cdk context: {says}"), ran.stderr
    assert "Traceback" not in ran.stderr
    assert not list(tmp_path.glob("*.template.json"))
