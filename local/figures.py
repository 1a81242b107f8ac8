"""State transitions and AWS API calls per kind of reset, side by side, from real local runs.

  python -m local.figures              # the table
  python -m local.figures --calls      # and every API call by name, per run
  python -m local.figures --markdown reports/figures.md

Each run is a scenario file of local/scenarios, run on the embedded engine (the real ASL and
handlers, moto, the real agent on directory trees). Transitions count as Step Functions bills
them: every state entered plus every retry of a Task. API calls are the handlers' own.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.scenario import Scenario

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RUNS = (
    ("Linux offline", "lost-key-linux.json"),
    ("Linux online", "lost-key-linux-online.json"),
    ("Linux replace-root", "lost-key-linux-replace-root.json"),
    ("Windows offline, EC2Launch v2", "lost-password-windows-ec2launch-v2.json"),
    ("Windows offline, EC2Launch v1", "lost-password-windows-ec2launch-v1.json"),
    ("Windows offline, EC2Config", "lost-password-windows-ec2config.json"),
    ("Windows online", "lost-password-windows-online.json"),
)
READS = ("Describe", "Get", "List")


@dataclass
class Figure:
    label: str
    status: str
    transitions: int
    states: int
    lambda_invocations: int
    api_calls: dict[str, int]
    seconds: float

    @property
    def total_calls(self) -> int:
        return sum(self.api_calls.values())

    @property
    def changing_calls(self) -> int:
        return sum(
            n for call, n in self.api_calls.items() if not call.split(":", 1)[1].startswith(READS)
        )

    @property
    def stopped(self) -> bool:
        return self.api_calls.get("ec2:StopInstances", 0) > 0


def measure(label: str, scenario_file: str) -> Figure:
    from local.engine import Engine

    started = time.monotonic()
    report: dict[str, Any] = Engine(Scenario.load(SCENARIOS / scenario_file)).run()
    history = report["history"]
    return Figure(
        label=label,
        status=report["status"],
        transitions=report["transitions"],
        states=sum(1 for e in history if e["type"].endswith("StateEntered")),
        lambda_invocations=sum(1 for e in history if e["type"] == "LambdaFunctionScheduled"),
        api_calls=report["api_calls"],
        seconds=round(time.monotonic() - started, 1),
    )


def table(figures: list[Figure]) -> list[str]:
    header = (
        "| run | status | transitions | states entered | Lambda invocations | "
        "AWS API calls | of which change something | instance stopped | local seconds |"
    )
    lines = [header, "|" + "---|" * 9]
    for f in figures:
        lines.append(
            f"| {f.label} | {f.status} | {f.transitions} | {f.states} | "
            f"{f.lambda_invocations} | {f.total_calls} | {f.changing_calls} | "
            f"{'yes' if f.stopped else 'no'} | {f.seconds} |"
        )
    return lines


def calls_table(figures: list[Figure]) -> list[str]:
    names = sorted({call for f in figures for call in f.api_calls})
    lines = [
        "| API call | " + " | ".join(f.label for f in figures) + " |",
        "|---|" + "---|" * len(figures),
    ]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(str(f.api_calls.get(name, "")) for f in figures) + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--calls", action="store_true", help="also every API call by name")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    figures = [measure(label, scenario) for label, scenario in RUNS]
    lines = table(figures)
    if args.calls:
        lines += ["", *calls_table(figures)]
    print("\n".join(lines))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text("\n".join([*table(figures), "", *calls_table(figures)]) + "\n")
    return 0 if all(f.status == "SUCCEEDED" for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
