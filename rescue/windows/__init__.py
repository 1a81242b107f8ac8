"""Re-enable Administrator password generation on an offline Windows root volume.

`enable_password_generation(root)` takes the root of a mounted Windows system partition
(NTFS through ntfs-3g on the Linux helper, or a plain directory tree in the local engine),
finds the EC2 launch agent the volume has (ec2launch_v2, ec2launch_v1, ec2config) and
makes it generate a new random password at the next boot, which EC2 returns, encrypted
with the instance's key pair, through GetPasswordData. Files are edited textually and in
place (json_splice, ini, yaml_subset) after everything is planned and checked (plan);
volume, encoding and ntfs_acl hold the shared helpers.

Design, AWS sources and limits: docs/rescue-windows.md.
"""

from __future__ import annotations

from .errors import ConfigParseError, NoLaunchAgentError, WindowsRescueError
from .repair import enable_password_generation

__all__ = [
    "ConfigParseError",
    "NoLaunchAgentError",
    "WindowsRescueError",
    "enable_password_generation",
]
