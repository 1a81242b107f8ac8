"""What validating the input with pydantic costs Preflight's cold start, measured here (the
host's Python, not Lambda's): `python -m tests.lambdas.bench_inputs [RUNS]`.

Each run is a fresh interpreter, as a cold start is: the phase runtime first (every function
imports it), then the input module (pydantic, Powertools' parser), then the first and a later
parse of an input.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

PROBE = """
import json, time
t0 = time.perf_counter()
import lambdas.runtime
t1 = time.perf_counter()
from lambdas.logic.inputs import parse_request
t2 = time.perf_counter()
parse_request({"InstanceId": "i-0123456789abcdef0", "DryRun": True})
t3 = time.perf_counter()
parse_request({"InstanceId": "i-0123456789abcdef0", "Mode": "offline"})
t4 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1, t3 - t2, t4 - t3]))
"""
LABELS = (
    "import lambdas.runtime (every function)",
    "import lambdas.logic.inputs (pydantic, parser)",
    "first parse_request",
    "a later parse_request",
)


def main(runs: int = 9) -> None:
    samples = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    print(f"median of {runs} fresh interpreters, Python {sys.version.split()[0]}:")
    for index, label in enumerate(LABELS):
        median = statistics.median(sample[index] for sample in samples)
        print(f"  {label:48} {median * 1000:8.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)
