"""Which block device is the attached volume, and which disks are the helper's own.

On Nitro an EBS volume is an NVMe disk whose serial is the volume ID without its dash: the
only lookup. On Xen nothing in the device carries the volume ID, so a disk found by name
could be any disk; Preflight refuses Xen helper types before anything is attached.

Test seam (the only one): RESCUE_DEVICE_MAP="vol-0123...=/dev/loop3[,vol-...=...]" makes
a listed volume ID resolve to that path, through the same wait and the same refusal of
the helper's own disks; RESCUE_DEVICE_TIMEOUT (seconds) shortens the wait.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path
from typing import Dict, Optional, Set

from .. import RescueError

VOLUME_ID_RE = re.compile(r"^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
DEFAULT_TIMEOUT = 60.0  # EBS attachments show up in seconds; a minute covers slow ones
POLL_INTERVAL = 0.25


def validate_volume_id(volume_id: str) -> str:
    if not VOLUME_ID_RE.match(volume_id):
        raise RescueError(
            f"--volume-id {volume_id!r} is not a volume ID: expected vol- and 8 or 17 hex digits"
        )
    return volume_id


def device_map() -> Dict[str, str]:
    mapping = {}
    for item in os.environ.get("RESCUE_DEVICE_MAP", "").split(","):
        volume_id, sep, path = item.partition("=")
        if sep:
            mapping[volume_id.strip()] = path.strip()
    return mapping


def wait_timeout() -> float:
    return float(os.environ.get("RESCUE_DEVICE_TIMEOUT", DEFAULT_TIMEOUT))


def nvme_by_serial(volume_id: str, sys_root: Path, dev_root: Path) -> Optional[Path]:
    """The NVMe disk whose serial (or by-id link) carries the volume ID."""
    serial = volume_id.replace("-", "")
    by_id = dev_root / "disk" / "by-id" / f"nvme-Amazon_Elastic_Block_Store_{serial}"
    if by_id.exists():
        return Path(os.path.realpath(by_id))
    for block in sorted((sys_root / "block").glob("nvme*")):
        try:
            found = (block / "device" / "serial").read_text().strip()
        except OSError:
            continue
        if found == serial:
            return dev_root / block.name
    return None


def disk_name(path: Path) -> str:
    """The kernel name of the whole disk holding this device node (itself for a disk)."""
    info = Path(path).stat()
    if not stat.S_ISBLK(info.st_mode):
        raise RescueError(f"{path} is not a block device")
    sys_path = Path(
        os.path.realpath(f"/sys/dev/block/{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}")
    )
    if (sys_path / "partition").exists():
        return sys_path.parent.name
    return sys_path.name


def helper_root_disks(mountinfo: str = "/proc/self/mountinfo") -> Set[str]:
    """The disks under the helper's `/`, through partitions and device-mapper layers."""
    with Path(mountinfo).open() as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == "/":
                major_minor = fields[2]
                break
        else:
            return set()
    disks: Set[str] = set()
    pending = [Path(os.path.realpath(f"/sys/dev/block/{major_minor}"))]
    while pending:
        node = pending.pop()
        if not node.exists():
            continue
        if (node / "partition").exists():
            node = node.parent
        slaves = sorted((node / "slaves").glob("*")) if (node / "slaves").is_dir() else []
        if slaves:
            pending.extend(Path(os.path.realpath(slave)) for slave in slaves)
        else:
            disks.add(node.name)
    return disks


def refuse_helper_disk(volume_id: str, path: Path) -> None:
    name = disk_name(path)
    if name in helper_root_disks():
        raise RescueError(
            f"{volume_id} is {path}, the helper's own root disk: pass the ID of the volume "
            "detached from the instance to repair"
        )


def find_volume_device(
    volume_id: str,
    sys_root: Path = Path("/sys"),
    dev_root: Path = Path("/dev"),
) -> Path:
    """Wait (bounded) for the volume's disk to appear and return its device node."""
    validate_volume_id(volume_id)
    mapped = device_map().get(volume_id)
    timeout = wait_timeout()
    deadline = time.monotonic() + timeout
    while True:
        found = _lookup(volume_id, mapped, sys_root, dev_root)
        if found is not None:
            refuse_helper_disk(volume_id, found)
            return found
        if time.monotonic() >= deadline:
            raise RescueError(
                f"no block device for {volume_id} appeared within {timeout:g} s: check that the "
                "volume is attached to this instance (aws ec2 describe-volumes --volume-ids "
                f"{volume_id}) and retry"
            )
        time.sleep(POLL_INTERVAL)


def _lookup(
    volume_id: str, mapped: Optional[str], sys_root: Path, dev_root: Path
) -> Optional[Path]:
    if mapped is not None:
        path = Path(mapped)
        return path if _is_block(path) else None
    return nvme_by_serial(volume_id, sys_root, dev_root)


def _is_block(path: Path) -> bool:
    try:
        return stat.S_ISBLK(path.stat().st_mode)
    except OSError:
        return False
