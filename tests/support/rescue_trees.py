"""Linux root trees for the agent to repair: just the files it reads."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

OS_RELEASE = 'NAME="Amazon Linux"\nID="amzn"\nVERSION_ID="2023"\n'


def write_linux_tree(
    root: Path,
    users: Iterable[tuple[str, int]] = (("ec2-user", 1000),),
    sshd_config: str | None = None,
    files: dict[str, str] | None = None,
    os_release: str = OS_RELEASE,
) -> Path:
    """A minimal volume: os-release, passwd/group with root, the users and system accounts."""
    (root / "etc" / "ssh").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "os-release").write_text(os_release)
    passwd = [
        "root:x:0:0:root:/root:/bin/bash",
        "sshd:x:74:74::/usr/share/empty.sshd:/sbin/nologin",
    ]
    group = ["root:x:0:", "wheel:x:10:"]
    (root / "root").mkdir(mode=0o550, exist_ok=True)
    for name, uid in users:
        passwd.append(f"{name}:x:{uid}:{uid}::/home/{name}:/bin/bash")
        group.append(f"{name}:x:{uid}:")
        home = root / "home" / name
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        if os.geteuid() == 0:
            os.chown(home, uid, uid)
    passwd.append("nobody:x:65534:65534::/:/sbin/nologin")
    (root / "etc" / "passwd").write_text("\n".join(passwd) + "\n")
    (root / "etc" / "group").write_text("\n".join(group) + "\n")
    if sshd_config is not None:
        (root / "etc" / "ssh" / "sshd_config").write_text(sshd_config)
    for relative, content in (files or {}).items():
        path = root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def new_key(directory: Path, name: str = "key") -> tuple[Path, str]:
    """A fresh ed25519 key pair made now (never committed): (private key path, public line)."""
    private = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@test", "-f", str(private)],
        check=True,
    )
    return private, (directory / f"{name}.pub").read_text().strip()


def fingerprint(public_key_file: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-lf", str(public_key_file)], check=True, capture_output=True, text=True
    )
    return out.stdout.split()[1]
