"""The Windows half of the agent on real NTFS: a loop device formatted with mkntfs and mounted
with ntfs-3g the way the agent mounts it. Each test writes a Windows-like tree, remounts,
runs enable_password_generation on the mount, remounts again and reads everything back:
the intended edits and not one other byte, security descriptors included."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rescue.windows import enable_password_generation
from rescue.windows.ntfs_acl import NTFS_ACL_XATTR, security_descriptor
from tests.support.windows_fixtures import (
    AGENT_CONFIG_AWS,
    AGENT_CONFIG_REL,
    EC2CONFIG_REL,
    EC2CONFIG_XML,
    GPT_INI_REL,
    LAUNCH_CONFIG,
    LAUNCH_CONFIG_REL,
    RUN_ONCE_REL,
    SCRIPTS_INI_REL,
    STARTUP_REL,
    encode,
    make_tree,
)

BAK = ".reset-access.bak"
MOUNT_OPTIONS = "rw,nodev,nosuid,noexec"  # as rescue/disk/mounts.py mounts a Windows volume
# A descriptor unlike ntfs-3g's default and the agent's for new files, so keeping it shows.
CUSTOM_ACL = security_descriptor(directory=True)


def run(*cmd: str) -> str:
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True).stdout


class NtfsVolume:
    """A sparse image on a loop device (the image itself where there are none), NTFS."""

    def __init__(self, workdir: Path) -> None:
        self.image = workdir / "windows.img"
        self.mountpoint = workdir / "C"
        self.mountpoint.mkdir()
        self.device = ""
        self.loop = False
        self.mounted = False
        run("truncate", "-s", "48M", str(self.image))
        try:
            self.device = run("losetup", "--find", "--show", str(self.image)).strip()
            self.loop = True
        except (subprocess.CalledProcessError, FileNotFoundError):
            self.device = str(self.image)  # ntfs-3g and mkntfs (-F) take a file too
        run("mkntfs", "-Q", "-q", "-F", "-L", "Windows", self.device)

    def mount(self) -> Path:
        run("mount", "-t", "ntfs-3g", "-o", MOUNT_OPTIONS, self.device, str(self.mountpoint))
        self.mounted = True
        return self.mountpoint

    def unmount(self) -> None:
        for _ in range(20):
            done = subprocess.run(
                ["umount", str(self.mountpoint)], capture_output=True, check=False
            )
            if done.returncode == 0:
                self.mounted = False
                return
            time.sleep(0.1)  # ntfs-3g may still be flushing
        raise AssertionError(f"could not unmount {self.mountpoint}: {done.stderr!r}")

    def remount(self) -> Path:
        self.unmount()
        return self.mount()

    def release(self) -> None:
        try:
            if self.mounted:
                self.unmount()
        finally:
            if self.mounted:
                subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
            if self.loop:
                subprocess.run(["losetup", "-d", self.device], check=False)


@pytest.fixture
def ntfs(tmp_path: Path) -> Iterator[NtfsVolume]:
    if os.geteuid() != 0:
        pytest.skip("needs root: loop devices and mounts (CI runs as root)")
    missing = [tool for tool in ("mkntfs", "ntfs-3g", "mount") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: apt-get install ntfs-3g")
    if not Path("/dev/fuse").exists():
        pytest.skip("ntfs-3g needs /dev/fuse")
    volume = NtfsVolume(tmp_path)
    try:
        yield volume
    finally:
        volume.release()


def read_back(root: Path) -> dict[str, tuple[bytes | None, bytes]]:
    """Every file and directory: content (None for a directory) and security descriptor."""
    found: dict[str, tuple[bytes | None, bytes]] = {}
    for path in sorted(root.rglob("*")):
        assert not path.is_symlink(), path
        content = None if path.is_dir() else path.read_bytes()
        found[path.relative_to(root).as_posix()] = (content, os.getxattr(path, NTFS_ACL_XATTR))
    return found


def differences(
    before: dict[str, tuple[bytes | None, bytes]], after: dict[str, tuple[bytes | None, bytes]]
) -> dict[str, list[str]]:
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "content": sorted(k for k in set(before) & set(after) if before[k][0] != after[k][0]),
        "security": sorted(k for k in set(before) & set(after) if before[k][1] != after[k][1]),
    }


def test_ec2launch_v2_on_ntfs(ntfs: NtfsVolume) -> None:
    static = AGENT_CONFIG_AWS.replace("type: random", "type: static\n            data: pw")
    root = ntfs.mount()
    config = make_tree(root, "ec2launch-v2", config=encode(static, "utf-8-sig", "\r\n"))
    os.setxattr(config, NTFS_ACL_XATTR, CUSTOM_ACL)
    run_once_acl = os.getxattr(root / RUN_ONCE_REL, NTFS_ACL_XATTR)
    before = read_back(ntfs.remount())

    result = enable_password_generation(ntfs.mountpoint)

    after = read_back(ntfs.remount())
    assert differences(before, after) == {
        "added": [AGENT_CONFIG_REL + BAK, RUN_ONCE_REL + BAK],
        "removed": [RUN_ONCE_REL],
        "content": [AGENT_CONFIG_REL],
        "security": [],
    }
    assert after[AGENT_CONFIG_REL] == (encode(AGENT_CONFIG_AWS, "utf-8-sig", "\r\n"), CUSTOM_ACL)
    assert after[AGENT_CONFIG_REL + BAK] == before[AGENT_CONFIG_REL]  # content and descriptor
    assert after[RUN_ONCE_REL + BAK] == (b"", run_once_acl)
    assert result["changed_files"] == [AGENT_CONFIG_REL]

    again = enable_password_generation(ntfs.mountpoint)
    assert again["changed"] is False
    assert read_back(ntfs.remount()) == after


def test_ec2launch_v1_on_ntfs(ntfs: NtfsVolume) -> None:
    root = ntfs.mount()
    original = encode(LAUNCH_CONFIG, "utf-16-le-bom", "\r\n")
    config = make_tree(root, "ec2launch-v1", config=original)
    os.setxattr(config, NTFS_ACL_XATTR, CUSTOM_ACL)
    before = read_back(ntfs.remount())

    result = enable_password_generation(ntfs.mountpoint)

    after = read_back(ntfs.remount())
    policy_dirs = [
        "Windows/System32/GroupPolicy",
        "Windows/System32/GroupPolicy/Machine",
        "Windows/System32/GroupPolicy/Machine/Scripts",
        STARTUP_REL,
    ]
    created = [
        f"{STARTUP_REL}/ResetAccess-EC2Launch-Init.cmd",
        f"{STARTUP_REL}/ResetAccess-EC2Launch-Init.gpt.ini",
        SCRIPTS_INI_REL,
        GPT_INI_REL,
    ]
    assert differences(before, after) == {
        "added": sorted([LAUNCH_CONFIG_REL + BAK, *policy_dirs, *created]),
        "removed": [],
        "content": [LAUNCH_CONFIG_REL],
        "security": [],
    }
    expected = encode(LAUNCH_CONFIG.replace('"DoNothing"', '"Random"'), "utf-16-le-bom", "\r\n")
    assert after[LAUNCH_CONFIG_REL] == (expected, CUSTOM_ACL)
    assert after[LAUNCH_CONFIG_REL + BAK] == (original, CUSTOM_ACL)
    # ntfs-3g would give what it creates "Everyone: full control": not a startup script.
    for rel in policy_dirs:
        assert after[rel][1] == security_descriptor(directory=True), rel
    for rel in created:
        assert after[rel][1] == security_descriptor(directory=False), rel
    gpt_ini = after[GPT_INI_REL][0]
    assert gpt_ini is not None and b"Version=1\r\n" in gpt_ini
    assert after[SCRIPTS_INI_REL][0] == encode(
        "[Startup]\r\n0CmdLine=ResetAccess-EC2Launch-Init.cmd\r\n0Parameters=\r\n",
        "utf-16-le-bom",
        "\r\n",
    )
    assert result["created_files"] == [*policy_dirs, *created]

    assert enable_password_generation(ntfs.mountpoint)["changed"] is False
    assert read_back(ntfs.remount()) == after


def test_ec2config_on_ntfs_in_other_letter_cases(ntfs: NtfsVolume) -> None:
    root = ntfs.mount()
    original = encode(EC2CONFIG_XML, "utf-8-sig", "\r\n")
    make_tree(root, "ec2config", config=original)
    # ntfs-3g looks names up case-sensitively; Windows wrote these in its own way.
    (root / "Program Files").rename(root / "PROGRAM FILES")
    (root / "PROGRAM FILES/Amazon/Ec2ConfigService/Settings/config.xml").rename(
        root / "PROGRAM FILES/Amazon/Ec2ConfigService/Settings/Config.xml"
    )
    rel = "PROGRAM FILES/Amazon/Ec2ConfigService/Settings/Config.xml"
    before = read_back(ntfs.remount())

    result = enable_password_generation(ntfs.mountpoint)

    after = read_back(ntfs.remount())
    assert differences(before, after) == {
        "added": [rel + BAK],
        "removed": [],
        "content": [rel],
        "security": [],
    }
    enabled = EC2CONFIG_XML.replace(
        "<Name>Ec2SetPassword</Name>\n      <State>Disabled</State>",
        "<Name>Ec2SetPassword</Name>\n      <State>Enabled</State>",
    )
    assert after[rel][0] == encode(enabled, "utf-8-sig", "\r\n")
    assert after[rel + BAK] == before[rel]
    assert result["changed_files"] == [rel] and EC2CONFIG_REL not in after
