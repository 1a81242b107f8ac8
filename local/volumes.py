"""Root volumes as real directory trees: what the rescue agent edits in a local run."""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Any

DISTROS = {
    "amzn2023": ("Amazon Linux", "amzn", "2023"),
    "amzn2": ("Amazon Linux", "amzn", "2"),
    "ubuntu2404": ("Ubuntu", "ubuntu", "24.04"),
    "debian12": ("Debian GNU/Linux", "debian", "12"),
    "rhel9": ("Red Hat Enterprise Linux", "rhel", "9.4"),
    "al2023": ("Amazon Linux", "amzn", "2023"),
}


def build_linux_tree(root: Path, volume: dict[str, Any]) -> None:
    distro = volume.get("distro", "amzn2023")
    pretty, distro_id, version = DISTROS.get(distro, (distro, distro, ""))
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(
        f'NAME="{pretty}"\nID="{distro_id}"\nVERSION_ID="{version}"\n'
        f'PRETTY_NAME="{pretty} {version}"\n'
    )
    passwd = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin",
    ]
    group = ["root:x:0:", "daemon:x:1:", "sshd:x:74:"]
    keys_file = volume.get("authorized_keys_file", ".ssh/authorized_keys")
    for user in volume.get("users", []):
        name = user["name"]
        uid, gid = int(user.get("uid", 1000)), int(user.get("gid", user.get("uid", 1000)))
        home = user.get("home", f"/home/{name}")
        passwd.append(f"{name}:x:{uid}:{gid}::{home}:{user.get('shell', '/bin/bash')}")
        group.append(f"{name}:x:{gid}:")
        home_dir = root / home.lstrip("/")
        home_dir.mkdir(parents=True, exist_ok=True)
        _own(home_dir, uid, gid)
        keys = user.get("authorized_keys")
        if keys is None:
            continue
        path = authorized_keys_path(root, keys_file, name, home)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text("".join(f"{line}\n" for line in keys))
        path.chmod(0o600)
        _own(path.parent, uid, gid)
        _own(path, uid, gid)
    (root / "etc/passwd").write_text("\n".join(passwd) + "\n")
    (root / "etc/group").write_text("\n".join(group) + "\n")
    (root / "etc/ssh/sshd_config").write_text(
        "# sshd_config of the instance\nPasswordAuthentication no\n"
        f"AuthorizedKeysFile {keys_file}\nSubsystem sftp /usr/libexec/openssh/sftp-server\n"
    )
    for relative, content in volume.get("files", {}).items():
        target = root / relative.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def authorized_keys_path(root: Path, pattern: str, user: str, home: str) -> Path:
    """The first AuthorizedKeysFile entry, expanded the way sshd does, inside the tree."""
    first = pattern.split(maxsplit=1)[0]
    expanded = first.replace("%%", "\0").replace("%h", home).replace("%u", user).replace("\0", "%")
    if not expanded.startswith("/"):
        expanded = f"{home.rstrip('/')}/{expanded}"
    return root / expanded.lstrip("/")


def read_authorized_keys(root: Path, volume: dict[str, Any]) -> dict[str, list[str]]:
    pattern = volume.get("authorized_keys_file", ".ssh/authorized_keys")
    found: dict[str, list[str]] = {}
    for user in volume.get("users", []):
        home = user.get("home", f"/home/{user['name']}")
        path = authorized_keys_path(root, pattern, user["name"], home)
        if path.is_file() and not path.is_symlink():
            found[user["name"]] = [line for line in path.read_text().splitlines() if line]
        else:
            found[user["name"]] = []
    return found


def _own(path: Path, uid: int, gid: int) -> None:
    # Ownership matters to sshd; without root a local run keeps the caller's.
    if os.geteuid() == 0:
        os.chown(path, uid, gid)


# -- Windows -------------------------------------------------------------------------------
# Launch agent files in the shapes the agents themselves write, after the first boot has set
# the password and turned generation off again: what a volume that lost its password looks
# like. The agent's tests (tests/rescue) edit the same files; a scenario's "files" replace or
# add any of them.
WINDOWS_AGENT_CONFIG_REL = "ProgramData/Amazon/EC2Launch/config/agent-config.yml"
WINDOWS_RUN_ONCE_REL = "ProgramData/Amazon/EC2Launch/state/.run-once"
WINDOWS_LAUNCH_CONFIG_REL = "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json"
WINDOWS_INITIALIZE_REL = "ProgramData/Amazon/EC2-Windows/Launch/Scripts/InitializeInstance.ps1"
WINDOWS_EC2CONFIG_REL = "Program Files/Amazon/Ec2ConfigService/Settings/config.xml"

# As in AWS's EC2Launch v2 settings page: lists indented under their keys.
WINDOWS_AGENT_CONFIG_V2 = """\
version: 1.0
config:
  - stage: boot
    tasks:
      - task: extendRootPartition
  - stage: preReady
    tasks:
      - task: activateWindows
        inputs:
          activation:
            type: amazon
      - task: setDnsSuffix
        inputs:
          suffixes:
            - $REGION.ec2-utilities.amazonaws.com
      - task: setAdminAccount
        inputs:
          password:
            type: random
      - task: setWallpaper
        inputs:
          path: C:\\ProgramData\\Amazon\\EC2Launch\\wallpaper\\Ec2Wallpaper.jpg
          attributes:
            - hostName
            - instanceId
            - privateIpAddress
            - publicIpAddress
            - instanceSize
            - availabilityZone
            - architecture
            - memory
            - network
  - stage: postReady
    tasks:
      - task: startSsm
"""

