"""Build the CDK app: used by `app.py` (the CDK CLI) and by the infrastructure tests alike."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from lambdas.names import STACK_NAME
from stacks.context import ContextError
from stacks.project import ROOT
from stacks.reset_access_stack import ResetAccessStack


def cdk_json_context() -> dict[str, Any]:
    """Context and feature flags from cdk.json, which the CLI passes but a bare App() lacks."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return context


# CloudFormation: a letter, then letters, digits and hyphens, at most 128 characters.
STACK_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


def stack_name_from(app: App) -> str:
    """The `stackName` context value (`cdk deploy -c stackName=ResetAccessTest`): a second copy
    in the same account and Region."""
    name = app.node.try_get_context("stackName")
    if name is None:
        return STACK_NAME
    if not isinstance(name, str) or not STACK_NAME_PATTERN.match(name):
        raise ContextError(
            f"stackName: {name!r} is not a CloudFormation stack name (a letter, then "
            "letters, digits and hyphens, at most 128)"
        )
    return name


def build_app(
    *,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> tuple[App, ResetAccessStack]:
    """The app with the ResetAccess stack, checked by cdk-nag's AwsSolutions rules on synth."""
    # Context given here ranks below the CLI's (-c key=value), as with cdk.json.
    app = App(outdir=outdir, context={**cdk_json_context(), **(context or {})})
    stack = ResetAccessStack(
        app,
        stack_name_from(app),
        description="ResetAccess: gives back SSH or Windows access to EC2 instances",
    )
    # Any unacknowledged finding fails synthesis (and so `cdk deploy`).
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
