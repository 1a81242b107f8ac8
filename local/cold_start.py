"""How long each phase handler takes from its import to its first line, tracing on, heaviest first.

    python -m local.cold_start [--runs N] [--json]

Each handler is imported in a fresh interpreter, as Lambda's init phase does, with what makes
Powertools and the X-Ray SDK behave as in Lambda: AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT and
a sampled trace header set, POWERTOOLS_TRACE_DISABLED unset, so the Tracer imports and patches
the X-Ray SDK and the handler runs in a traced subsegment. The figure is the import plus the
Tracer's and Logger's work before the handler's own first line (one invocation of a probe
phase wrapped by `lambdas.runtime.phase`). build/layer/python holds arm64/cp313 wheels, so the
packages come from .venv (the same pinned versions, this machine's architecture); Lambda's
256 MB functions get a fraction of a vCPU (docs/latencies.md), so there these figures grow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from statemachine.phases import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent

# Runs in the fresh interpreter: import the handler, then run one phase-wrapped probe (the
# decorators' first-invocation work), and print the seconds until the probe's first line.
PROBE = """
import time
start = time.perf_counter()
import importlib
module = importlib.import_module({module!r})
from lambdas.runtime import phase
reached = []
probe = phase(lambda event: reached.append(time.perf_counter()))
class Context:
    function_name = "probe"; memory_limit_in_mb = 256; aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:probe"
probe({{"state": "Probe"}}, Context())
print(reached[0] - start)
"""


def lambda_environment() -> dict[str, str]:
    """The environment a deployed function sees, as far as Powertools' choices go."""
    env = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "ResetAccess-probe",
            # The X-Ray SDK takes Lambda's path (its local sampler, the facade segment) on these.
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;"
            "Sampled=1",
            "AWS_REGION": env.get("AWS_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
            "POWERTOOLS_SERVICE_NAME": "reset-access",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            # X-Ray's daemon is absent here: a segment that cannot be sent is dropped, not fatal.
            "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            # What the stack sets on every function (stacks/functions.py); only read here.
            "LOCK_TABLE_NAME": "ResetAccess-locks",
            "KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/cold-start",
            "RESCUE_DOCUMENT_NAME": "ResetAccess-rescue",
            "HELPER_INSTANCE_PROFILE_ARN": "arn:aws:iam::123456789012:instance-profile/helper",
            "FUNCTION_TIMEOUT_SECONDS": "60",
        }
    )
    return env


def measure(module: str, runs: int) -> float:
    """The median seconds, over `runs` fresh interpreters, from import to the first line."""
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(module=module)],
            cwd=ROOT,
            env=lambda_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"cold_start: importing {module} failed: {last}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def figures(runs: int) -> dict[str, float]:
    """Seconds per handler module, heaviest first."""
    measured = {phase.handler: measure(phase.module, runs) for phase in FUNCTIONS}
    return dict(sorted(measured.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cold_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per handler")
    parser.add_argument("--json", action="store_true", help="seconds per handler as JSON")
    args = parser.parse_args(argv)
    measured = figures(args.runs)
    if args.json:
        print(json.dumps({name: round(s, 4) for name, s in measured.items()}, indent=2))
        return 0
    print(f"import to first line, tracing on, median of {args.runs} ({sys.version.split()[0]}):")
    for name, seconds in measured.items():
        print(f"  {name:22} {seconds * 1000:7.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
