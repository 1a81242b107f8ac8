"""Bad input on real devices: each run exits non-zero, names the cause, changes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rescue import RescueError
from rescue.disk.mounts import mount_volume_root
from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import AgentRun, linux_args, require_tools
from tests.support.rescue_trees import new_key, write_linux_tree

pytestmark = [pytest.mark.root]


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path)[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ext4_disk(disks: Disks, tmp_path: Path, with_os: bool = True) -> tuple[Path, str]:
    tree = write_linux_tree(tmp_path / "tree") if with_os else (tmp_path / "tree")
    tree.mkdir(exist_ok=True)
    if not with_os:
        (tree / "data").write_text("not an OS\n")
    image = disks.image("disk", "32M")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(image)], check=True)
    return image, disks.attach(image)


def refuse(run_agent: AgentRun, key: str, device: str, *words: str, timeout: str = "1") -> str:
    code, out = run_agent(*linux_args(key), device=device, timeout=timeout)
    assert code == 1 and out["ok"] is False, out
    for word in words:
        assert word in out["error"], out["error"]
    return str(out["error"])


def test_unknown_volume_id_times_out_naming_it(run_agent: AgentRun, key: str) -> None:
    code, out = run_agent(
        "--platform", "linux", "--volume-id", "vol-0fedcba9876543210", "--public-key", key
    )
    assert code == 1 and "vol-0fedcba9876543210" in out["error"] and "within 1 s" in out["error"]


def test_malformed_volume_id(run_agent: AgentRun, key: str) -> None:
    code, out = run_agent("--platform", "linux", "--volume-id", "vol-xyz", "--public-key", key)
    assert code == 1 and "not a volume ID" in out["error"]


def test_device_that_never_appears(run_agent: AgentRun, key: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nvme9n1")
    code, out = run_agent(
        *linux_args(key),
        device=missing,
        timeout="0.5",
    )
    assert code == 1 and "appeared within 0.5 s" in out["error"] and "attached" in out["error"]


def test_helper_root_disk_is_refused(run_agent: AgentRun, key: str) -> None:
    source = next(
        line.split()[0]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[1] == "/"
    )
    if not source.startswith("/dev/") or not Path(source).exists():
        pytest.skip(f"the root filesystem here ({source}) is not on a block device node")
    code, out = run_agent(*linux_args(key), device=source)
    assert code == 1 and "the helper's own root disk" in out["error"]


def no_os(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    return ext4_disk(disks, tmp_path, with_os=False)


def minix(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    require_tools("mkfs.minix")
    image = disks.image("disk", "16M")
    device = disks.attach(image)
    disks.mkfs("minix", device)
    return image, device


def read_only(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    image, _ = ext4_disk(disks, tmp_path)
    return image, disks.attach(image, read_only=True)


def needs_fsck(disks: Disks, tmp_path: Path) -> tuple[Path, str]:
    image, device = ext4_disk(disks, tmp_path)
    subprocess.run(["tune2fs", "-E", "force_fsck", device], check=True, capture_output=True)
    return image, device


@pytest.mark.parametrize(
    ("make_disk", "words"),
    [
        pytest.param(no_os, ("no linux root filesystem", "etc/os-release"), id="no-root-fs"),
        pytest.param(minix, ("unsupported filesystems", "minix"), id="unsupported-fs"),
        pytest.param(read_only, ("read-only", "read-write"), id="read-only-device"),
        pytest.param(needs_fsck, ("needs a check", "e2fsck"), id="fs-needing-repair"),
    ],
)
def test_refused_disk_is_left_as_it_was(
    disks: Disks,
    tmp_path: Path,
    run_agent: AgentRun,
    key: str,
    make_disk: Callable[[Disks, Path], tuple[Path, str]],
    words: tuple[str, ...],
) -> None:
    image, device = make_disk(disks, tmp_path)
    before = digest(image)
    refuse(run_agent, key, device, *words)
    assert digest(image) == before


def test_disk_already_mounted(disks: Disks, tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    _, device = ext4_disk(disks, tmp_path)
    with disks.mounted(device, "ext4") as target:
        refuse(run_agent, key, device, "already mounted", str(target))


def test_hibernated_windows_volume(disks: Disks, run_agent: AgentRun) -> None:
    """ntfs-3g would mount it only by discarding the hibernation: the agent refuses."""
    require_tools("mkntfs", "ntfs-3g", "ntfs-3g.probe")
    image = disks.image("disk", "64M")
    device = disks.attach(image)
    disks.mkfs("ntfs", device)
    with disks.mounted(device, "ntfs") as target:
        (target / "Windows" / "System32").mkdir(parents=True)
        (target / "hiberfil.sys").write_bytes(b"HIBR" + bytes(8188))
    before = digest(image)
    with (
        pytest.raises(RescueError, match="hibernated") as caught,
        mount_volume_root(Path(device), "windows"),
    ):
        pass
    assert "remove_hiberfile" not in str(caught.value)
    assert digest(image) == before


def test_lvm_volume_group_is_detected_and_left_inactive(
    disks: Disks, run_agent: AgentRun, key: str
) -> None:
    """Real LVM metadata on a partition (a VG without LVs: creating one needs device-mapper,
    which this machine lacks): found, activated, reported, deactivated, name unchanged."""
    require_tools("lvm", "sfdisk")
    lvm_type = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
    device = disks.attach(disks.image("disk", "64M", f"label: gpt\ntype={lvm_type}\n"))
    pv = disks.partition(device, 1)
    vg = f"rt{os.getpid()}"
    scoped = ["--devices", pv]
    for command in (  # archive and backup off: the test host keeps no copy of this VG either
        ["pvcreate", "-q", *scoped, pv],
        ["vgcreate", "-q", "--config", "backup { backup = 0 archive = 0 }", *scoped, vg, pv],
    ):
        subprocess.run(["lvm", *command], check=True, capture_output=True)
    error = refuse(run_agent, key, device)
    assert f"LVM VG {vg} with 0 LVs" in error and "no linux root" in error, error
    state = subprocess.run(
        ["lvm", "vgs", "--noheadings", "-o", "vg_name", *scoped],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert state == [vg]
