"""Running the system tools the agent relies on (mount, blkid, lvm, ...)."""

from __future__ import annotations

import subprocess
from typing import Sequence

from .. import RescueError

# Which Debian/Ubuntu package brings each tool: a missing tool is named with its package.
PACKAGES = {
    "blkid": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "partx": "util-linux",
    "losetup": "util-linux",
    "dumpe2fs": "e2fsprogs",
    "lvm": "lvm2",
    "ntfs-3g.probe": "ntfs-3g",
}


def run(
    cmd: Sequence[str], timeout: float = 120.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a tool without a shell; on failure raise RescueError quoting its stderr."""
    try:
        done = subprocess.run(
            list(cmd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        package = PACKAGES.get(cmd[0], cmd[0])
        raise RescueError(
            f"the tool {cmd[0]!r} is not installed on this machine: install the package {package!r}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RescueError(f"{' '.join(cmd)} did not finish within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise RescueError(
            f"{' '.join(cmd)} failed (exit {done.returncode}): {' / '.join(detail[-3:])}"
        )
    return done
