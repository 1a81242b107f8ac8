"""The rescue SSM document: size, parameter patterns, and its shell script run for real.

The script runs under bash exactly as SSM would run it after substituting the parameters, with
a stand-in agent (a zipapp that prints its arguments) so that what reaches the agent is seen.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import Synth
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.rescue_document import (
    DEVICE_NAME_PATTERN,
    MAX_CONTENT_BYTES,
    PUBLIC_KEY_PATTERN,
    TARGET_PATTERN,
    build_zipapp_bytes,
    content_size,
    document_content,
)

DANGEROUS = set("'\"\\$`")
TOOLS = ("bash", "mktemp", "rm", "base64", "python3")


def fake_agent() -> bytes:
    """A zipapp that prints its argv as JSON and exits with $FAKE_EXIT."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "__main__.py",
            "import json, os, sys\n"
            "print(json.dumps(sys.argv[1:]))\n"
            "sys.exit(int(os.environ.get('FAKE_EXIT', '0')))\n",
        )
    return buffer.getvalue()


def ssm_render(content: dict[str, Any], parameters: dict[str, str]) -> str:
    """What SSM does before running the step: check each value, fill {{ Name }}."""
    declared = content["parameters"]
    values = {name: parameters.get(name, spec.get("default")) for name, spec in declared.items()}
    for name, value in values.items():
        spec = declared[name]
        assert value is not None, f"{name} is required"
        if "allowedValues" in spec:
            assert value in spec["allowedValues"], (name, value)
        if "allowedPattern" in spec:
            assert re.search(spec["allowedPattern"], value), (name, value)
    lines = content["mainSteps"][0]["inputs"]["runCommand"]
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(values[m.group(1)]), "\n".join(lines))


