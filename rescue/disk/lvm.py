"""LVM on the target volume: read its logical volumes without changing the volume group.

Decide first, change last: linear LVs through loop devices, others activated in place, every
command scoped to the target's PVs with no metadata copies. Design: docs/rescue-disks.md (LVM).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, NamedTuple, Sequence, Tuple

from .. import RescueError

Runner = Callable[[Sequence[str]], str]  # runs an lvm command, returns its stdout
NO_COPIES = "backup { backup = 0 archive = 0 }"  # the helper keeps no copy of the VG


class VolumeGroup(NamedTuple):
    name: str
    uuid: str
    pvs: List[str]


class Extent(NamedTuple):
    pv: str
    offset: int  # bytes from the start of the PV
    size: int  # bytes


class LogicalVolume(NamedTuple):
    vg: str
    name: str
    path: str  # /dev/vg/lv
    active: bool
    segtype: str
    extents: List[Extent]  # one per segment; a loop can map only a single linear one

    @property
    def linear(self) -> bool:
        return self.segtype == "linear" and len(self.extents) == 1

    @property
    def names(self) -> Tuple[str, ...]:
        """How fstab may name it: /dev/vg/lv and /dev/mapper/vg-lv (dashes doubled)."""
        mapper = f"{self.vg.replace('-', '--')}-{self.name.replace('-', '--')}"
        return (self.path, f"/dev/mapper/{mapper}")


def _command(verb: str, *args: str) -> List[str]:
    return ["lvm", verb, "--config", NO_COPIES, *args]


def _rows(run: Runner, verb: str, args: Sequence[str], table: str) -> List[Dict[str, str]]:
    output = run(_command(verb, *args, "--reportformat", "json"))
    try:
        return list(json.loads(output)["report"][0][table])
    except (ValueError, KeyError, IndexError) as exc:
        raise RescueError(f"lvm {verb} printed no readable report") from exc


def _devices(pvs: Sequence[str]) -> List[str]:
    return [arg for pv in pvs for arg in ("--devices", pv)]


def target_groups(run: Runner, pvs: Sequence[str]) -> List[VolumeGroup]:
    rows = _rows(run, "pvs", ["-o", "pv_name,vg_name,vg_uuid", *_devices(pvs)], "pv")
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
    rows = _rows(run, "pvs", ["-o", "pv_name,vg_name,vg_uuid"], "pv")
    return any(
        row["pv_name"] not in group.pvs
        and (row["vg_name"] == group.name or row["vg_uuid"] == group.uuid)
        for row in rows
        if row["vg_name"]
    )


def _extent(pe_ranges: str, pe_start: Dict[str, int], extent_size: int) -> List[Extent]:
    """Extents of a segment from seg_pe_ranges ('/dev/x:0-7', one per stripe)."""
    extents = []
    for item in pe_ranges.split():
        pv, _, span = item.rpartition(":")
        first, _, last = span.partition("-")
        if pv not in pe_start or not first.isdigit() or not last.isdigit():
            continue
        offset = pe_start[pv] + int(first) * extent_size
        extents.append(Extent(pv, offset, (int(last) - int(first) + 1) * extent_size))
    return extents


def logical_volumes(run: Runner, group: VolumeGroup) -> List[LogicalVolume]:
    """The group's visible LVs with where their data lies on the PVs (metadata read only)."""
    devices = _devices(group.pvs)
    units = ["--units", "b", "--nosuffix"]
    pvs = _rows(run, "pvs", ["-o", "pv_name,pe_start", *units, *devices], "pv")
    pe_start = {row["pv_name"]: int(row["pe_start"]) for row in pvs}
    fields = "lv_name,lv_path,lv_active,segtype,seg_pe_ranges,vg_extent_size"
    rows = _rows(run, "lvs", ["--segments", "-o", fields, *units, *devices, group.name], "seg")
    volumes: Dict[str, LogicalVolume] = {}
    for row in rows:
        if not row["lv_path"]:  # thin pools and hidden sub-LVs hold no filesystem
            continue
        extents = _extent(row["seg_pe_ranges"], pe_start, int(row["vg_extent_size"]))
        known = volumes.get(row["lv_name"])
        segtype = row["segtype"] if known is None or known.segtype == row["segtype"] else "mixed"
        volumes[row["lv_name"]] = LogicalVolume(
            group.name,
            row["lv_name"],
            row["lv_path"],
            row["lv_active"] == "active",
            segtype,
            [*(known.extents if known else []), *extents],
        )
    return list(volumes.values())


def deactivate_if_active(run: Runner, group: VolumeGroup, volumes: List[LogicalVolume]) -> bool:
    """Undo the helper's auto-activation (it writes no metadata); True if it was active."""
    if not any(volume.active for volume in volumes):
        return False
    run(_command("vgchange", "--activate", "n", *_devices(group.pvs), group.name))
    return True


@contextmanager
def activated(run: Runner, group: VolumeGroup) -> Iterator[List[LogicalVolume]]:
    """Activate the group in place (no metadata written); deactivate on exit."""
    if clashes(run, group):
        raise RescueError(
            f"the volume's LVM VG {group.name} has the name or UUID of a VG of the helper and "
            "holds LVs other than linear ones (thin, raid or multi-segment), which the agent "
            "reaches only by activating them: nothing was changed; use a helper whose AMI "
            "has no such VG"
        )
    devices = _devices(group.pvs)
    run(_command("vgchange", "--activate", "y", *devices, group.name))
    try:
        yield logical_volumes(run, group)
    finally:
        run(_command("vgchange", "--activate", "n", *devices, group.name))
