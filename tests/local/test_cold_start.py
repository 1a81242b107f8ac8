"""What python -m local.cold_start measures is a phase's cold start as Lambda runs it, tracing
on, and what the cold start no longer imports stays out (no timing here)."""

from __future__ import annotations

import subprocess
import sys

from local.cold_start import ROOT, lambda_environment

PROBE = """
import sys
import lambdas.handlers.check_volume
from lambdas import runtime
runtime.client("ec2")
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in {
    "aws_xray_sdk", "boto3", "s3transfer", "sqlite3", "requests"})))
"""


def _probe() -> set[str]:
    """The modules of interest loaded once a handler is imported and has made its client."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=lambda_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_the_benchmark_runs_with_tracing_on_as_in_lambda() -> None:
    env = lambda_environment()
    assert "POWERTOOLS_TRACE_DISABLED" not in env
    assert env["LAMBDA_TASK_ROOT"] and env["AWS_LAMBDA_FUNCTION_NAME"]
    modules = _probe()
    # The X-Ray SDK is loaded and botocore is patched: the handler runs traced.
    assert "aws_xray_sdk.ext.botocore.patch" in modules


def test_a_cold_start_imports_neither_boto3_nor_what_only_other_patches_need() -> None:
    modules = _probe()
    assert not {"boto3", "s3transfer", "sqlite3", "requests"} & {m.split(".")[0] for m in modules}
