"""LVM handling without device-mapper: the commands the agent would run, in order."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from rescue import RescueError, lvm

TARGET_PVS = ["/dev/nvme1n1p2"]


class FakeLvm:
    """Answers lvm report commands from a table of PVs and records every command."""

    def __init__(self, pvs: list[dict[str, str]]) -> None:
        self.pvs = pvs
        self.commands: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> str:
        command = list(args)
        self.commands.append(command)
        verb = command[1]
        scoped = [command[i + 1] for i, arg in enumerate(command) if arg == "--devices"]
        if verb == "pvs":
            rows = [row for row in self.pvs if not scoped or row["pv_name"] in scoped]
            return json.dumps({"report": [{"pv": rows}]})
        if verb == "lvs":
            vg = command[-3] if command[-1] == "json" else command[-1]
            return json.dumps(
                {
                    "report": [
                        {
                            "lv": [
                                {"lv_name": "root", "lv_path": f"/dev/{vg}/root"},
                                {"lv_name": "swap", "lv_path": f"/dev/{vg}/swap"},
                            ]
                        }
                    ]
                }
            )
        if verb == "vgimportclone":
            for row in self.pvs:
                if row["pv_name"] in command:
                    row["pv_uuid"] = "NEWUUID-" + row["pv_uuid"]
        return ""

    def verbs(self) -> list[list[str]]:
        return [c[1:] for c in self.commands if c[1] not in ("pvs", "lvs")]


def pv(name: str, vg: str, vg_uuid: str, pv_uuid: str = "abc-def") -> dict[str, str]:
    return {"pv_name": name, "vg_name": vg, "vg_uuid": vg_uuid, "pv_uuid": pv_uuid}


def test_no_clash_activates_only_the_target_group() -> None:
    fake = FakeLvm([pv("/dev/nvme1n1p2", "rhel", "U1"), pv("/dev/nvme0n1p3", "ubuntu-vg", "U2")])
    [group] = lvm.target_groups(fake, TARGET_PVS)
    assert group == lvm.VolumeGroup("rhel", "U1", ["/dev/nvme1n1p2"])
    with lvm.activated(fake, group) as active:
        assert active.name == "rhel" and active.lv_paths == ["/dev/rhel/root", "/dev/rhel/swap"]
        assert active.pvid_changes == {}
    assert fake.verbs() == [
        ["vgchange", "--activate", "y", "--devices", "/dev/nvme1n1p2", "rhel"],
        ["vgchange", "--activate", "n", "--devices", "/dev/nvme1n1p2", "rhel"],
    ]


@pytest.mark.parametrize(
    "helper_vg", [("rhel", "OTHER"), ("other", "U1")], ids=["same-name", "same-uuid"]
)
def test_clash_imports_under_a_temporary_name_and_renames_back(helper_vg: tuple[str, str]) -> None:
    fake = FakeLvm([pv("/dev/nvme1n1p2", "rhel", "U1", "pv-1"), pv("/dev/nvme0n1p3", *helper_vg)])
    [group] = lvm.target_groups(fake, TARGET_PVS)
    with lvm.activated(fake, group) as active:
        assert active.name == "rescue_U1" and active.lv_paths[0] == "/dev/rescue_U1/root"
        assert active.pvid_changes == {"pv1": "NEWUUIDpv1"}
    assert fake.verbs() == [
        ["vgimportclone", "--basevgname", "rescue_U1", "/dev/nvme1n1p2"],
        ["vgchange", "--activate", "y", "--devices", "/dev/nvme1n1p2", "rescue_U1"],
        ["vgchange", "--activate", "n", "--devices", "/dev/nvme1n1p2", "rescue_U1"],
        ["vgrename", "--devices", "/dev/nvme1n1p2", "rescue_U1", "rhel"],
    ]


def test_deactivates_and_renames_back_when_the_repair_fails() -> None:
    fake = FakeLvm([pv("/dev/nvme1n1p2", "rhel", "U1"), pv("/dev/nvme0n1p3", "rhel", "U2")])
    [group] = lvm.target_groups(fake, TARGET_PVS)
    with pytest.raises(RescueError), lvm.activated(fake, group):
        raise RescueError("mount failed")
    assert [verb[0] for verb in fake.verbs()] == [
        "vgimportclone",
        "vgchange",
        "vgchange",
        "vgrename",
    ]


def test_unreadable_report_is_a_clear_error() -> None:
    with pytest.raises(RescueError, match="no readable report"):
        lvm.target_groups(lambda args: "not json", TARGET_PVS)
