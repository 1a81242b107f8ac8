"""EC2Launch v1 on directory trees: LaunchConfig.json, and the one-shot startup script that
makes Windows run `InitializeInstance.ps1 -Schedule` at the next boot."""

from __future__ import annotations

import codecs
import json
import re
import shutil
from pathlib import Path

import pytest

from rescue.windows import ConfigParseError, WindowsRescueError, enable_password_generation
from rescue.windows.ec2launch_v1 import SCRIPTS_CSE, SCRIPTS_TOOL
from tests.support.windows_fixtures import (
    GPT_INI_EXISTING,
    GPT_INI_REL,
    LAUNCH_CONFIG,
    LAUNCH_CONFIG_REL,
    SCRIPTS_INI_EXISTING,
    SCRIPTS_INI_REL,
    STARTUP_REL,
    enable_on,
    encode,
    make_tree,
    snapshot,
    write,
)

BAK = ".reset-access.bak"
CMD_REL = f"{STARTUP_REL}/ResetAccess-EC2Launch-Init.cmd"
AFTER_GPT_REL = f"{STARTUP_REL}/ResetAccess-EC2Launch-Init.gpt.ini"
AFTER_SCRIPTS_REL = f"{STARTUP_REL}/ResetAccess-EC2Launch-Init.scripts.ini"
SCRIPTS_GROUP = f"[{SCRIPTS_CSE}{SCRIPTS_TOOL}]"


def utf16(text: str) -> bytes:
    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")


def run_startup_script_as_windows_would(root: Path) -> None:
    """What the .cmd does after scheduling EC2Launch: put the policy files back, go away."""
    startup = root / STARTUP_REL
    (root / GPT_INI_REL).write_bytes((startup / "ResetAccess-EC2Launch-Init.gpt.ini").read_bytes())
    after_scripts = startup / "ResetAccess-EC2Launch-Init.scripts.ini"
    if after_scripts.exists():
        (root / SCRIPTS_INI_REL).write_bytes(after_scripts.read_bytes())
        after_scripts.unlink()
    else:
        (root / SCRIPTS_INI_REL).unlink()
    (startup / "ResetAccess-EC2Launch-Init.gpt.ini").unlink()
    (startup / "ResetAccess-EC2Launch-Init.cmd").unlink()


@pytest.mark.parametrize(
    ("encoding", "newline"), [("utf-16-le-bom", "\r\n"), ("utf-8-sig", "\r\n"), ("utf-8", "\n")]
)
def test_fresh_volume_gets_random_password_and_a_startup_script(
    tmp_path: Path, encoding: str, newline: str
) -> None:
    original = encode(LAUNCH_CONFIG, encoding, newline)
    before, result, after = enable_on(tmp_path, "ec2launch-v1", original)
    expected = LAUNCH_CONFIG.replace('"DoNothing"', '"Random"')
    assert after[LAUNCH_CONFIG_REL] == encode(expected, encoding, newline)
    assert after[LAUNCH_CONFIG_REL + BAK] == original
    assert after[SCRIPTS_INI_REL] == utf16(
        "[Startup]\r\n0CmdLine=ResetAccess-EC2Launch-Init.cmd\r\n0Parameters=\r\n"
    )
    assert (
        after[GPT_INI_REL]
        == f"[General]\r\ngPCMachineExtensionNames={SCRIPTS_GROUP}\r\nVersion=1\r\n".encode()
    )
    assert after[AFTER_GPT_REL] == b"[General]\r\nVersion=2\r\n"
    assert AFTER_SCRIPTS_REL not in after  # there was no scripts.ini: the script deletes it
    assert sorted(set(after) - set(before)) == sorted(
        [LAUNCH_CONFIG_REL + BAK, SCRIPTS_INI_REL, GPT_INI_REL, AFTER_GPT_REL, CMD_REL]
    )
    assert [k for k in before if before[k] != after[k]] == [LAUNCH_CONFIG_REL]

    assert result["agent"] == "ec2launch-v1"
    assert result["method"] == "ec2launch-v1-group-policy-startup-script"
    assert result["changed_files"] == [LAUNCH_CONFIG_REL]
    assert result["created_files"] == [
        "Windows/System32/GroupPolicy",
        "Windows/System32/GroupPolicy/Machine",
        "Windows/System32/GroupPolicy/Machine/Scripts",
        STARTUP_REL,
        CMD_REL,
        AFTER_GPT_REL,
        SCRIPTS_INI_REL,
        GPT_INI_REL,
    ]
    assert result["backups"] == [LAUNCH_CONFIG_REL + BAK]
    assert any("Group Policy" in limit for limit in result["limits"])
    assert "version 0 -> 1" in " ".join(result["notes"])