# PowerShell's ConvertTo-Json layout (two spaces after the colon).
WINDOWS_LAUNCH_CONFIG_V1 = """\
{
    "setComputerName":  false,
    "setMonitorAlwaysOn":  false,
    "setWallpaper":  true,
    "addDnsSuffixList":  true,
    "extendBootVolumeSize":  true,
    "handleUserData":  true,
    "adminPasswordType":  "DoNothing",
    "adminPassword":  ""
}
"""

# An XML comment that names the password plugin, as administrators leave them.
WINDOWS_EC2CONFIG_XML = """\
<?xml version="1.0" standalone="yes"?>
<Ec2ConfigurationSettings>
  <!-- to regenerate the password:
       <Plugin><Name>Ec2SetPassword</Name><State>Enabled</State></Plugin> -->
  <Plugins>
    <Plugin>
      <Name>Ec2SetPassword</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2SetComputerName</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2InitializeDrives</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2EventLog</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2ConfigureRDP</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2OutputRDPCert</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2SetDriveLetter</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2WindowsActivate</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2DynamicBootVolumeSize</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2HandleUserData</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>AWS.EC2.Windows.CloudWatch.PlugIn</Name>
      <State>Disabled</State>
    </Plugin>
  </Plugins>
  <GlobalSettings>
    <ManageShutdown>true</ManageShutdown>
    <SetDnsSuffixList>true</SetDnsSuffixList>
    <WaitForMetaDataAvailable>true</WaitForMetaDataAvailable>
    <ShouldAddRoutes>true</ShouldAddRoutes>
    <RemoveCredentialsfromSysprepOnStartup>true</RemoveCredentialsfromSysprepOnStartup>
  </GlobalSettings>
</Ec2ConfigurationSettings>
"""

# Each agent's configuration file (relative path, text) and its installed program files.
WINDOWS_CONFIGS: dict[str, tuple[str, str]] = {
    "ec2launch-v2": (WINDOWS_AGENT_CONFIG_REL, WINDOWS_AGENT_CONFIG_V2),
    "ec2launch-v1": (WINDOWS_LAUNCH_CONFIG_REL, WINDOWS_LAUNCH_CONFIG_V1),
    "ec2config": (WINDOWS_EC2CONFIG_REL, WINDOWS_EC2CONFIG_XML),
}
WINDOWS_PROGRAMS: dict[str, dict[str, bytes]] = {
    "ec2launch-v2": {
        "Program Files/Amazon/EC2Launch/EC2Launch.exe": b"MZ\x90\x00EC2Launch",
        "Program Files/Amazon/EC2Launch/service/EC2LaunchService.exe": b"MZ\x90\x00service",
    },
    "ec2launch-v1": {
        WINDOWS_INITIALIZE_REL: b"# EC2Launch v1 initialization\r\nparam([switch]$Schedule)\r\n",
        "ProgramData/Amazon/EC2-Windows/Launch/Module/Ec2Launch.psd1": (
            b"@{ ModuleVersion='1.3' }\r\n"
        ),
    },
    "ec2config": {
        "Program Files/Amazon/Ec2ConfigService/Ec2Config.exe": b"MZ\x90\x00Ec2Config",
    },
}
WINDOWS_AGENTS = tuple(WINDOWS_CONFIGS)
# What every Windows system partition has besides its launch agent; a run must not touch it.
WINDOWS_SYSTEM_FILES: dict[str, bytes] = {
    "Windows/System32/drivers/etc/hosts": (
        b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n127.0.0.1       localhost\r\n"
    ),
    "Windows/System32/config/SOFTWARE": b"regf" + bytes(range(256)) * 16,
    "Windows/System32/config/SYSTEM": b"regf" + bytes(range(255, -1, -1)) * 4,
    "Windows/System32/Tasks/Amazon Ec2 Launch - Instance Initialization": codecs.BOM_UTF16_LE
    + '<?xml version="1.2" encoding="UTF-16"?>\r\n'.encode("utf-16-le"),
    "Windows/explorer.exe": b"MZ\x90\x00explorer",
    "Users/Administrator/Desktop/notes.txt": b"do not delete\r\n",
    "pagefile.sys": bytes(4096),
}


def windows_agent_files(
    agent: str, programs: bool = True, run_once: bool = True
) -> dict[str, bytes]:
    """The launch agent's files on a volume: its configuration (UTF-8, CRLF), its programs
    and, for EC2Launch v2, its state after the first boot (with the run-once mark or not)."""
    if agent not in WINDOWS_CONFIGS:
        raise ValueError(f"windows_agent: {agent!r} is not one of {', '.join(WINDOWS_AGENTS)}")
    rel, text = WINDOWS_CONFIGS[agent]
    files = {rel: text.replace("\n", "\r\n").encode()}
    if programs:
        files.update(WINDOWS_PROGRAMS[agent])
    if agent == "ec2launch-v2":
        files["ProgramData/Amazon/EC2Launch/state/state.json"] = b'{"status":"done"}'
        if run_once:
            files[WINDOWS_RUN_ONCE_REL] = b""
    return files


def build_windows_tree(root: Path, volume: dict[str, Any]) -> None:
    """A Windows system partition with one launch agent (`windows_agent`, EC2Launch v2 by
    default); `files` (relative path -> text) replace or add files."""
    agent = volume.get("windows_agent", "ec2launch-v2")
    for relative, data in {**WINDOWS_SYSTEM_FILES, **windows_agent_files(agent)}.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for relative, content in volume.get("files", {}).items():
        target = root / relative.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under root: relative path -> content."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
