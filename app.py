#!/usr/bin/env python3
"""CDK entry point (cdk.json "app"): synthesize the ResetAccess stack."""

from stacks.app import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