def test_the_startup_script(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    enable_password_generation(tmp_path)
    data = (tmp_path / CMD_REL).read_bytes()
    text = data.decode("ascii")  # cmd.exe reads the OEM code page: ASCII only
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[0] == "@echo off"
    assert any(
        re.fullmatch(
            r'"%SystemRoot%\\System32\\WindowsPowerShell\\v1\.0\\powershell\.exe" .*-File '
            r'"%ProgramData%\\Amazon\\EC2-Windows\\Launch\\Scripts\\InitializeInstance\.ps1" '
            r'-Schedule >>"%RA_LOG%" 2>&1',
            line,
        )
        for line in lines
    )
    assert (
        '"%SystemRoot%\\System32\\schtasks.exe" /Run /TN '
        '"Amazon Ec2 Launch - Instance Initialization" >>"%RA_LOG%" 2>&1' in lines
    )
    # Once only: a marker per installation, checked before anything runs.
    marker = next(line for line in lines if line.startswith('set "RA_MARK='))
    assert re.fullmatch(
        r'set "RA_MARK=%SystemRoot%\\Temp\\ResetAccess-EC2Launch-Init\.'
        r'[0-9a-f]{16}\.done"',
        marker,
    )
    assert (
        lines.index('if exist "%RA_MARK%" goto restore')
        < lines.index('echo %DATE% %TIME% ran>"%RA_MARK%"')
        < next(
            i
            for i, line in enumerate(lines)
            if "InitializeInstance.ps1" in line and "-File" in line
        )
    )
    # Then the policy files go back and the script deletes itself, last.
    assert (
        'copy /y "%~dp0ResetAccess-EC2Launch-Init.gpt.ini" "%RA_GP%\\gpt.ini" '
        '>>"%RA_LOG%" 2>&1' in lines
    )
    assert 'del /f /q "%RA_GP%\\Machine\\Scripts\\scripts.ini" >>"%RA_LOG%" 2>&1' in lines
    assert [line for line in lines if line][-1] == '(goto) 2>nul & del /f /q "%~f0"'


def test_existing_local_policy_is_merged_and_put_back(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    gpt = write(tmp_path, GPT_INI_REL, GPT_INI_EXISTING.encode())
    scripts = write(tmp_path, SCRIPTS_INI_REL, utf16(SCRIPTS_INI_EXISTING))
    write(tmp_path, f"{STARTUP_REL}/inventory.cmd", b"@echo inventory\r\n")
    original_gpt, original_scripts = gpt.read_bytes(), scripts.read_bytes()

    result = enable_password_generation(tmp_path)

    registry = "[{35378EAC-683F-11D2-A89A-0000F87571E3}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]"
    assert (
        gpt.read_bytes()
        == GPT_INI_EXISTING.replace(registry, registry + SCRIPTS_GROUP)
        .replace("65537", "65538")
        .encode()
    )
    assert scripts.read_bytes() == utf16(
        SCRIPTS_INI_EXISTING + "1CmdLine=ResetAccess-EC2Launch-Init.cmd\r\n1Parameters=\r\n"
    )
    assert (tmp_path / (GPT_INI_REL + BAK)).read_bytes() == original_gpt
    assert (tmp_path / (SCRIPTS_INI_REL + BAK)).read_bytes() == original_scripts
    assert (tmp_path / AFTER_SCRIPTS_REL).read_bytes() == original_scripts
    assert (tmp_path / AFTER_GPT_REL).read_bytes() == GPT_INI_EXISTING.replace(
        "65537", "65539"
    ).encode()
    assert result["changed_files"] == [LAUNCH_CONFIG_REL, SCRIPTS_INI_REL, GPT_INI_REL]
    assert "version 65537 -> 65538" in " ".join(result["notes"])

    run_startup_script_as_windows_would(tmp_path)
    assert scripts.read_bytes() == original_scripts
    assert gpt.read_bytes() == GPT_INI_EXISTING.replace("65537", "65539").encode()
    assert (tmp_path / f"{STARTUP_REL}/inventory.cmd").read_bytes() == b"@echo inventory\r\n"


def test_after_its_run_nothing_of_the_script_is_left(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    enable_password_generation(tmp_path)
    run_startup_script_as_windows_would(tmp_path)
    assert sorted(p.name for p in (tmp_path / STARTUP_REL).iterdir()) == []
    assert (tmp_path / GPT_INI_REL).read_bytes() == b"[General]\r\nVersion=2\r\n"
    assert not (tmp_path / SCRIPTS_INI_REL).exists()


def test_policy_folders_in_other_letter_cases_are_used(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    write(tmp_path, "Windows/System32/grouppolicy/GPT.INI", GPT_INI_EXISTING.encode())
    write(
        tmp_path,
        "Windows/System32/grouppolicy/MACHINE/scripts/Scripts.ini",
        utf16(SCRIPTS_INI_EXISTING),
    )
    (tmp_path / "Windows/System32/grouppolicy/MACHINE/scripts/startup").mkdir()

    result = enable_password_generation(tmp_path)

    assert result["changed_files"] == [
        LAUNCH_CONFIG_REL,
        "Windows/System32/grouppolicy/MACHINE/scripts/Scripts.ini",
        "Windows/System32/grouppolicy/GPT.INI",
    ]
    assert result["created_files"] == [
        "Windows/System32/grouppolicy/MACHINE/scripts/startup/ResetAccess-EC2Launch-Init.cmd",
        "Windows/System32/grouppolicy/MACHINE/scripts/startup/ResetAccess-EC2Launch-Init.gpt.ini",
        "Windows/System32/grouppolicy/MACHINE/scripts/startup/"
        "ResetAccess-EC2Launch-Init.scripts.ini",
    ]
    assert not (tmp_path / "Windows/System32/GroupPolicy").exists()


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    enable_password_generation(tmp_path)
    first = snapshot(tmp_path)
    again = enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == first
    assert again["changed"] is False
    assert "earlier run is in place" in " ".join(again["notes"])


def test_an_interrupted_earlier_run_is_completed(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    enable_password_generation(tmp_path)
    (tmp_path / CMD_REL).unlink()
    first_scripts = (tmp_path / SCRIPTS_INI_REL).read_bytes()

    result = enable_password_generation(tmp_path)

    assert (tmp_path / CMD_REL).exists()
    assert (tmp_path / SCRIPTS_INI_REL).read_bytes() == first_scripts  # not listed twice
    assert b"Version=2\r\n" in (tmp_path / GPT_INI_REL).read_bytes()
    # It cannot tell the Scripts extension was its own: it stays listed, which is harmless.
    assert (
        (tmp_path / AFTER_GPT_REL).read_bytes()
        == f"[General]\r\ngPCMachineExtensionNames={SCRIPTS_GROUP}\r\nVersion=3\r\n".encode()
    )
    assert result["changed"] is True


def test_random_already_set_still_gets_the_startup_script(tmp_path: Path) -> None:
    make_tree(
        tmp_path, "ec2launch-v1", config=encode(LAUNCH_CONFIG.replace('"DoNothing"', '"random"'))
    )
    result = enable_password_generation(tmp_path)
    assert result["changed_files"] == [] and CMD_REL in result["created_files"]
    assert "already has adminPasswordType Random" in " ".join(result["notes"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (b'{"adminPasswordType": "Random",', "not valid JSON"),
        (b'["adminPasswordType"]', "not a JSON object"),
        (b"", "not valid JSON"),
    ],
)
def test_bad_launch_config_is_refused_and_nothing_changes(
    tmp_path: Path, config: bytes, message: str
) -> None:
    make_tree(tmp_path, "ec2launch-v1", config=config)
    before = snapshot(tmp_path)
    with pytest.raises(ConfigParseError, match=message):
        enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "Windows/System32/GroupPolicy").exists()


def test_bad_gpt_ini_is_refused_before_anything_changes(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    write(tmp_path, GPT_INI_REL, b"[General]\r\nVersion=twelve\r\n")
    before = snapshot(tmp_path)
    with pytest.raises(ConfigParseError, match="Version='twelve'"):
        enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before


def test_without_its_scripts_ec2launch_v1_cannot_run(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1", programs=False)
    before = snapshot(tmp_path)
    with pytest.raises(WindowsRescueError, match=r"InitializeInstance\.ps1 is missing"):
        enable_password_generation(tmp_path)
    assert snapshot(tmp_path) == before


def test_not_the_system_partition(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    shutil.rmtree(tmp_path / "Windows")
    with pytest.raises(WindowsRescueError, match="no Windows directory"):
        enable_password_generation(tmp_path)


def test_result_is_json_and_names_no_secret(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        "ec2launch-v1",
        config=encode(
            LAUNCH_CONFIG.replace('"DoNothing"', '"Specify"').replace(
                '"adminPassword":  ""', '"adminPassword":  "Pa55w0rd!"'
            )
        ),
    )
    result = enable_password_generation(tmp_path)
    assert "Pa55w0rd" not in json.dumps(result)
    edited = json.loads((tmp_path / LAUNCH_CONFIG_REL).read_text())
    assert edited["adminPasswordType"] == "Random"
