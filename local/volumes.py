"""Root volumes as real directory trees: what the rescue agent edits in a local run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DISTROS = {
    "amzn2023": ('Amazon Linux', "amzn", "2023"),
    "amzn2": ('Amazon Linux', "amzn", "2"),
    "ubuntu2404": ("Ubuntu", "ubuntu", "24.04"),
    "debian12": ("Debian GNU/Linux", "debian", "12"),
    "rhel9": ("Red Hat Enterprise Linux", "rhel", "9.4"),
    "al2023": ('Amazon Linux', "amzn", "2023"),
}


def build_linux_tree(root: Path, volume: dict[str, Any]) -> None:
    distro = volume.get("distro", "amzn2023")
    pretty, distro_id, version = DISTROS.get(distro, (distro, distro, ""))
    (root / "etc/ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(
        f'NAME="{pretty}"\nID="{distro_id}"\nVERSION_ID="{version}"\n'
        f'PRETTY_NAME="{pretty} {version}"\n'
    )
    passwd = ["root:x:0:0:root:/root:/bin/bash",
              "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
              "sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin"]
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
    first = pattern.split()[0]
    expanded = first.replace("%%", "\0").replace("%h", home).replace("%u", user).replace(
        "\0", "%")
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
