"""The disk's partitions as the kernel sees them, and whether anything holds them.

sysfs and a low-level blkid say what is on the disk without mounting anything; device nodes
come from udev, or are made here on helpers without it. A disk already mounted or held (by
anything but the idle LVs of the helper's auto-activation) is refused before any probe.
"""

from __future__ import annotations

import os
import stat
import time
from contextlib import suppress
from pathlib import Path
from typing import Dict, List

from .. import RescueError
from .devices import disk_name
from .proc import run

NODE_WAIT = 2.0  # udev creates partition nodes within a second; after that we make our own


def blkid(path: Path) -> Dict[str, str]:
    """Low-level probe (no udev or blkid cache): TYPE, PTTYPE, PART_ENTRY_TYPE, ..."""
    done = run(["blkid", "-p", "-o", "export", str(path)], check=False)
    values = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
    return values


def sys_block(name: str) -> Path:
    return Path("/sys/class/block") / name


def partition_names(disk: str) -> List[str]:
    children = [child for child in sys_block(disk).iterdir() if (child / "partition").exists()]
    return [
        child.name for child in sorted(children, key=lambda c: int((c / "partition").read_text()))
    ]


def partition_nodes(disk_path: Path, node_dir: Path) -> List[Path]:
    """Device nodes of the disk's partitions, asking the kernel to scan them if needed."""
    disk = disk_name(disk_path)
    names = partition_names(disk)
    if not names and blkid(disk_path).get("PTTYPE"):
        # Loop devices and some hotplug paths leave the table unread.
        run(["partx", "--add", str(disk_path)], check=False)
        names = partition_names(disk)
    return [_node(name, node_dir) for name in names]


def _node(name: str, node_dir: Path) -> Path:
    """/dev/NAME once udev made it, else a node of our own (helpers without udev)."""
    major, minor = (sys_block(name) / "dev").read_text().strip().split(":")
    wanted = os.makedev(int(major), int(minor))
    deadline = time.monotonic() + NODE_WAIT
    while time.monotonic() < deadline:
        with suppress(OSError):
            info = Path("/dev", name).stat()
            # A stale node of another device under this name must not be mounted.
            if stat.S_ISBLK(info.st_mode) and info.st_rdev == wanted:
                return Path("/dev", name)
        time.sleep(0.1)
    node = node_dir / name
    os.mknod(node, 0o600 | stat.S_IFBLK, wanted)
    return node


def size_bytes(name: str) -> int:
    try:
        return int((sys_block(name) / "size").read_text()) * 512
    except OSError:
        return 0


def mounted_devices() -> Dict[str, str]:
    """major:minor -> mount point for everything mounted now."""
    found: Dict[str, str] = {}
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            found.setdefault(fields[2], fields[4])
    return found


def refuse_busy(disk_path: Path) -> None:
    """A disk with mounted or held partitions is in use: never mount it a second time."""
    disk = disk_name(disk_path)
    mounted = mounted_devices()
    for name in [disk, *partition_names(disk)]:
        dev = (sys_block(name) / "dev").read_text().strip()
        if dev in mounted:
            raise RescueError(f"/dev/{name} is already mounted at {mounted[dev]}: unmount it first")
        holders = sorted(p.name for p in (sys_block(name) / "holders").glob("*"))
        if holders and not all(idle_lv(holder, mounted) for holder in holders):
            raise RescueError(
                f"/dev/{name} is in use by {', '.join(holders)}: deactivate them first"
            )


def idle_lv(holder: str, mounted: Dict[str, str]) -> bool:
    """An unmounted, unstacked LV: what the helper's lvm2 auto-activation leaves."""
    node = sys_block(holder)
    try:
        lvm_uuid = (node / "dm" / "uuid").read_text().startswith("LVM-")
        dev = (node / "dev").read_text().strip()
    except OSError:
        return False
    return lvm_uuid and dev not in mounted and not any((node / "holders").glob("*"))


def disk_nodes(disk_path: Path, node_dir: Path, notes: List[str]) -> List[Path]:
    """The partitions when the disk has a partition table, else the whole disk.

    A filesystem signature on the whole disk beside a partition table is left over from
    before the disk was partitioned: the table is what the instance boots from.
    """
    whole = blkid(disk_path)
    if whole.get("PTTYPE"):
        if whole.get("TYPE"):
            notes.append(
                f"{disk_path} also carries a stale {whole['TYPE']} signature beside its "
                f"{whole['PTTYPE']} partition table: ignored"
            )
        return partition_nodes(disk_path, node_dir)
    return [disk_path] if whole.get("TYPE") else partition_nodes(disk_path, node_dir)