@pytest.fixture(scope="module")
def content() -> dict[str, Any]:
    return document_content(fake_agent())


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """A PATH with only the tools the script needs (so ntfs-3g's presence is ours to decide)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        # python3 is this interpreter itself: PATH may hold a shim that needs more tools.
        found = str(Path(sys.executable).resolve()) if tool == "python3" else shutil.which(tool)
        assert found, f"{tool} is needed by the rescue script"
        (bindir / tool).symlink_to(found)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    return {"bin": bindir, "tmp": tmpdir, "root": tmp_path}


def run_script(
    content: dict[str, Any],
    sandbox: dict[str, Path],
    parameters: dict[str, str],
    fake_exit: int = 0,
) -> subprocess.CompletedProcess[str]:
    script = sandbox["root"] / "_script.sh"
    script.write_text(ssm_render(content, parameters), encoding="utf-8")
    env = {"PATH": str(sandbox["bin"]), "TMPDIR": str(sandbox["tmp"]), "FAKE_EXIT": str(fake_exit)}
    return subprocess.run(
        [str(sandbox["bin"] / "bash"), str(script)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def ed25519_key(comment: str = "reset-access@i-0123456789abcdef0") -> str:
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode()} {comment}"


def test_document_is_a_command_document_under_ssms_size_limit(synth: Synth) -> None:
    (document,) = (
        r["Properties"] for r in synth.resources.values() if r["Type"] == "AWS::SSM::Document"
    )
    assert document["DocumentType"] == "Command"
    assert document["UpdateMethod"] == "NewVersion"
    deployed = document["Content"]
    assert deployed["schemaVersion"] == "2.2"
    assert deployed["mainSteps"][0]["action"] == "aws:runShellScript"
    assert set(deployed["parameters"]) == {"Platform", "Target", "PublicKey", "DeviceName"}
    size = content_size(deployed)
    assert size < MAX_CONTENT_BYTES, f"{size} bytes; SSM allows {MAX_CONTENT_BYTES}"
    # The real agent is in it, not a stand-in.
    assert deployed == document_content(build_zipapp_bytes())


def test_linux_offline_passes_volume_and_key_to_the_agent(
    content: dict[str, Any], sandbox: dict[str, Path]
) -> None:
    key = ed25519_key()
    result = run_script(
        content, sandbox, {"Platform": "linux", "Target": "vol-0123456789abcdef0", "PublicKey": key}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        "--platform",
        "linux",
        "--volume-id",
        "vol-0123456789abcdef0",
        "--public-key",
        key,
    ]
    assert list(sandbox["tmp"].iterdir()) == [], "the temporary folder must be removed"


@pytest.mark.parametrize("platform", ["linux", "windows"])
def test_the_attachment_device_name_reaches_the_agent(
    content: dict[str, Any], sandbox: dict[str, Path], platform: str
) -> None:
    # A Xen helper shows /dev/sdf as /dev/xvdf: the agent finds it only by this name.
    (sandbox["bin"] / "ntfs-3g").write_text("#!/bin/sh\n")
    (sandbox["bin"] / "ntfs-3g").chmod(0o755)
    key = ed25519_key() if platform == "linux" else ""
    result = run_script(content, sandbox, {"Platform": platform, "Target": "vol-0123456789abcdef0",
                                           "PublicKey": key, "DeviceName": "/dev/sdf"})
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    assert argv[argv.index("--device-name") + 1] == "/dev/sdf"


def test_the_local_engine_declares_the_documents_parameters(content: dict[str, Any]) -> None:
    from local.engine import document_stand_in

    assert set(document_stand_in()["parameters"]) == set(content["parameters"])


def test_online_targets_the_root_and_windows_passes_no_key(
    content: dict[str, Any], sandbox: dict[str, Path]
) -> None:
    (sandbox["bin"] / "ntfs-3g").write_text("#!/bin/sh\n")
    (sandbox["bin"] / "ntfs-3g").chmod(0o755)
    result = run_script(content, sandbox, {"Platform": "windows", "Target": "/"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["--platform", "windows", "--root", "/"]
    assert "ntfs-3g" not in result.stderr


def test_the_agents_exit_status_is_the_commands(
    content: dict[str, Any], sandbox: dict[str, Path]
) -> None:
    result = run_script(
        content, sandbox, {"Platform": "linux", "Target": "/", "PublicKey": ed25519_key()}, 3
    )
    assert result.returncode == 3
    assert list(sandbox["tmp"].iterdir()) == []


@pytest.mark.parametrize("installs", [True, False])
def test_windows_installs_ntfs3g_when_missing(
    content: dict[str, Any], sandbox: dict[str, Path], installs: bool
) -> None:
    log = sandbox["root"] / "apt.log"
    (sandbox["bin"] / "apt-get").write_text(
        "#!/bin/bash\n"
        f'echo "$*" >> {log}\n'
        + (f'[ "${{@: -1}}" = ntfs-3g ] && : > {sandbox["bin"]}/ntfs-3g\n' if installs else "")
        + ("exit 0\n" if installs else "exit 100\n")
    )
    (sandbox["bin"] / "apt-get").chmod(0o755)
    result = run_script(
        content, sandbox, {"Platform": "windows", "Target": "vol-0123456789abcdef0"}
    )
    calls = log.read_text().splitlines()
    assert any(c.endswith("update") for c in calls)
    assert "rescue: ntfs-3g is missing; installing it with apt-get" in result.stderr
    assert ("could not install ntfs-3g" in result.stderr) is not installs
    if installs:
        assert any(c.endswith("install ntfs-3g") for c in calls)
    # Either way the agent runs and reports (it names the missing filesystem support itself).
    assert json.loads(result.stdout)[:2] == ["--platform", "windows"]


@pytest.mark.parametrize(
    "key",
    [
        ed25519_key(),
        ed25519_key("a comment with spaces"),
        ed25519_key("").rstrip(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode(),
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + " ops@example.com",
        "",
    ],
    # Keys are random: fixed IDs keep the collection identical across xdist workers.
    ids=["ed25519", "ed25519-comment-with-spaces", "ed25519-no-comment", "rsa", "ecdsa", "empty"],
)
def test_public_key_pattern_admits_openssh_keys(key: str) -> None:
    assert re.search(PUBLIC_KEY_PATTERN, key), key


@pytest.mark.parametrize(
    "value",
    [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 x'; rm -rf / #",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 $(reboot)",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 `reboot`",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 a\\b",
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 "quoted"',
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6 a\nssh-rsa AAAAB3NzaC1yc2EAAAADAQAB b",
        'command="reboot" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnRLSV6',
        "ssh-ed25519",
        "'",
    ],
)
def test_public_key_pattern_refuses_what_could_leave_the_quotes(value: str) -> None:
    assert not re.search(PUBLIC_KEY_PATTERN, value)


@given(st.text())
@settings(max_examples=300)
def test_nothing_the_key_pattern_admits_can_break_the_quoting(value: str) -> None:
    if re.search(PUBLIC_KEY_PATTERN, value):
        assert not DANGEROUS & set(value), value
        assert "\n" not in value.rstrip("\n"), value


@given(st.from_regex(PUBLIC_KEY_PATTERN))
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_admitted_key_reaches_the_agent_unchanged(
    content: dict[str, Any], sandbox: dict[str, Path], key: str
) -> None:
    result = run_script(content, sandbox, {"Platform": "linux", "Target": "/", "PublicKey": key})
    assert result.returncode == 0, result.stderr
    argv = json.loads(result.stdout)
    if key:
        assert argv[-2:] == ["--public-key", key]
    else:
        assert "--public-key" not in argv


@pytest.mark.parametrize(
    ("value", "admitted"),
    [
        ("vol-0123456789abcdef0", True),
        ("vol-01234567", True),
        ("/", True),
        ("vol-0123456789ABCDEF0", False),
        ("vol-0123", False),
        ("/mnt", False),
        ("", False),
        ("vol-01234567;reboot", False),
    ],
)
def test_target_pattern(value: str, admitted: bool) -> None:
    assert bool(re.search(TARGET_PATTERN, value)) is admitted


@pytest.mark.parametrize(
    ("value", "admitted"),
    [("/dev/sdf", True), ("/dev/xvdf", True), ("", True), ("/dev/sda", False),
     ("sdf", False), ("/dev/sdf1", False), ("/dev/sdf'", False), ("/dev/nvme1n1", False)],
)
def test_device_name_pattern(value: str, admitted: bool) -> None:
    assert bool(re.search(DEVICE_NAME_PATTERN, value)) is admitted


def test_script_parses_with_bash(content: dict[str, Any], tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("\n".join(content["mainSteps"][0]["inputs"]["runCommand"]))
    subprocess.run(["bash", "-n", str(script)], check=True, env={**os.environ})
