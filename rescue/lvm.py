"""LVM on the target volume: activate only its volume group, and leave no trace of that.

A VG whose name or UUID the helper already uses (volumes cloned from one AMI share both)
cannot be activated beside it, so it is imported under a temporary name with
vgimportclone, which also gives its PVs new UUIDs. Afterwards the VG gets its own name
back (so the instance's fstab, kernel command line and initramfs still find it), and a
volume that pins its PVs in /etc/lvm/devices/system.devices gets the new PVIDs there.
Every command is scoped with --devices to the target's PVs, so the helper's VGs are
neither seen nor touched.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, NamedTuple, Sequence

from . import RescueError
from .inroot import VolumeRoot, write_all

Runner = Callable[[Sequence[str]], str]  # runs an lvm command, returns its stdout
DEVICES_FILE = "/etc/lvm/devices/system.devices"


class VolumeGroup(NamedTuple):
    name: str
    uuid: str
    pvs: List[str]


class ActiveGroup(NamedTuple):
    name: str  # the name it is active under (temporary after a clash)
    lv_paths: List[str]
    pvid_changes: Dict[str, str]  # old PVID -> new PVID, when vgimportclone ran


def _rows(run: Runner, args: Sequence[str], table: str) -> List[Dict[str, str]]:
    output = run(["lvm", *args, "--reportformat", "json"])
    try:
        return list(json.loads(output)["report"][0][table])
    except (ValueError, KeyError, IndexError) as exc:
        raise RescueError(f"lvm {args[0]} printed no readable report") from exc


def _devices(pvs: Sequence[str]) -> List[str]:
    return [arg for pv in pvs for arg in ("--devices", pv)]


def target_groups(run: Runner, pvs: Sequence[str]) -> List[VolumeGroup]:
    rows = _rows(run, ["pvs", "-o", "pv_name,vg_name,vg_uuid", *_devices(pvs)], "pv")
    groups: Dict[str, VolumeGroup] = {}
    for row in rows:
        if row["vg_name"]:
            group = groups.setdefault(
                row["vg_uuid"], VolumeGroup(row["vg_name"], row["vg_uuid"], [])
            )
            group.pvs.append(row["pv_name"])
    return list(groups.values())


def clashes(run: Runner, group: VolumeGroup) -> bool:
    """Whether a helper VG (one on PVs outside the target) has this name or UUID."""
    rows = _rows(run, ["pvs", "-o", "pv_name,vg_name,vg_uuid"], "pv")
    return any(
        row["pv_name"] not in group.pvs
        and (row["vg_name"] == group.name or row["vg_uuid"] == group.uuid)
        for row in rows
        if row["vg_name"]
    )


def _pvids(run: Runner, pvs: Sequence[str]) -> Dict[str, str]:
    rows = _rows(run, ["pvs", "-o", "pv_name,pv_uuid", *_devices(pvs)], "pv")
    return {row["pv_name"]: row["pv_uuid"].replace("-", "") for row in rows}


@contextmanager
def activated(run: Runner, group: VolumeGroup) -> Iterator[ActiveGroup]:
    """Activate the group (imported under a temporary name on a clash); undo on exit."""
    devices = _devices(group.pvs)
    name = group.name
    changes: Dict[str, str] = {}
    if clashes(run, group):
        before = _pvids(run, group.pvs)
        name = f"rescue_{group.uuid.replace('-', '')[:8]}"
        run(["lvm", "vgimportclone", "--basevgname", name, *group.pvs])
        after = _pvids(run, group.pvs)
        changes = {before[pv]: after[pv] for pv in group.pvs if pv in before and pv in after}
    try:
        run(["lvm", "vgchange", "--activate", "y", *devices, name])
        try:
            rows = _rows(run, ["lvs", "-o", "lv_name,lv_path", *devices, name], "lv")
            yield ActiveGroup(name, [row["lv_path"] for row in rows if row["lv_path"]], changes)
        finally:
            run(["lvm", "vgchange", "--activate", "n", *devices, name])
    finally:
        if name != group.name:
            run(["lvm", "vgrename", *devices, name, group.name])


def update_devices_file(root: VolumeRoot, changes: Dict[str, str]) -> bool:
    """Replace old PVIDs in the volume's LVM devices file; True if it changed."""
    text = root.read_text(DEVICES_FILE)
    if not changes or text is None:
        return False
    updated = text
    for old, new in changes.items():
        updated = updated.replace(f"PVID={old}", f"PVID={new}")
    if updated == text:
        return False
    components, _ = root.resolve(DEVICES_FILE)
    dir_fd = root.open_dir(components[:-1])
    try:
        fd = os.open(components[-1], os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    # Overwrite in place, never truncate first: a failed write must not leave LVM an empty
    # devices file (the instance would find no PV at boot). PVIDs keep their length.
    original, data = text.encode(), updated.encode()
    try:
        try:
            write_all(fd, data, 0)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except BaseException:
            write_all(fd, original, 0)
            os.ftruncate(fd, len(original))
            os.fsync(fd)
            raise
    finally:
        os.close(fd)
    return True
