"""The rescue SSM document: size, parameter patterns, and its shell script run for real.

The script runs under bash exactly as SSM would run it after substituting the parameters, with
a stand-in agent (a zipapp that prints its arguments) so that what reaches the agent is seen.
"""

from __future__ import annotations

import importlib.util
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.logic.rescue_contract import (
    EXIT_PYTHON_UNSUITABLE,
    PUBLIC_KEY_PATTERN,
    PYTHON_UNSUITABLE,
    unsuitable_python_message,
)
from stacks.rescue_document import (
    LARGEST_VALUES,
    MAX_CONTENT_BYTES,
    RESERVE_BYTES,
    SIZE_BUDGET,
    TARGET_PATTERN,
    UNPACK,
    build_zipapp_bytes,
    content_size,
    document_content,
    pack,
    size_report,
    size_with_values,
    unpack,
)
from tests.support.synth import Synth

DANGEROUS = set("'\"\\$`")
TOOLS = ("bash", "mktemp", "rm", "python3")


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
    assert set(deployed["parameters"]) == {"Platform", "Target", "PublicKey"}
    # The real agent is in it, not a stand-in.
    assert deployed == document_content(build_zipapp_bytes())


# The longest value each parameter admits (stacks/rescue_document.py says which).
LARGEST = LARGEST_VALUES


def test_document_with_its_largest_parameter_values_leaves_room_for_the_agent_to_grow(
    synth: Synth,
) -> None:
    # AWS: a Command document's content may be at most 64 KB, and the parameter values given at
    # run time count toward it (SSM quotas). Counted as CloudFormation sends it (compact JSON),
    # with every {{ Name }} replaced by its largest value, plus the values themselves once.
    (document,) = (
        r["Properties"] for r in synth.resources.values() if r["Type"] == "AWS::SSM::Document"
    )
    content = document["Content"]
    assert set(LARGEST) == set(content["parameters"])
    for name, value in LARGEST.items():
        assert ssm_accepts(content, name, value), name
        assert not ssm_accepts(content, name, value + "x"), f"{name} admits a longer value"
    rendered = json.loads(json.dumps(content))
    rendered["mainSteps"][0]["inputs"]["runCommand"] = ssm_render(content, LARGEST).split("\n")
    size = content_size(rendered) + sum(len(v) for v in LARGEST.values())
    headroom = SIZE_BUDGET - size
    print(
        f"rescue document: {content_size(content)} bytes, {size} with its largest values; "
        f"{headroom} under {SIZE_BUDGET}, {MAX_CONTENT_BYTES - size} under {MAX_CONTENT_BYTES}"
    )
    assert size_with_values(content, LARGEST) == size  # as `python -m stacks.rescue_document` says
    assert size <= SIZE_BUDGET
    assert headroom >= RESERVE_BYTES, (
        f"{size} bytes leaves {headroom} under {SIZE_BUDGET}, and {RESERVE_BYTES} are kept in "
        "hand. Almost all of the document is the agent (rescue/, minified, xz, base85): run "
        "`.venv/bin/python -m stacks.rescue_document` to see each module's share, then shrink "
        "what grew (long messages or tables, code that is no longer needed) or move rarely "
        "needed parts out of the agent; rescue/build.py and pack() say how it is packed."
    )


def ssm_accepts(content: dict[str, Any], name: str, value: str) -> bool:
    spec = content["parameters"][name]
    if "allowedValues" in spec:
        return value in spec["allowedValues"]
    return re.search(spec["allowedPattern"], value) is not None


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


def test_the_local_engine_declares_the_documents_parameters(content: dict[str, Any]) -> None:
    from local.stack_twin import document_stand_in

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


