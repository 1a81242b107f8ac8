"""What the rescue tests share besides fixtures: the agent's test volume ID, its arguments,
skips."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.rescue_disks import tools_missing

REPO = Path(__file__).resolve().parents[2]
VOLUME_ID = "vol-0123456789abcdef0"

AgentResult = tuple[int, dict[str, Any]]
AgentRun = Callable[..., AgentResult]


def linux_args(key: str) -> tuple[str, ...]:
    """The agent's arguments for a Linux volume, as the helper's Run Command passes them."""
    return ("--platform", "linux", "--volume-id", VOLUME_ID, "--public-key", key)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: loop devices and mounts (CI runs as root)")


def require_tools(*tools: str) -> None:
    missing = tools_missing(*tools)
    if missing:
        pytest.skip(
            f"missing tools {', '.join(missing)}: install the packages of .ci/apt-packages.txt"
        )
