"""`python -m statemachine [--output FILE]`: the workflow's JSON for Workflow Studio or the
console, as the stack deploys it (placeholders included); stdout unless --output is given."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from statemachine.definition import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m statemachine", description=__doc__)
    parser.add_argument("--output", "-o", type=Path, help="write the JSON here, not to stdout")
    args = parser.parse_args(argv)
    if args.output is None:
        sys.stdout.write(render())
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(), encoding="utf-8")
        print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
