"""EC2Launch v1: adminPasswordType Random in LaunchConfig.json, and a one-shot local Group
Policy startup script that schedules EC2Launch v1 initialization at the next boot.

Design, AWS sources and limits: docs/rescue-windows.md.
"""

from __future__ import annotations

import codecs
import json
import re
import secrets
from pathlib import Path
from typing import List, Optional, Tuple

from . import json_splice as js
from .encoding import Text, decode_text
from .errors import ConfigParseError, WindowsRescueError
from .ini import Ini
from .plan import NEXT_BOOT_NOTE, Action, AgentPlan, edit_action
from .volume import Volume, read_config

NAME = "ec2launch-v1"
CONFIG = "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json"
INITIALIZE_INSTANCE = "ProgramData/Amazon/EC2-Windows/Launch/Scripts/InitializeInstance.ps1"
TASK_NAME = "Amazon Ec2 Launch - Instance Initialization"
GROUP_POLICY = "Windows/System32/GroupPolicy"
STARTUP_DIR = GROUP_POLICY + "/Machine/Scripts/Startup"
STARTUP_SCRIPT = "ResetAccess-EC2Launch-Init.cmd"
AFTER_GPT_INI = "ResetAccess-EC2Launch-Init.gpt.ini"
AFTER_SCRIPTS_INI = "ResetAccess-EC2Launch-Init.scripts.ini"
SCRIPTS_CSE = "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}"  # Group Policy Scripts extension
SCRIPTS_TOOL = "{40B6664F-4972-11D1-A7CA-0000F87571E3}"  # its Startup/Shutdown snap-in
LIMITS = [
    "not proven on a real Windows boot by this project's tests, which check the files only",
    "does nothing where a domain policy turns off local Group Policy processing",
    "EC2Launch v1 runs all its enabled initialization tasks again (computer name if "
    "setComputerName, wallpaper, DNS suffixes, volume extension, user data if handleUserData)",
    "if starting the task fails it runs at the following boot: reboot once if no password "
    "appears after 15 minutes; log: %SystemRoot%\\Temp\\ResetAccess-EC2Launch-Init.log",
]


def edit_launch_config(text: str, rel: str) -> Tuple[str, Optional[str]]:
    root = js.parse(text, rel)
    if root.kind != "object":
        raise ConfigParseError(f"{rel} is not a JSON object: restore EC2Launch's LaunchConfig.json")
    # PowerShell's ConvertFrom-Json, which EC2Launch v1 reads it with, ignores key case.
    found = js.members(root, "adminPasswordType", fold=True)
    if not found:
        new = js.add_member(text, root, "adminPasswordType", '"Random"')
        note = "LaunchConfig.json: added adminPasswordType Random"
    else:
        new = text
        changed = []
        for _, value in sorted(found, key=lambda item: -item[1].start):
            if value.kind == "string" and str(value.value).casefold() == "random":
                continue
            changed.append(json.dumps(value.value))
            new = js.splice(new, value.start, value.end, '"Random"')
        if not changed:
            return text, None
        note = f'LaunchConfig.json: adminPasswordType {" ".join(changed)} -> "Random"'
    before = {k.casefold(): v for k, v in json.loads(text).items()}
    after = {k.casefold(): v for k, v in json.loads(new).items()}
    before["adminpasswordtype"] = "Random"
    if before != after:  # a safety net: nothing but adminPasswordType may differ
        raise ConfigParseError(f"{rel}: could not set adminPasswordType alone; set it by hand")
    return new, note


_CSE_GROUP = re.compile(r"\[((?:\{[0-9A-Fa-f-]{36}\})+)\]")


def _with_scripts_extension(value: str, rel: str) -> str:
    """gPCMachineExtensionNames with the Scripts extension, its groups kept in GUID order."""
    groups = _CSE_GROUP.findall(value.strip())
    if "".join(f"[{group}]" for group in groups) != value.strip():
        raise ConfigParseError(f"{rel}: gPCMachineExtensionNames={value!r} is not a GUID list")
    guids = [re.findall(r"\{[^}]+\}", group) for group in groups]
    for index, group in enumerate(guids):
        if group[0].upper() == SCRIPTS_CSE:
            if SCRIPTS_TOOL not in (guid.upper() for guid in group):
                tools = sorted([*group[1:], SCRIPTS_TOOL], key=str.upper)
                groups[index] = group[0] + "".join(tools)
            return "".join(f"[{group}]" for group in groups)
    position = next(
        (index for index, group in enumerate(guids) if group[0].upper() > SCRIPTS_CSE), len(groups)
    )
    groups.insert(position, SCRIPTS_CSE + SCRIPTS_TOOL)
    return "".join(f"[{group}]" for group in groups)


def _has_scripts_extension(ini: Ini) -> bool:
    found = ini.get("General", "gPCMachineExtensionNames")
    return found is not None and SCRIPTS_CSE in found[1].upper()


def _next_machine_version(version: int) -> int:
    """gpt.ini Version: user version in the high 16 bits, computer version in the low 16."""
    machine = (version & 0xFFFF) + 1
    return (version & ~0xFFFF) | (machine if machine <= 0xFFFF else 1)


