"""Where the stack finds the project's files, and the names other parts agree on."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = ROOT / "lambdas"
LAYER_DIR = ROOT / "build" / "layer"
RESCUE_DIR = ROOT / "rescue"

STACK_NAME = "ResetAccess"
SERVICE_NAME = "reset-access"
KEY_ALIAS = "alias/reset-access"
DEFAULT_ALARM_PREFIX = "ResetAccess-"

# Tags every execution puts on what it creates (docs/interfaces.md, "Tags").
EXECUTION_TAG = "ResetAccess:Execution"
MANAGED_TAG = "ResetAccess:Managed"

# Canonical publishes the helper's AMI IDs under this public SSM path (DESIGN.md, phase 3).
UBUNTU_AMI_PARAMETER_PATH = "/aws/service/canonical/ubuntu/server/24.04/stable/current"
