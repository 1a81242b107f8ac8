"""Figures of the fleet workflow from real local runs: what a fleet costs per instance next to a
single run, the EC2 request rate it makes, and how long it takes here.

  python -m local.fleet_figures                 # fleets of 10 and 50 Linux instances
  python -m local.fleet_figures --sizes 10      # a quicker look

Transitions: the fleet's own (ResolveTargets, the Map, PublishFleetResult) from its history,
each child's from its history, and each Distributed Map iteration's, whose history moto does not
keep, counted along the iteration's states in the definition (a reset that succeeds enters
ErrorsSoFar, WithinMaxErrors, Where, ResetHere). API calls: every call the handlers make, fleet
functions included; Step Functions' own calls (StartExecution, the error count's GetItem) are
the service's and listed apart. The EC2 request rate is from the engine's call log, the most
EC2 calls in any one second; local time is compressed (Wait states take none, Retry pauses a
hundredth), so it bounds from above what the same calls make in AWS, spread over minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.scenario import Scenario
from statemachine import fleet

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
SINGLE = SCENARIOS / "lost-key-linux.json"
TEAM = {"Team": "web"}


@dataclass
class Figure:
    label: str
    status: str
    instances: int
    transitions: int
    api_calls: int
    service_calls: int
    peak_ec2_per_second: int
    peak_ec2_api: str
    seconds: float


def success_path() -> list[str]:
    """The iteration states a succeeded reset enters, walked in the definition."""
    states = fleet.definition()["States"]["ResetEach"]["ItemProcessor"]["States"]
    name: str | None = fleet.definition()["States"]["ResetEach"]["ItemProcessor"]["StartAt"]
    path: list[str] = []
    while name:
        path.append(name)
        state = states[name]
        name = state.get("Next") or state.get("Default")
    return path


def peak(call_log: list[tuple[float, str]]) -> tuple[int, str]:
    """The most EC2 calls in one second (sliding), and the busiest EC2 API in that second."""
    ec2 = [(t, key) for t, key in call_log if key.startswith("ec2:")]
    best, busiest, start = 0, "", 0
    for end in range(len(ec2)):
        while ec2[end][0] - ec2[start][0] >= 1.0:
            start += 1
        if end - start + 1 > best:
            best = end - start + 1
            window = Counter(key for _, key in ec2[start : end + 1])
            busiest = f"{window.most_common(1)[0][0]} x{window.most_common(1)[0][1]}"
    return best, busiest


def fleet_scenario(size: int, concurrency: int) -> Scenario:
    base = json.loads(SINGLE.read_text())
    instance = base["instances"]["web"]
    instances = {f"web{n}": {**instance, "tags": TEAM} for n in range(size)}
    return Scenario.from_dict(
        {
            "workflow": "fleet",
            "instances": instances,
            "input": {
                "Targets": [{"Key": "tag:Team", "Values": ["web"]}],
                "MaxConcurrency": concurrency,
                # More than 4 resets at once cannot each make a VPC (5 per Region).
                "SubnetId": "SelectedInstanceSubnet",
            },
        }
    )


def measure(label: str, scenario: Scenario) -> Figure:
    from local.engine import Engine

    engine = Engine(scenario)
    engine.time_limit = 3600.0
    started = time.monotonic()
    report: dict[str, Any] = engine.run()
    seconds = round(time.monotonic() - started, 1)
    children = report.get("executions", [])
    is_fleet = scenario.workflow == "fleet"
    transitions = report["transitions"]
    service_calls = 0
    if is_fleet:
        transitions += sum(c["transitions"] for c in children)
        transitions += len(success_path()) * len(children)
        # StartExecution and the error count's GetItem, per instance.
        service_calls = 2 * len(children)
    rate, api = peak(engine.call_log)
    return Figure(
        label=label,
        status=report["status"],
        instances=max(1, len(children)) if is_fleet else 1,
        transitions=transitions,
        api_calls=sum(report["api_calls"].values()),
        service_calls=service_calls,
        peak_ec2_per_second=rate,
        peak_ec2_api=api,
        seconds=seconds,
    )


def table(figures: list[Figure]) -> list[str]:
    lines = [
        "| run | status | instances | transitions per instance | handler API calls per "
        "instance | Step Functions' own calls per instance | peak EC2 calls in one local "
        "second (busiest API) | local wall seconds |",
        "|" + "---|" * 8,
    ]
    for f in figures:
        lines.append(
            f"| {f.label} | {f.status} | {f.instances} | {f.transitions / f.instances:.1f} | "
            f"{f.api_calls / f.instances:.1f} | {f.service_calls / f.instances:.0f} | "
            f"{f.peak_ec2_per_second} ({f.peak_ec2_api}) | {f.seconds} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.fleet_figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    args = parser.parse_args(argv)
    figures = [measure("single run, Linux offline", Scenario.load(SINGLE))]
    for size in args.sizes:
        for concurrency in args.concurrency:
            if concurrency <= size:
                figures.append(
                    measure(
                        f"fleet of {size}, MaxConcurrency {concurrency}",
                        fleet_scenario(size, concurrency),
                    )
                )
    print("\n".join(table(figures)))
    return 0 if all(f.status == "SUCCEEDED" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