def test_script_parses_with_bash(content: dict[str, Any], tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("\n".join(content["mainSteps"][0]["inputs"]["runCommand"]))
    subprocess.run(["bash", "-n", str(script)], check=True, env={**os.environ})


OLD_PYTHONS = Path("/root/.pyenv/versions")


def pyenv_python(version: str) -> Path:
    found = sorted(OLD_PYTHONS.glob(f"{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"no Python {version} under {OLD_PYTHONS} to run the document's script with")
    return found[-1]


def test_an_old_python3_stops_the_document_with_its_own_reason(sandbox: dict[str, Path]) -> None:
    # CentOS/RHEL 7's python3 is 3.6: the agent cannot import there, so the script says so
    # in one JSON report the workflow recognizes, before unpacking anything.
    python = pyenv_python("3.6")
    (sandbox["bin"] / "python3").unlink()
    (sandbox["bin"] / "python3").symlink_to(python)
    content = document_content(build_zipapp_bytes())
    result = run_script(
        content, sandbox, {"Platform": "linux", "Target": "/", "PublicKey": ed25519_key()}
    )
    version = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
    found = subprocess.run(
        [str(python), "-c", version], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert result.returncode == EXIT_PYTHON_UNSUITABLE
    assert json.loads(result.stdout) == {
        "ok": False,
        "reason": PYTHON_UNSUITABLE,
        "error": unsuitable_python_message(found),
    }
    assert list(sandbox["tmp"].iterdir()) == [], "nothing is unpacked on an unsuitable python3"


def test_no_python3_stops_the_document_with_its_own_reason(sandbox: dict[str, Path]) -> None:
    (sandbox["bin"] / "python3").unlink()
    result = run_script(
        document_content(fake_agent()),
        sandbox,
        {"Platform": "linux", "Target": "/", "PublicKey": ed25519_key()},
    )
    assert result.returncode == EXIT_PYTHON_UNSUITABLE
    assert json.loads(result.stdout)["error"] == unsuitable_python_message("missing")


def test_the_real_agent_unpacks_and_runs_on_python37(sandbox: dict[str, Path]) -> None:
    # Amazon Linux 2's python3 is 3.7, the oldest the document lets through: the packed agent
    # must unpack and run there (it refuses this key, whose data is no ed25519 key, at once).
    (sandbox["bin"] / "python3").unlink()
    (sandbox["bin"] / "python3").symlink_to(pyenv_python("3.7"))
    result = run_script(
        document_content(build_zipapp_bytes()),
        sandbox,
        {
            "Platform": "linux",
            "Target": "vol-0123456789abcdef0",
            "PublicKey": "ssh-ed25519 " + "A" * 68,
        },
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 1 and report["ok"] is False, result.stderr
    assert "key" in report["error"] and "reason" not in report, report


@pytest.mark.parametrize("shipped", [False, True], ids=["source", "minified"])
def test_the_agent_uses_nothing_newer_than_the_python_the_document_admits(
    shipped: bool, tmp_path: Path
) -> None:
    # Where no old interpreter is installed, vermin reads each module's syntax and stdlib use:
    # in rescue/, and in the minified modules the document ships (the minifier prints the code
    # anew, f-strings included).
    # vermin's own main, not its console script, whose shebang may name another venv's python.
    assert importlib.util.find_spec("vermin"), "vermin is in requirements-dev.txt"
    vermin = "import sys; from vermin import main; sys.exit(main())"
    from lambdas.logic.rescue_contract import MIN_PYTHON

    target = ".".join(map(str, MIN_PYTHON))
    checked = "rescue/"
    if shipped:
        zipfile.ZipFile(io.BytesIO(build_zipapp_bytes())).extractall(tmp_path)
        checked = str(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            vermin,
            "--no-tips",
            "--eval-annotations",
            "--violations",
            f"-t={target}-",
            checked,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_packed_agent_is_plain_text_that_ssm_and_json_leave_alone() -> None:
    # The minified agent's behaviour is tests/rescue/test_agent_minified.py's; here, its packing:
    # base85 whose { and } are swapped out, so that nothing in it reads as an SSM {{ }}
    # reference, and without quote, backslash or control character for JSON to escape.
    zipapp = build_zipapp_bytes()
    packed = pack(zipapp)
    assert unpack(packed) == zipapp
    assert not set(packed) & set('{}"\\\n\r\t '), sorted(set(packed) & set('{}"\\ '))
    assert json.dumps(packed) == f'"{packed}"'
    script = "\n".join(document_content(zipapp)["mainSteps"][0]["inputs"]["runCommand"])
    assert set(re.findall(r"\{\{.*?\}\}", script)) == {
        "{{ Platform }}",
        "{{ Target }}",
        "{{ PublicKey }}",
    }
    # Every byte value, so that base85 has { and } to swap: the script's own unpacking reads it.
    every = bytes(range(256)) * 4
    unpacked = subprocess.run(
        [sys.executable, "-c", UNPACK],
        input=pack(every).encode() + b"\n",
        capture_output=True,
        check=True,
    ).stdout
    assert unpacked == unpack(pack(every)) == every


def test_the_size_report_names_every_module() -> None:
    import rescue.build

    report = size_report()
    shipped = [
        path.relative_to(rescue.build.PACKAGE_DIR.parent).as_posix()
        for path in rescue.build.agent_sources()
    ]
    assert "rescue/linux/authorized_keys.py" in shipped  # the scan found the packages
    assert [module for module in shipped if module not in report] == []
    assert f"{content_size(document_content(build_zipapp_bytes()))} bytes" in report


def test_the_zipapp_holds_subpackages_and_is_reproducible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rescue.build

    package = tmp_path / "src" / "rescue"
    (package / "windows").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Agent."""\n')
    (package / "__main__.py").write_text(
        "import sys\nfrom rescue.windows.ec2launch import NAME  # a subpackage\n"
        "def main():\n    print(NAME)\n    return 0\n"
    )
    (package / "windows" / "__init__.py").write_text("")
    (package / "windows" / "ec2launch.py").write_text('NAME = "v2"  # comment\n')
    (package / "build.py").write_text("raise SystemExit('build-time only')\n")
    monkeypatch.setattr(rescue.build, "PACKAGE_DIR", package)
    pyz = rescue.build.build_zipapp(tmp_path / "a.pyz")
    names = zipfile.ZipFile(pyz).namelist()
    assert "rescue/windows/ec2launch.py" in names and "rescue/build.py" not in names
    ran = subprocess.run([sys.executable, str(pyz)], capture_output=True, text=True, check=True)
    assert ran.stdout == "v2\n"
    assert rescue.build.build_zipapp(tmp_path / "b.pyz").read_bytes() == pyz.read_bytes()
