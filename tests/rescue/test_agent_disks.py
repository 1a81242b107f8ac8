"""The agent's real code path on real images: find, mount, repair, unmount."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from rescue.build import build_zipapp
from rescue.disk.mounts import mount_volume_root
from tests.support.rescue_disks import Disks
from tests.support.rescue_helpers import (
    AgentRun,
    linux_args,
    require_root,
    require_tools,
)
from tests.support.rescue_trees import fingerprint, new_key, write_linux_tree

pytestmark = [pytest.mark.root]

BIOS_BOOT = "21686148-6449-6E6F-744E-656564454649"
EFI = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    return new_key(tmp_path)


def read_back(
    disks: Disks, device: str, fstype: str, path: str, options: str = "ro"
) -> tuple[str, int, int]:
    """Content, owner uid and mode of a file on the volume, read from a fresh mount."""
    extra = ",nouuid" if fstype == "xfs" else ""
    with disks.mounted(device, fstype, options + extra) as target:
        file = target / path.lstrip("/")
        info = file.stat()
        return file.read_text(), info.st_uid, info.st_mode & 0o777


def test_ext4_whole_disk(
    disks: Disks, tmp_path: Path, key: tuple[Path, str], run_agent: AgentRun
) -> None:
    require_tools("mkfs.ext4")
    tree = write_linux_tree(tmp_path / "tree")
    image = disks.image("disk", "32M")
    device = disks.attach(image)
    disks.mkfs("ext4", device, "-d", str(tree))
    code, out = run_agent(*linux_args(key[1]), device=device)
    assert code == 0, out
    assert out["device"] == device and out["partition"] == device and out["filesystem"] == "ext4"
    assert out["distro"] == "amzn 2023"
    assert out["users"] == [
        {
            "name": "ec2-user",
            "uid": 1000,
            "files": ["/home/ec2-user/.ssh/authorized_keys"],
            "added": True,
        }
    ]
    assert out["fingerprint"] == fingerprint(key[0].with_suffix(".pub"))
    assert out["changed_files"] == 2 and out["selinux"] == "none"
    content, uid, mode = read_back(disks, device, "ext4", "/home/ec2-user/.ssh/authorized_keys")
    assert content == key[1] + "\n" and uid == 1000 and mode == 0o600
    subprocess.run(["e2fsck", "-fn", device], check=True, capture_output=True)  # left clean

    again = run_agent(*linux_args(key[1]), device=device)
    assert (
        again[0] == 0 and again[1]["users"][0]["added"] is False and again[1]["changed_files"] == 0
    )
    assert (
        read_back(disks, device, "ext4", "/home/ec2-user/.ssh/authorized_keys")[0] == key[1] + "\n"
    )


def test_xfs_on_gpt_beside_a_mounted_twin(
    disks: Disks, tmp_path: Path, key: tuple[Path, str], run_agent: AgentRun
) -> None:
    """The helper's own XFS root shares the UUID (same AMI): the agent mounts with nouuid."""
    require_tools("mkfs.xfs", "sfdisk")
    shared = str(uuid.uuid4())
    twin = disks.attach(disks.image("helper", "320M"))
    disks.mkfs("xfs", twin, "-m", f"uuid={shared}")
    table = f"label: gpt\nsize=1MiB, type={BIOS_BOOT}\ntype={LINUX}\n"
    device = disks.attach(disks.image("disk", "322M", table))
    root = disks.partition(device, 2)
    disks.mkfs("xfs", root, "-m", f"uuid={shared}")
    disks.fill(root, "xfs", write_linux_tree(tmp_path / "tree"))
    with disks.mounted(twin, "xfs"):
        code, out = run_agent(*linux_args(key[1]), device=device)
    assert code == 0, out
    assert out["partition"].endswith("p2") and out["filesystem"] == "xfs"
    content, uid, mode = read_back(disks, root, "xfs", "/home/ec2-user/.ssh/authorized_keys")
    assert content == key[1] + "\n" and uid == 1000 and mode == 0o600


def test_btrfs_root_subvolume(
    disks: Disks, tmp_path: Path, key: tuple[Path, str], run_agent: AgentRun
) -> None:
    require_tools("mkfs.btrfs", "btrfs")
    device = disks.attach(disks.image("disk", "200M"))
    disks.mkfs("btrfs", device)
    disks.fill(device, "btrfs", write_linux_tree(tmp_path / "tree"), subvolume="@")
    code, out = run_agent(*linux_args(key[1]), device=device)
    assert code == 0, out
    assert out["filesystem"] == "btrfs" and out["subvolume"] == "@"
    content, uid, _ = read_back(disks, device, "btrfs", "/@/home/ec2-user/.ssh/authorized_keys")
    assert content == key[1] + "\n" and uid == 1000


