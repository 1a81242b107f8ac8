"""A real sshd on 127.0.0.1 that reads one authorized_keys file: the login proof of the local
acceptance run and of the agent's tests (root logs in with that file; no account is made)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class SshdError(RuntimeError):
    """sshd did not start listening; the message holds what it said."""


def start_sshd(
    authorized_keys: Path, directory: Path, *, extra: str = "", first: str = ""
) -> tuple[subprocess.Popen[bytes], int]:
    """Start sshd and return it and its port once it listens. `first` goes before the
    config's lines, `extra` after them (sshd takes the first value of most keywords)."""
    base = Path(tempfile.mkdtemp(prefix="sshd-", dir=directory))
    host_key = base / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = base / "sshd_config"
    config.write_text(
        f"{first}ListenAddress 127.0.0.1:{port}\nHostKey {host_key}\nPidFile none\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nAuthorizedKeysFile {authorized_keys}\n{extra}"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    log = base / "sshd.log"  # a file, not a pipe: a pipe nobody reads would stall sshd
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [shutil.which("sshd") or "sshd", "-D", "-e", "-f", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as client:
            if client.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        if process.poll() is not None:
            raise SshdError(
                f"the local sshd exited ({process.returncode}): "
                f"{log.read_text(errors='replace').strip()}"
            )
        time.sleep(0.05)
    stop_sshd(process)
    raise SshdError("the local sshd did not listen within 10 s")


def stop_sshd(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)
