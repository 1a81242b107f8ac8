"""Mount and unmount one filesystem of the volume, and refuse one that must not be written.

Every mount is nodev,nosuid,noexec; probes write nothing (no journal replay). A device an
earlier mount still holds is waited for, a failed mount names its cause (repair, read-only),
and a filesystem that needs repair or came up read-only is refused: the agent never repairs.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from contextlib import suppress
from pathlib import Path
from typing import Optional

from .. import RescueError
from .partitions import blkid, sys_block
from .proc import run
from .volumes import Candidate

SAFE_OPTIONS = "nodev,nosuid,noexec"  # the volume's device nodes and setuid files stay inert
NTFS_PROBE_CODES = {
    12: "holds no valid NTFS",
    13: "has an inconsistent NTFS: run chkdsk on Windows, or restore the backup",
    14: "is hibernated (Windows hibernation or Fast Startup): the agent will not discard the "
    "hibernation file; start the instance, shut Windows down fully, and retry",
    15: "was not cleanly unmounted: start the instance, shut Windows down fully, and retry",
    16: "is in use by another driver",
}


RELEASE_WAIT = 15.0  # seconds for an earlier mount of the device to let go of it


def _mounted_here(source: Path) -> bool:
    """Whether a mount in this namespace has the device as its source."""
    try:
        rdev = Path(source).stat().st_rdev
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split(" - ", 1)[-1].split()
        if len(fields) < 2 or not fields[1].startswith("/"):
            continue
        with suppress(OSError):
            info = Path(fields[1].replace("\\040", " ")).stat()
            if stat.S_ISBLK(info.st_mode) and info.st_rdev == rdev:
                return True
    return False


def _wait_released(source: Path) -> None:
    """Wait until no superblock (or exclusive opener) holds the device.

    An unmount returns before the filesystem is shut down when another mount namespace
    (e.g. `unshare --mount`, a service's private namespace) copied the mount meanwhile.
    Mounting the device again then silently reuses that superblock with its old options:
    a "recovery" mount shows the norecovery probe's stale view, a read-write one fails
    with EBUSY. An exclusive open succeeds only once the filesystem let go of the device.
    A device mounted here already (a btrfs root and its home subvolume) is meant to share.
    """
    if _mounted_here(source):
        return
    deadline = time.monotonic() + RELEASE_WAIT
    while True:
        try:
            os.close(os.open(str(source), os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC))
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return  # not ours to judge here: the mount names any real problem
        if time.monotonic() >= deadline:
            raise RescueError(
                f"{source} is still held by a filesystem {RELEASE_WAIT:g} s after it was "
                "unmounted (a process in another mount namespace keeps a copy of the mount, "
                "or another program has the device open exclusively): find it with "
                "'grep -l <device> /proc/*/mountinfo', or retry later"
            )
        time.sleep(0.1)


def mount(source: Path, target: Path, fstype: str, options: str) -> None:
    kind = "ntfs-3g" if fstype == "ntfs" else fstype
    _wait_released(source)
    done = run(["mount", "-t", kind, "-o", options, str(source), str(target)], check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if "Structure needs cleaning" in message or "corrupt" in message.lower():
            if blkid(source).get("PTTYPE"):
                # A repair tool run on a disk would overwrite its partition table.
                raise RescueError(
                    f"{source} does not mount as {fstype} ({message}) and holds a partition "
                    "table: run no repair tool on it; check its partitions one by one"
                )
            hint = "xfs_repair" if fstype == "xfs" else "fsck"
            raise RescueError(
                f"{source} ({fstype}) needs repair before it can be mounted: {message}. The agent "
                f"never repairs filesystems itself; run {hint} on a helper or restore the backup"
            )
        if "write-protected" in message or "read-only" in message:
            raise RescueError(f"{source} is read-only: attach the volume read-write ({message})")
        raise RescueError(f"mounting {source} ({fstype}) failed: {message}")


def unmount(target: Path) -> None:
    os.sync()
    for _ in range(10):
        done = run(["umount", str(target)], check=False)
        if done.returncode == 0:
            return
        time.sleep(0.3)  # a short-lived opener (e.g. a udev probe) may still hold it
    raise RescueError(f"could not unmount {target}: {done.stderr.strip()}; unmount it by hand")


def probe_options(fstype: str) -> str:
    """Read-only mounts that write nothing at all, not even a journal replay."""
    extra = {
        "ext2": "noload",
        "ext3": "noload",
        "ext4": "noload",
        "xfs": "norecovery,nouuid",
        "btrfs": "rescue=nologreplay",
    }.get(fstype)
    return ",".join(part for part in ("ro", SAFE_OPTIONS, extra) if part)


def rw_options(fstype: str, subvolume: Optional[str]) -> str:
    parts = ["rw", SAFE_OPTIONS]
    if fstype == "xfs":
        parts.append("nouuid")  # volumes from one AMI share the helper's XFS UUID
    if subvolume:
        parts.append(f"subvol={subvolume}")
    return ",".join(parts)


def read_only(candidate: Candidate) -> bool:
    disk = sys_block(candidate.name)
    for node in (disk, disk.resolve().parent):
        ro = node / "ro"
        if ro.exists() and ro.read_text().strip() == "1":
            return True
    return False


def check_writable(candidate: Candidate) -> None:
    """Refuse, before any write, a read-only device or a filesystem that needs repair."""
    if read_only(candidate):
        raise RescueError(f"{candidate.label} is read-only: attach the volume read-write and retry")
    if candidate.fstype.startswith("ext"):
        header = run(["dumpe2fs", "-h", str(candidate.path)], check=False).stdout
        state = next(
            (
                line.split(":", 1)[1].strip()
                for line in header.splitlines()
                if line.startswith("Filesystem state:")
            ),
            "",
        )
        if state and state != "clean":
            raise RescueError(
                f"{candidate.label} ({candidate.fstype}) is marked '{state}' and needs a check: "
                "the agent never repairs filesystems itself; run "
                f"e2fsck -f {candidate.label} on a helper (after a snapshot) or restore the backup"
            )
    if candidate.fstype == "ntfs":
        code = run(["ntfs-3g.probe", "--readwrite", str(candidate.path)], check=False).returncode
        if code != 0:
            reason = NTFS_PROBE_CODES.get(
                code, f"cannot be mounted read-write (ntfs-3g.probe exit {code})"
            )
            raise RescueError(f"{candidate.label} {reason}")


def verify_rw(mountpoint: Path) -> None:
    with Path("/proc/self/mountinfo").open() as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == str(mountpoint) and "rw" not in fields[5].split(","):
                raise RescueError(
                    f"{mountpoint} came up read-only: the filesystem has errors; check it"
                )
