"""How long `reset-access --help` takes from a cold process, beside Python's own start-up and a
bare `import boto3` (what the command avoids loading until a subcommand calls AWS).

  python -m cli.coldstart [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(command: list[str], runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        seconds.append(time.perf_counter() - began)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.coldstart", description=__doc__)
    parser.add_argument("--runs", type=int, default=20, help="runs of each command")
    args = parser.parse_args(argv)
    script = shutil.which("reset-access") or str(Path(sys.executable).parent / "reset-access")
    commands = (
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("python -c 'import boto3'", [sys.executable, "-c", "import boto3"]),
        ("reset-access --help", [script, "--help"]),
    )
    print(f"{args.runs} runs each, wall time in ms (min / median / max)")
    for label, command in commands:
        timed(command, 1)  # warm the file cache: the figure is Python's start, not the disk's
        seconds = [s * 1000 for s in timed(command, args.runs)]
        print(
            f"  {label:<26} {min(seconds):6.0f} / {statistics.median(seconds):6.0f} / "
            f"{max(seconds):6.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
