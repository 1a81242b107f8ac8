"""The Windows repair's errors: each message names the cause and what to do."""

from __future__ import annotations

from .. import RescueError


class WindowsRescueError(RescueError):
    """The Windows volume cannot be prepared; the message says why and what to do."""


class NoLaunchAgentError(WindowsRescueError):
    """None of the three EC2 launch agents has its configuration on the volume."""


class ConfigParseError(WindowsRescueError):
    """A launch agent's file is not in a shape the agent can edit safely."""
