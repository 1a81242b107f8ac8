"""What one local workflow run costs: wall and CPU seconds per run, in one process, as a test
worker runs them one after another.

    python -m local.run_cost [--runs N] [--scenario FILE ...] [--keygen N]

Each scenario (default: the demo's Linux offline reset and a Windows offline one) runs N times
on the embedded engine (a fresh world each time, as every workflow test builds one). The first
run of the process pays the imports and is shown apart; median, min and max are over the
others. CPU is this process's (every thread) plus its children's (the rescue agent runs as a
subprocess). `--keygen N` also times N generations of each key CreateKey can make.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local.scenario import Scenario

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEFAULT = ("lost-key-linux.json", "lost-password-windows-ec2launch-v2.json")


@dataclass(frozen=True)
class Cost:
    status: str
    wall: float
    cpu: float
    calls: int


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def one_run(scenario_file: Path) -> Cost:
    from local.engine import Engine

    scenario = Scenario.load(scenario_file)
    wall, cpu = time.perf_counter(), _cpu()
    report = Engine(scenario).run()
    return Cost(
        report["status"],
        time.perf_counter() - wall,
        _cpu() - cpu,
        sum(report["api_calls"].values()),
    )


def spread(values: list[float], digits: int = 2) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"median {median:5.{digits}f}  min {low:5.{digits}f}  max {high:5.{digits}f}"


def keygen_seconds(runs: int) -> dict[str, list[float]]:
    """Seconds per generation of each key type CreateKey makes (lambdas/logic/keys.py)."""
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    makers = {
        "rsa-4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
        "rsa-3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
    }
    measured: dict[str, list[float]] = {}
    for name, make in makers.items():
        measured[name] = []
        for _ in range(runs):
            started = time.process_time()
            make()
            measured[name].append(time.process_time() - started)
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.run_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--runs", type=int, default=5, help="runs per scenario (default 5; 0: none)"
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        action="append",
        help="a scenario file (repeatable; default: the Linux demo and a Windows offline one)",
    )
    parser.add_argument("--keygen", type=int, default=0, help="also time N key generations")
    args = parser.parse_args(argv)
    files = args.scenario or [SCENARIOS / name for name in DEFAULT]
    ok = True
    for scenario_file in files if args.runs > 0 else []:
        costs = [one_run(scenario_file) for _ in range(args.runs)]
        ok = ok and all(c.status == "SUCCEEDED" for c in costs)
        first, rest = costs[0], costs[1:] or costs
        calls = sorted(c.calls for c in costs)
        # Polls answer as the branches' timing falls, so the count varies by a call or two.
        print(
            f"{scenario_file.name}: {args.runs} runs, API calls per run "
            f"{statistics.median(calls):g} ({calls[0]}-{calls[-1]})"
        )
        print(f"  first run  wall {first.wall:5.2f} s  cpu {first.cpu:5.2f} s")
        print(f"  wall s     {spread([c.wall for c in rest])}")
        print(f"  cpu s      {spread([c.cpu for c in rest])}")
        if {c.status for c in costs} != {"SUCCEEDED"}:
            print(f"  statuses {[c.status for c in costs]}")
    if args.keygen:
        print(f"key generation, CPU seconds, {args.keygen} each:")
        for name, seconds in keygen_seconds(args.keygen).items():
            # A prime search: its time varies widely, so the mean and the 90th percentile too.
            tail = statistics.quantiles(seconds, n=10)[-1] if len(seconds) > 1 else seconds[0]
            print(
                f"  {name:9}  {spread(seconds, 3)}  mean {statistics.fmean(seconds):5.3f}"
                f"  p90 {tail:5.3f}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
