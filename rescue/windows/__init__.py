"""Re-enable Administrator password generation on an offline Windows root volume.

Being split into one module per launch agent and per file format; until then everything
lives in yaml_subset.py (moved there first so git follows the history).
"""

from __future__ import annotations

from .yaml_subset import (
    NTFS_ACL_XATTR,
    SCRIPTS_CSE,
    SCRIPTS_TOOL,
    ConfigParseError,
    NoLaunchAgentError,
    WindowsRescueError,
    _edit_agent_config,
    _edit_ec2config,
    _edit_launch_config,
    enable_password_generation,
    security_descriptor,
)

__all__ = [
    "NTFS_ACL_XATTR",
    "SCRIPTS_CSE",
    "SCRIPTS_TOOL",
    "ConfigParseError",
    "NoLaunchAgentError",
    "WindowsRescueError",
    "_edit_agent_config",
    "_edit_ec2config",
    "_edit_launch_config",
    "enable_password_generation",
    "security_descriptor",
]
