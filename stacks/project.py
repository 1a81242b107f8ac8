"""Where the stack finds the project's files, and names only the stack uses.

Names other layers share (tags, parameter paths, the stack's name) live in lambdas/names.py.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS_DIR = ROOT / "lambdas"
LAYER_DIR = ROOT / "build" / "layer"
RESCUE_DIR = ROOT / "rescue"

SERVICE_NAME = "reset-access"
KEY_ALIAS = "alias/reset-access"
