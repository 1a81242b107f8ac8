"""The filesystems the disk holds that may be its root, LVM's logical volumes included.

Partitions (or the whole disk) are classified by a low-level blkid; LVM physical volumes
lead to their logical volumes: plain linear ones read through a loop device over their
extents, others activated so that device-mapper keeps copy-on-write.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from . import fstab, lvm
from .partitions import blkid, size_bytes
from .proc import run

LINUX_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs")
WINDOWS_FILESYSTEMS = ("ntfs",)
SKIP_PART_TYPES = {
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "swap",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
    "0x82": "swap",
    "0xef": "EFI system",
    "0x5": "extended",
    "0xf": "extended",
    "0x85": "extended",
    "0x27": "Windows recovery",
}
SKIP_FILESYSTEMS = ("swap", "vfat")


class Candidate(NamedTuple):
    path: Path  # device node to mount
    name: str  # kernel name, e.g. nvme1n1p1
    fstype: str
    size: int
    shown: str = ""  # the name a user knows it by, when the node is ours (an LV's loop)

    @property
    def label(self) -> str:
        return self.shown or str(self.path)


class Volume(NamedTuple):
    """A filesystem of the disk: the root candidate and what fstab may call it."""

    candidate: Candidate
    device: fstab.Device


def classify(
    paths: Sequence[Path],
    platform: str,
    skipped: List[str],
    lv_names: Optional[Dict[Path, lvm.LogicalVolume]] = None,
) -> Tuple[List[Volume], List[str]]:
    """Filesystems that may hold the root, and LVM physical volumes, among these devices."""
    wanted = WINDOWS_FILESYSTEMS if platform == "windows" else LINUX_FILESYSTEMS
    found, pvs = [], []
    for path in paths:
        name = Path(os.path.realpath(path)).name  # the kernel name, also for LVM's dm-N
        info = blkid(path)
        fstype = info.get("TYPE", "")
        part_type = info.get("PART_ENTRY_TYPE", "").lower()
        volume = (lv_names or {}).get(path)
        shown = volume.path if volume else ""
        if part_type in SKIP_PART_TYPES or fstype in SKIP_FILESYSTEMS:
            continue
        if fstype in wanted:
            device = fstab.Device(
                str(path),
                fstype,
                info.get("UUID", ""),
                info.get("LABEL", ""),
                info.get("PART_ENTRY_UUID", ""),
                info.get("PART_ENTRY_NAME", ""),
                int(info.get("PART_ENTRY_NUMBER", "0") or 0),
                volume.names if volume else (),
            )
            found.append(Volume(Candidate(path, name, fstype, size_bytes(name), shown), device))
        elif fstype == "LVM2_member":
            pvs.append(str(path))
        elif fstype:
            skipped.append(f"{shown or path.name}: {fstype}")
    return found, pvs


def _lvm_runner(args: Sequence[str]) -> str:
    return str(run(args).stdout)


@contextmanager
def _loop_over(extent: lvm.Extent) -> Iterator[Path]:
    """A loop device over an LV's extents on its PV: the LV without device-mapper."""
    done = run(
        [
            "losetup",
            "--find",
            "--show",
            "--offset",
            str(extent.offset),
            "--sizelimit",
            str(extent.size),
            extent.pv,
        ]
    )
    loop = done.stdout.strip()
    try:
        yield Path(loop)
    finally:
        os.sync()
        run(["losetup", "--detach", loop], check=False)


def lvm_volumes(
    stack: ExitStack,
    pvs: List[str],
    platform: str,
    skipped: List[str],
    checked: List[str],
    details: Dict[str, object],
    notes: List[str],
) -> List[Volume]:
    """The filesystems on the target's LVs: plain linear ones through loops, others (thin,
    raid, snapshots and their origins) activated, so device-mapper keeps copy-on-write."""
    found: List[Volume] = []
    names: List[str] = []
    for group in lvm.target_groups(_lvm_runner, pvs):
        names.append(group.name)
        volumes = lvm.logical_volumes(_lvm_runner, group)
        if lvm.deactivate_if_active(_lvm_runner, group, volumes):
            details["lvm_auto_activation"] = "deactivated"
        if not all(volume.linear for volume in volumes):
            why = lvm.unreachable(volumes)
            volumes = stack.enter_context(lvm.activated(_lvm_runner, group, why, notes))
            paths = {Path(volume.path): volume for volume in volumes}
        else:
            paths = {
                stack.enter_context(_loop_over(volume.extents[0])): volume for volume in volumes
            }
        found += classify(list(paths), platform, skipped, paths)[0]
        checked.append(f"LVM VG {group.name} with {len(volumes)} LVs")
    if names:
        details["lvm"] = names
    return found