def _gpt_ini_texts(current: Optional[str], rel: str) -> Tuple[str, str, int, int]:
    """gpt.ini with our script announced, and as the script leaves it after its run."""
    ini = Ini.parse(current or "", "" if current else "\r\n")
    ini.ensure_section("General")
    found = ini.get("General", "gPCMachineExtensionNames")
    original = None if found is None else found[1]
    ini.put("General", "gPCMachineExtensionNames", _with_scripts_extension(original or "", rel))
    found_version = ini.get("General", "Version")
    written = "0" if found_version is None else found_version[1].strip()
    if not written.isdigit():
        raise ConfigParseError(f"{rel}: Version={written!r} is not a number; fix or delete gpt.ini")
    version = int(written)
    installed_version = _next_machine_version(version)
    ini.put("General", "Version", str(installed_version))
    installed = ini.render()
    line = ini.get("General", "gPCMachineExtensionNames")
    if original is not None:
        ini.put("General", "gPCMachineExtensionNames", original)
    elif line is not None:
        ini.remove({line[0]})
    ini.put("General", "Version", str(_next_machine_version(installed_version)))
    return installed, ini.render(), version, installed_version


def _script_entry(key: str) -> Optional[Tuple[int, str]]:
    """(number, "cmdline" or "parameters") of a scripts.ini entry like 0CmdLine."""
    match = re.fullmatch(r"(\d+)(CmdLine|Parameters)", key.strip(), re.IGNORECASE)
    return None if match is None else (int(match.group(1)), match.group(2).lower())


def _scripts_ini_texts(current: Optional[str]) -> Tuple[str, Optional[str], bool]:
    """scripts.ini with our Startup entry; after its run (None: delete); already there."""
    ini = Ini.parse(current or "", "" if current else "\r\n")
    used = set()
    ours = set()
    for _, key, value in ini.entries("Startup"):
        entry = _script_entry(key)
        if entry is None:
            continue
        used.add(entry[0])
        if entry[1] == "cmdline" and value.strip().casefold() == STARTUP_SCRIPT.casefold():
            ours.add(entry[0])
    already = bool(ours)
    if not already:
        # Windows reads 0CmdLine, 1CmdLine, ... and stops at the first missing number.
        number = next(n for n in range(len(used) + 1) if n not in used)
        ini.add("Startup", [f"{number}CmdLine={STARTUP_SCRIPT}", f"{number}Parameters="])
        ours.add(number)
    installed = ini.render()
    if current is None:
        return installed, None, already
    drop = set()
    for index, key, _ in ini.entries("Startup"):
        entry = _script_entry(key)
        if entry is not None and entry[0] in ours:
            drop.add(index)
    ini.remove(drop)
    return installed, ini.render(), already


def _startup_cmd(token: str, restore_scripts_ini: bool) -> bytes:
    """The one-shot startup script (cmd.exe, ASCII, CRLF)."""
    scripts_ini = r"%RA_GP%\Machine\Scripts\scripts.ini"
    if restore_scripts_ini:
        restore = f'copy /y "%~dp0{AFTER_SCRIPTS_INI}" "{scripts_ini}" >>"%RA_LOG%" 2>&1'
    else:
        restore = f'del /f /q "{scripts_ini}" >>"%RA_LOG%" 2>&1'
    lines = [
        "@echo off",
        "rem ResetAccess: makes EC2Launch v1 generate a new Administrator password, once.",
        "rem Written offline by ResetAccess (rescue/windows/) as a local Group Policy",
        "rem startup script. It schedules EC2Launch v1 initialization as AWS documents",
        "rem (InitializeInstance.ps1 -Schedule) and starts that task now, then puts the",
        "rem Group Policy files back as they were and deletes itself.",
        "setlocal",
        r'set "RA_LOG=%SystemRoot%\Temp\ResetAccess-EC2Launch-Init.log"',
        rf'set "RA_MARK=%SystemRoot%\Temp\ResetAccess-EC2Launch-Init.{token}.done"',
        r'set "RA_GP=%SystemRoot%\System32\GroupPolicy"',
        'if exist "%RA_MARK%" goto restore',
        'echo %DATE% %TIME% ran>"%RA_MARK%"',
        'echo %DATE% %TIME% ResetAccess: scheduling EC2Launch v1 initialization>>"%RA_LOG%"',
        r'"%SystemRoot%\System32\WindowsPowerShell\v1.0\powershell.exe" -NoProfile '
        r"-NonInteractive -ExecutionPolicy Bypass -File "
        r'"%ProgramData%\Amazon\EC2-Windows\Launch\Scripts\InitializeInstance.ps1" -Schedule'
        r' >>"%RA_LOG%" 2>&1',
        "echo %DATE% %TIME% ResetAccess: InitializeInstance.ps1 -Schedule exit %ERRORLEVEL%"
        '>>"%RA_LOG%"',
        rf'"%SystemRoot%\System32\schtasks.exe" /Run /TN "{TASK_NAME}" >>"%RA_LOG%" 2>&1',
        'echo %DATE% %TIME% ResetAccess: schtasks /Run exit %ERRORLEVEL%>>"%RA_LOG%"',
        ":restore",
        r'attrib -r -s -h "%RA_GP%\gpt.ini" >nul 2>&1',
        rf'copy /y "%~dp0{AFTER_GPT_INI}" "%RA_GP%\gpt.ini" >>"%RA_LOG%" 2>&1',
        f'attrib -r -s -h "{scripts_ini}" >nul 2>&1',
        restore,
        f'del /f /q "%~dp0{AFTER_GPT_INI}" "%~dp0{AFTER_SCRIPTS_INI}" >nul 2>&1',
        'echo %DATE% %TIME% ResetAccess: startup script removed>>"%RA_LOG%"',
        '(goto) 2>nul & del /f /q "%~f0"',
    ]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _existing_text(
    volume: Volume,
    directory: Path,
    missing: List[Path],
    name: str,
) -> Optional[Tuple[Path, Text]]:
    path = None if directory in missing else volume.find_file(f"{volume.rel(directory)}/{name}")
    if path is None:
        return None
    return path, decode_text(read_config(path, volume.rel(path)), volume.rel(path))


