"""`python -m local run SCENARIO.json --report REPORT.json`, `python -m local demo` and
`python -m local serve SCENARIO.json [--port N]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from local.scenario import Scenario, ScenarioError

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one scenario and write its report")
    run.add_argument("scenario", type=Path)
    run.add_argument("--report", type=Path, help="where to write the report JSON")
    demo = commands.add_parser("demo", help="reset a Linux instance whose key is lost")
    demo.add_argument("--report", type=Path, default=Path("reports/lost-key-linux.json"))
    commands.add_parser("acceptance", help="the acceptance run (make acceptance), locally")
    serve = commands.add_parser(
        "serve", help="serve the scenario's world as an AWS endpoint until Ctrl-C"
    )
    serve.add_argument("scenario", type=Path)
    serve.add_argument("--port", type=_port, default=5000, help="0 picks a free port")
    args = parser.parse_args(argv)
    if args.command == "serve":
        from local.serve import main as serve_main

        return serve_main(args.scenario, args.port)
    if args.command == "acceptance":
        from local.acceptance import main as acceptance

        return acceptance()

    scenario_path = args.scenario if args.command == "run" else SCENARIOS / "lost-key-linux.json"
    try:
        scenario = Scenario.load(scenario_path)
    except ScenarioError as error:
        print(f"scenario refused: {error}", file=sys.stderr)
        return 2
    from local.engine import Engine

    print(f"running {scenario_path} on the embedded engine")
    report = Engine(scenario, echo=print).run()
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {args.report}")
    from local.summary import summary

    print()
    for line in summary(report, scenario):
        print(line)
    print(
        f"{report['transitions']} state transitions, "
        f"{sum(report['api_calls'].values())} AWS API calls"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
