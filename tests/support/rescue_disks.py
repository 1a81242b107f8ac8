"""Real disk images on loop devices: sparse files, partition tables, filesystems.

No udev here: partition nodes come from `partx --add`, and mknod when devtmpfs did not
make them. Everything attached or mounted is recorded, and released by `release()`.

Other xdist workers (and other sessions on the host) run in parallel: `losetup
--associated` opens every loop device, and a loop device detached while anyone holds it
open is only detached at its last close. `detach()` waits for that, so a device this
test released is gone, not merely flagged, when the next step looks.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MKFS = {
    "ext4": ["mkfs.ext4", "-q", "-F"],
    "xfs": ["mkfs.xfs", "-q", "-f"],
    "btrfs": ["mkfs.btrfs", "-q", "-f"],
    "vfat": ["mkfs.vfat"],
    "swap": ["mkswap"],
    "ntfs": ["mkntfs", "-q", "-F", "-f"],
    "minix": ["mkfs.minix"],
}


def sh(*cmd: str) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout


class Disks:
    """Makes images and loop devices for one test and releases them afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.loops: list[str] = []
        self.mounts: list[Path] = []
        self.mount_count = 0
        self.nodes: list[Path] = []

    def image(self, name: str, size: str, table: str | None = None) -> Path:
        path = self.workdir / f"{name}.img"
        sh("truncate", "-s", size, str(path))
        if table is not None:
            subprocess.run(
                ["sfdisk", "-q", str(path)], input=table, text=True, check=True, capture_output=True
            )
        return path

    def attach(self, image: Path, read_only: bool = False) -> str:
        device = sh(
            "losetup", "--find", "--show", *(["--read-only"] if read_only else []), str(image)
        ).strip()
        self.loops.append(device)
        return device

    def partition(self, device: str, number: int) -> str:
        """The node of partition `number`, scanning the table once if needed."""
        name = f"{Path(device).name}p{number}"
        sys_dev = Path("/sys/class/block") / name / "dev"
        if not sys_dev.exists():
            subprocess.run(["partx", "--add", device], check=False, capture_output=True)
        node = Path("/dev") / name
        if not node.exists():
            major, minor = sys_dev.read_text().strip().split(":")
            os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(int(major), int(minor)))
            self.nodes.append(node)
        return str(node)

    def detach(self, device: str) -> None:
        """Detach a loop device of this test and wait until it is really detached."""
        subprocess.run(["partx", "--delete", device], check=False, capture_output=True)
        subprocess.run(["losetup", "--detach", device], check=False)
        if device in self.loops:
            self.loops.remove(device)
        backing = Path("/sys/block") / Path(device).name / "loop" / "backing_file"
        deadline = time.monotonic() + 10
        while backing.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # another process still has it open: detached at its close

    def mkfs(self, fstype: str, device: str, *extra: str) -> None:
        sh(*MKFS[fstype], *extra, device)

    @contextmanager
    def mounted(self, device: str, fstype: str = "auto", options: str = "") -> Iterator[Path]:
        self.mount_count += 1
        target = self.workdir / f"mnt{self.mount_count}"
        target.mkdir()
        kind = "ntfs-3g" if fstype == "ntfs" else fstype
        sh("mount", "-t", kind, *(["-o", options] if options else []), device, str(target))
        self.mounts.append(target)
        try:
            yield target
        finally:
            self.unmount(target)

    def unmount(self, target: Path) -> None:
        if target in self.mounts:
            subprocess.run(["umount", str(target)], check=True)
            self.mounts.remove(target)

    def fill(self, device: str, fstype: str, tree: Path, subvolume: str | None = None) -> None:
        """Copy a root tree into the filesystem (into a new btrfs subvolume if given)."""
        with self.mounted(device, fstype) as target:
            destination = target
            if subvolume:
                sh("btrfs", "subvolume", "create", str(target / subvolume))
                destination = target / subvolume
            sh("cp", "-a", f"{tree}/.", str(destination))

    def release(self) -> None:
        for target in reversed(self.mounts):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self.mounts.clear()
        for device in reversed(list(self.loops)):
            self.detach(device)
        for node in self.nodes:
            node.unlink(missing_ok=True)
        self.nodes.clear()


def tools_missing(*tools: str) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]