def _plan_startup_script(volume: Volume, plan: AgentPlan) -> None:
    if volume.find("Windows") is None:
        raise WindowsRescueError(
            "EC2Launch v1 is configured but the volume has no Windows directory: mount the "
            "Windows system partition, not another one"
        )
    startup, missing = volume.plan_dir(STARTUP_DIR)
    scripts_dir = startup.parent
    gp_dir = scripts_dir.parent.parent
    script = None if missing else volume.child(startup, STARTUP_SCRIPT)
    scripts = _existing_text(volume, scripts_dir, missing, "scripts.ini")
    gpt = _existing_text(volume, gp_dir, missing, "gpt.ini")

    scripts_new, scripts_after, listed = _scripts_ini_texts(scripts[1].text if scripts else None)
    if listed and script is not None and gpt and _has_scripts_extension(Ini.parse(gpt[1].text)):
        plan.notes.append(
            f"the startup script {volume.rel(script)} from an earlier run is in "
            "place: it runs at the next boot"
        )
        return
    gpt_rel = volume.rel(gpt[0] if gpt else gp_dir / "gpt.ini")
    gpt_new, gpt_after, version, new_version = _gpt_ini_texts(gpt[1].text if gpt else None, gpt_rel)

    plan.actions.extend(Action("mkdir", path) for path in missing)
    gpt_codec = gpt[1] if gpt else Text("", "latin-1", b"")
    ours = [
        (STARTUP_SCRIPT, _startup_cmd(secrets.token_hex(8), scripts_after is not None)),
        (AFTER_GPT_INI, gpt_codec.encode(gpt_after)),
    ]
    if scripts is not None and scripts_after is not None:
        ours.append((AFTER_SCRIPTS_INI, scripts[1].encode(scripts_after)))
    for name, data in ours:
        existing = None if missing else volume.child(startup, name)
        if existing is not None:  # left by an interrupted earlier run: ours to replace
            plan.actions.append(Action("edit", existing, data))
        else:
            plan.actions.append(Action("create", startup / name, data))
    if scripts is None:
        # Windows writes scripts.ini as UTF-16 LE with a BOM.
        utf16 = Text("", "utf-16-le", codecs.BOM_UTF16_LE)
        plan.actions.append(
            Action("create", scripts_dir / "scripts.ini", utf16.encode(scripts_new))
        )
    elif not listed:
        edit_action(volume, scripts[0], scripts[1].encode(scripts_new), plan)
    # gpt.ini last: its new version is what makes Windows pick the script up.
    if gpt is None:
        plan.actions.append(Action("create", gp_dir / "gpt.ini", gpt_codec.encode(gpt_new)))
    else:
        edit_action(volume, gpt[0], gpt[1].encode(gpt_new), plan)
    plan.notes.append(
        f"installed the one-shot local Group Policy startup script "
        f"{volume.rel(startup / STARTUP_SCRIPT)} (local policy version {version} -> "
        f"{new_version}): at the next boot it runs InitializeInstance.ps1 -Schedule, starts the "
        f"task '{TASK_NAME}', puts {gpt_rel} and scripts.ini back and deletes itself"
    )


def plan(volume: Volume, config: Path) -> AgentPlan:
    plan = AgentPlan("ec2launch-v1-group-policy-startup-script", limits=list(LIMITS))
    rel = volume.rel(config)
    text = decode_text(read_config(config, rel), rel)
    new, note = edit_launch_config(text.text, rel)
    if note is None:
        plan.notes.append("LaunchConfig.json already has adminPasswordType Random")
    else:
        edit_action(volume, config, text.encode(new), plan)
        plan.notes.append(note)
    _plan_startup_script(volume, plan)
    plan.notes.append("EC2Launch v1 " + NEXT_BOOT_NOTE)
    return plan
