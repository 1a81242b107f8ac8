"""Public key parsing and the fingerprint, checked against ssh-keygen itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from rescue import RescueError
from rescue.linux.keys import parse_public_key

BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"  # 32 x 0x01


@pytest.mark.parametrize("key_type", ["ed25519", "rsa", "ecdsa"])
def test_fingerprint_matches_ssh_keygen(tmp_path: Path, key_type: str) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen missing: apt-get install openssh-client")
    private = tmp_path / "k"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "me@x y", "-f", str(private)],
        check=True,
    )
    line = (tmp_path / "k.pub").read_text().strip()
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    key = parse_public_key(line)
    assert key.fingerprint == expected
    assert key.line == line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not an OpenSSH public key"),
        ('command="sh" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x', "not an OpenSSH public key"),
        ("ssh-ed25519 !!!notbase64", "does not decode"),
        (
            f"ssh-rsa {BLOB} x",
            "holds a 'ssh-ed25519' key",
        ),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x\nssh-rsa AAAA y", "single line"),
        (
            f"ssh-ed25519 {BLOB} x\x1b[2J",
            "control characters",
        ),
    ],
)
def test_refuses_what_is_not_one_plain_key(text: str, message: str) -> None:
    with pytest.raises(RescueError, match=message):
        parse_public_key(text)
