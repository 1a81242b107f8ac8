#!/usr/bin/env python3
"""CDK entry point (cdk.json "app"): synthesize the ResetAccess stack."""

import sys

from stacks.app import build_app
from stacks.context import ContextError

if __name__ == "__main__":
    try:
        app, _ = build_app()
    except ContextError as error:
        # A value the user gave with -c or in cdk.json: say which and what to give, no traceback.
        print(f"cdk context: {error}", file=sys.stderr)
        sys.exit(2)
    app.synth()