def test_partition_node_missing_without_udev(
    disks: Disks, tmp_path: Path, key: tuple[Path, str], run_agent: AgentRun
) -> None:
    """No udev and no /dev node for the root partition: the agent makes a private node."""
    require_tools("sfdisk", "mkfs.ext4")
    device = disks.attach(disks.image("disk", "40M", f"label: gpt\ntype={LINUX}\n"))
    root = disks.partition(device, 1)
    disks.mkfs("ext4", root, "-d", str(write_linux_tree(tmp_path / "tree")))
    Path(root).unlink()
    try:
        code, out = run_agent(*linux_args(key[1]), device=device)
        assert code == 0, out
        assert out["partition"] != root and out["partition"].endswith(Path(root).name)
    finally:
        disks.partition(device, 1)  # put the node back for read-back and release
    assert read_back(disks, root, "ext4", "/home/ec2-user/.ssh/authorized_keys")[0] == key[1] + "\n"


@pytest.mark.parametrize(
    ("size", "table", "before_root"),
    [
        pytest.param("48M", "label: dos\nsize=8MiB, type=82\ntype=83\n", ["swap"], id="mbr-swap"),
        # EFI is skipped; a /boot larger than root is probed and passed over.
        pytest.param(
            "72M",
            f"label: gpt\nsize=33MiB, type={EFI}\nsize=24MiB, type={LINUX}\ntype={LINUX}\n",
            ["vfat", "boot"],
            id="gpt-efi-boot",
        ),
    ],
)
def test_root_partition_after_others(
    disks: Disks,
    tmp_path: Path,
    key: tuple[Path, str],
    run_agent: AgentRun,
    size: str,
    table: str,
    before_root: list[str],
) -> None:
    """The root is the last partition; swap, EFI and /boot before it are passed over."""
    tools = {"swap": "mkswap", "vfat": "mkfs.vfat", "boot": "mkfs.ext4"}
    require_tools("sfdisk", "mkfs.ext4", *(tools[kind] for kind in before_root))
    device = disks.attach(disks.image("disk", size, table))
    for number, kind in enumerate(before_root, start=1):
        if kind == "boot":
            (tmp_path / "boot" / "grub2").mkdir(parents=True)
            disks.mkfs("ext4", disks.partition(device, number), "-d", str(tmp_path / "boot"))
        else:
            disks.mkfs(kind, disks.partition(device, number))
    number = len(before_root) + 1
    root = disks.partition(device, number)
    disks.mkfs("ext4", root, "-d", str(write_linux_tree(tmp_path / "tree")))
    code, out = run_agent(*linux_args(key[1]), device=device)
    assert code == 0, out
    assert out["partition"].endswith(f"p{number}")
    assert read_back(disks, root, "ext4", "/home/ec2-user/.ssh/authorized_keys")[0] == key[1] + "\n"


def test_zipapp_on_python39(
    disks: Disks, tmp_path: Path, key: tuple[Path, str], run_agent: AgentRun
) -> None:
    """The artifact the SSM document ships, on the oldest Python the agent supports."""
    python39 = Path("/root/.pyenv/versions/3.9.18/bin/python3.9")
    if not python39.exists():
        pytest.skip(
            "no Python 3.9 interpreter at /root/.pyenv/versions/3.9.18 to check 3.9 compatibility"
        )
    pyz = build_zipapp(tmp_path / "rescue.pyz")
    device = disks.attach(disks.image("disk", "32M"))
    disks.mkfs("ext4", device, "-d", str(write_linux_tree(tmp_path / "tree")))
    code, out = run_agent(
        *linux_args(key[1]),
        device=device,
        python=str(python39),
        entry=[str(pyz)],
    )
    assert code == 0 and out["users"][0]["added"] is True, out
    assert build_zipapp(tmp_path / "again.pyz").read_bytes() == pyz.read_bytes()  # reproducible


def test_ntfs_windows_root_is_found_and_released(disks: Disks, tmp_path: Path) -> None:
    """Mount logic for Windows volumes (the repair itself is rescue/windows/'s)."""
    require_root()
    require_tools("mkntfs", "ntfs-3g", "ntfs-3g.probe")
    device = disks.attach(disks.image("disk", "64M", "label: dos\ntype=7\n"))
    part = disks.partition(device, 1)
    disks.mkfs("ntfs", part)
    with disks.mounted(part, "ntfs") as target:
        (target / "Windows" / "System32").mkdir(parents=True)
    with mount_volume_root(Path(device), "windows") as mounted:
        assert mounted.filesystem == "ntfs" and mounted.partition.endswith("p1")
        assert (mounted.path / "Windows" / "System32").is_dir()
        (mounted.path / "written").write_text("rw")
    assert str(mounted.path) not in Path("/proc/mounts").read_text()
    with disks.mounted(part, "ntfs", "ro") as target:
        assert (target / "written").read_text() == "rw"
