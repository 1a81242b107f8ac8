"""Re-enable Administrator password generation on an offline Windows root volume.

`enable_password_generation(root)` takes the root of a mounted Windows system partition
(NTFS through ntfs-3g on the Linux helper, or a plain directory tree in the local engine),
finds the EC2 launch agent the volume has and makes it generate a new random password at
the next boot, which EC2 then returns, encrypted with the instance's key pair, through
GetPasswordData (AWS says to allow up to 15 minutes after the start).

Launch agents, the preferred first when several are found (all are reported):
  ec2launch-v2  ProgramData/Amazon/EC2Launch/config/agent-config.yml: task setAdminAccount
                with password type random in stage preReady (added or corrected in place;
                a static password's `data` is dropped), and
                ProgramData/Amazon/EC2Launch/state/.run-once moved aside (AWS's manual
                procedure deletes it). Every task with frequency `once` runs again.
  ec2launch-v1  ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json:
                adminPasswordType Random, plus a one-shot startup script (below).
  ec2config     Program Files/Amazon/Ec2ConfigService/Settings/config.xml: plugin
                Ec2SetPassword Enabled (EC2Config disables it again after it ran).
An agent whose program files are also on the volume wins over one with a stale config.

EC2Launch v1: making initialization run at the next boot
  AWS schedules it with `InitializeInstance.ps1 -Schedule`, which registers the scheduled
  task "Amazon Ec2 Launch - Instance Initialization"; the task runs once at the next boot
  and then disables itself (AWS EC2 Windows guide, "Configure initialization tasks",
  awsdocs/amazon-ec2-user-guide-windows doc_source/ec2launch.md). AWS's offline tooling
  runs on a WINDOWS helper: AWSSupport-ResetAccess calls AWSSupport-StartEC2RescueWorkflow,
  whose offline scripts get the volume's registry loaded (its EC2RESCUE_OFFLINE_* variables,
  e.g. HKLM:\\AWSTempSystem\\ControlSet001), and EC2Rescue for Windows (closed source)
  resets the password from there ("Reset Administrator Password" in its offline mode,
  doc_source/ResettingAdminPassword_EC2Launch.md). Options from a Linux helper with the
  standard library only:
  - edit the task's XML in Windows/System32/Tasks: since Windows 10 / Server 2016 the
    Task Scheduler keeps its definitions in the SOFTWARE hive (TaskCache) and treats that
    file as a copy, reporting "the task image is corrupt or has been tampered with" when
    they differ. Rejected.
  - write the SOFTWARE hive: needs a hive writer (hivex is not standard library), and an
    edit made beside the hive's transaction logs (.LOG1/.LOG2) can be replayed away.
    Rejected.
  - CHOSEN: a local Group Policy machine startup script, made of files only: scripts.ini
    and gpt.ini under Windows/System32/GroupPolicy (the Scripts extension listed, the
    machine version raised so Windows processes it) and a .cmd in Machine/Scripts/Startup.
    Windows runs it once as SYSTEM during the next boot; it runs AWS's own
    `InitializeInstance.ps1 -Schedule`, starts that task at once (schtasks /Run), puts
    back the Group Policy files as they were (version raised once more), and deletes
    itself. A marker under %SystemRoot%\\Temp stops a second run even if deleting fails.
    The same files-only technique is used by public offline bootstrap scripts run through
    AWSSupport-StartEC2RescueWorkflow.
  Limits (also returned in "limits"): not proven on a real Windows boot by our tests
  (they check the files, on directory trees and real NTFS images); it does nothing where
  a domain policy turns off local Group Policy processing; all enabled EC2Launch v1
  initialization tasks run again (computer name if setComputerName, wallpaper, DNS
  suffixes, volume extension, user data if handleUserData); if starting the task fails it
  still runs at the following boot, so reboot once if no password appears after 15
  minutes; log: %SystemRoot%\\Temp\\ResetAccess-EC2Launch-Init.log.

How files are changed
  Every lookup ignores letter case (NTFS does, ntfs-3g does not) and never follows a
  symlink or junction (it could lead out of the volume). Edits are textual and in place:
  encoding (UTF-8 with or without BOM, UTF-16 with BOM), line endings, comments and every
  other byte stay as they were, and the file keeps its NTFS security descriptor and
  attributes. Before its first change a file is copied beside itself as
  `<name>.reset-access.bak`; an existing backup is never overwritten, so it stays the
  original. Files the agent creates get an explicit security descriptor (SYSTEM and
  Administrators full control, Authenticated Users read), because ntfs-3g would otherwise
  give them "Everyone: full control". Everything is planned, parsed and checked before
  the first write: a refusal changes nothing. A second run changes nothing more.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple
from xml.parsers import expat

from .. import RescueError


class WindowsRescueError(RescueError):
    """The Windows volume cannot be prepared; the message says why and what to do."""


class NoLaunchAgentError(WindowsRescueError):
    """None of the three EC2 launch agents has its configuration on the volume."""


class ConfigParseError(WindowsRescueError):
    """A launch agent's file is not in a shape the agent can edit safely."""


EC2LAUNCH_V2 = "ec2launch-v2"
EC2LAUNCH_V1 = "ec2launch-v1"
EC2CONFIG = "ec2config"
BACKUP_SUFFIX = ".reset-access.bak"
MAX_CONFIG_BYTES = 4 * 1024 * 1024  # launch agent configs are a few KiB
RUN_ONCE = "ProgramData/Amazon/EC2Launch/state/.run-once"
INITIALIZE_INSTANCE = "ProgramData/Amazon/EC2-Windows/Launch/Scripts/InitializeInstance.ps1"
V1_TASK_NAME = "Amazon Ec2 Launch - Instance Initialization"
GROUP_POLICY = "Windows/System32/GroupPolicy"
STARTUP_DIR = GROUP_POLICY + "/Machine/Scripts/Startup"
STARTUP_SCRIPT = "ResetAccess-EC2Launch-Init.cmd"
AFTER_GPT_INI = "ResetAccess-EC2Launch-Init.gpt.ini"
AFTER_SCRIPTS_INI = "ResetAccess-EC2Launch-Init.scripts.ini"
SCRIPTS_CSE = "{42B5FAAE-6536-11D2-AE5A-0000F87571E3}"  # Group Policy Scripts extension
SCRIPTS_TOOL = "{40B6664F-4972-11D1-A7CA-0000F87571E3}"  # its Startup/Shutdown snap-in


@dataclass(frozen=True)
class _Agent:
    name: str
    config: str
    programs: Tuple[str, ...]


AGENTS = (
    _Agent(
        EC2LAUNCH_V2,
        "ProgramData/Amazon/EC2Launch/config/agent-config.yml",
        (
            "Program Files/Amazon/EC2Launch/EC2Launch.exe",
            "Program Files/Amazon/EC2Launch/service/EC2LaunchService.exe",
        ),
    ),
    _Agent(
        EC2LAUNCH_V1,
        "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json",
        (INITIALIZE_INSTANCE,),
    ),
    _Agent(
        EC2CONFIG,
        "Program Files/Amazon/Ec2ConfigService/Settings/config.xml",
        ("Program Files/Amazon/Ec2ConfigService/Ec2Config.exe",),
    ),
)

NEXT_BOOT_NOTE = (
    "at the next boot Windows gets a new random Administrator password; EC2 returns it "
    "encrypted with the instance's key pair (GetPasswordData, or Connect > RDP client > "
    "Get password); allow up to 15 minutes after the start"
)
V1_LIMITS = [
    "not proven on a real Windows boot by this project's tests, which check the files only",
    "does nothing where a domain policy turns off local Group Policy processing",
    "EC2Launch v1 runs all its enabled initialization tasks again (computer name if "
    "setComputerName, wallpaper, DNS suffixes, volume extension, user data if handleUserData)",
    "if starting the task fails it runs at the following boot: reboot once if no password "
    "appears after 15 minutes; log: %SystemRoot%\\Temp\\ResetAccess-EC2Launch-Init.log",
]


# ---------------------------------------------------------------------------------------
# The volume: case-insensitive lookups that never follow a link


class _Volume:
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise WindowsRescueError(f"{root} is not a directory: pass the mounted Windows volume")
        self.root = root.resolve()

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def child(self, directory: Path, name: str) -> Optional[Path]:
        """The entry of `directory` named `name` in any letter case, None if there is none."""
        try:
            names = [entry.name for entry in directory.iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return None
        if name in names:
            chosen = name
        else:
            matches = sorted(n for n in names if n.casefold() == name.casefold())
            if not matches:
                return None
            if len(matches) > 1:
                raise WindowsRescueError(
                    f"{self.rel(directory / name)} exists in several letter cases "
                    f"({', '.join(matches)}): keep one of them and retry"
                )
            chosen = matches[0]
        path = directory / chosen
        if path.is_symlink():
            raise WindowsRescueError(
                f"{self.rel(path)} is a symbolic link or junction: refusing to follow it, as it "
                "may lead out of the volume; make it a real directory or file, or reset the "
                "password with EC2Rescue for Windows on a Windows helper"
            )
        return path

    def find(self, rel: str) -> Optional[Path]:
        current = self.root
        for name in rel.split("/"):
            found = self.child(current, name)
            if found is None:
                return None
            current = found
        return current

    def find_file(self, rel: str) -> Optional[Path]:
        path = self.find(rel)
        if path is not None and not stat.S_ISREG(path.lstat().st_mode):
            raise WindowsRescueError(f"{self.rel(path)} is not a regular file: remove or fix it")
        return path

    def plan_dir(self, rel: str) -> Tuple[Path, List[Path]]:
        """The directory for `rel`, existing parts in their own case; the ones to create."""
        current = self.root
        missing: List[Path] = []
        for name in rel.split("/"):
            found = None if missing else self.child(current, name)
            if found is None:
                found = current / name
                missing.append(found)
            elif not found.is_dir():
                raise WindowsRescueError(f"{self.rel(found)} is not a directory: remove or fix it")
            current = found
        return current, missing


# ---------------------------------------------------------------------------------------
# Text that goes back to exactly the same bytes


@dataclass
class _Text:
    text: str
    codec: str
    bom: bytes

    def encode(self, text: str) -> bytes:
        errors = "surrogatepass" if self.codec.startswith("utf-16") else "strict"
        return self.bom + text.encode(self.codec, errors)


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _sniff(body: bytes, rel: str) -> str:
    if b"\x00" in body:
        # UTF-16 without a BOM: mostly-ASCII text has a NUL in every other byte.
        half = len(body) // 2
        if body[1::2].count(0) > half // 2:
            return "utf-16-le"
        if body[0::2].count(0) > half // 2:
            return "utf-16-be"
        raise ConfigParseError(f"{rel} is binary, not a text configuration file: restore it")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"  # an ANSI code page: latin-1 maps each byte to itself, edits are ASCII
    return "utf-8"


def _decode(data: bytes, rel: str) -> _Text:
    bom, codec = next(((b, c) for b, c in _BOMS if data.startswith(b)), (b"", ""))
    body = data[len(bom) :]
    codec = codec or _sniff(body, rel)
    errors = "surrogatepass" if codec.startswith("utf-16") else "strict"
    try:
        text = body.decode(codec, errors)
    except UnicodeDecodeError as exc:
        raise ConfigParseError(f"{rel} is not valid {codec}: {exc.reason}; restore it") from exc
    decoded = _Text(text, codec, bom)
    if decoded.encode(text) != data:
        raise ConfigParseError(
            f"{rel}: its encoding does not round-trip, editing it could alter it"
        )
    return decoded


def _newline(text: str) -> str:
    for newline in ("\r\n", "\n", "\r"):
        if newline in text:
            return newline
    return "\r\n"  # a one-line Windows file: Windows' own line ending


_LINE_RE = re.compile(r"([^\r\n]*)(\r\n|\n|\r)?")


def _split_lines(text: str) -> List[Tuple[str, str]]:
    """(body, line ending) pairs; joining them gives the text back."""
    lines = []
    pos = 0
    while pos < len(text):
        match = _LINE_RE.match(text, pos)
        if match is None:  # cannot happen: the pattern matches the empty string
            break
        lines.append((match.group(1), match.group(2) or ""))
        pos = match.end()
    return lines


# ---------------------------------------------------------------------------------------
# Reading, writing and protecting files


def _read(path: Path, rel: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise WindowsRescueError(f"{rel} is not a regular file: remove or fix it")
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigParseError(f"{rel} is over {MAX_CONFIG_BYTES} bytes: not a configuration file")
    return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _rewrite(path: Path, data: bytes) -> None:
    """Replace the content in place: the file keeps its security descriptor and attributes."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _write_all(fd, data)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _create(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


NTFS_ACL_XATTR = "system.ntfs_acl"  # ntfs-3g's view of a file's security descriptor


def _sid(authority: int, *subauthorities: int) -> bytes:
    count = len(subauthorities)
    return (
        struct.pack("<BB", 1, count)
        + authority.to_bytes(6, "big")
        + struct.pack(f"<{count}I", *subauthorities)
    )


SID_SYSTEM = _sid(5, 18)
SID_ADMINISTRATORS = _sid(5, 32, 544)
SID_AUTHENTICATED_USERS = _sid(5, 11)
FILE_ALL_ACCESS = 0x001F01FF
FILE_GENERIC_READ_EXECUTE = 0x001200A9
INHERIT_TO_FILES_AND_DIRS = 0x03  # OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE


def security_descriptor(directory: bool) -> bytes:
    """Self-relative descriptor: SYSTEM and Administrators full control, users read.

    What Windows gives C:\\Windows\\System32\\GroupPolicy; directories pass it on to what
    Windows later creates inside them.
    """
    flags = INHERIT_TO_FILES_AND_DIRS if directory else 0
    aces = b"".join(
        struct.pack("<BBHI", 0, flags, 8 + len(sid), mask) + sid  # ACCESS_ALLOWED_ACE
        for mask, sid in (
            (FILE_ALL_ACCESS, SID_SYSTEM),
            (FILE_ALL_ACCESS, SID_ADMINISTRATORS),
            (FILE_GENERIC_READ_EXECUTE, SID_AUTHENTICATED_USERS),
        )
    )
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 3, 0) + aces
    owner = 20 + len(acl)
    group = owner + len(SID_ADMINISTRATORS)
    control = 0x8004  # SE_SELF_RELATIVE | SE_DACL_PRESENT
    header = struct.pack("<BBHIIII", 1, 0, control, owner, group, 0, 20)
    return header + acl + SID_ADMINISTRATORS + SID_SYSTEM


def _protect(path: Path, like: Optional[Path], directory: bool) -> None:
    """Give a new file `like`'s descriptor, else the safe one. A no-op off NTFS."""
    if not hasattr(os, "setxattr"):  # the local engine on a non-Linux workstation
        return
    value: Optional[bytes] = None
    if like is not None:
        try:
            value = os.getxattr(like, NTFS_ACL_XATTR, follow_symlinks=False)
        except OSError:
            value = None
    # Off ntfs-3g (the local engine's plain trees) there is no Windows descriptor to set.
    with contextlib.suppress(OSError):
        os.setxattr(
            path, NTFS_ACL_XATTR, value or security_descriptor(directory), follow_symlinks=False
        )


# ---------------------------------------------------------------------------------------
# The plan: everything is decided (and every file parsed) before the first write


@dataclass
class _Action:
    kind: str  # mkdir | create | edit | remove | rename
    path: Path
    data: bytes = b""
    target: Optional[Path] = None  # rename: the new name
    backup: Optional[Path] = None  # edit: the backup to write first (None: ours, or exists)


@dataclass
class _AgentPlan:
    method: str
    actions: List[_Action] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    limits: List[str] = field(default_factory=list)
    backups_kept: List[Path] = field(default_factory=list)


def _edit_action(volume: _Volume, path: Path, data: bytes, plan: _AgentPlan) -> None:
    """An in-place edit preceded by a backup, unless an earlier run's backup is there."""
    name = path.name + BACKUP_SUFFIX
    existing = volume.child(path.parent, name)
    if existing is None:
        plan.actions.append(_Action("edit", path, data, backup=path.parent / name))
    else:
        plan.backups_kept.append(existing)
        plan.actions.append(_Action("edit", path, data))


def _execute(actions: List[_Action]) -> None:
    for action in actions:
        if action.kind == "mkdir":
            action.path.mkdir()
            _protect(action.path, None, directory=True)
        elif action.kind == "create":
            _create(action.path, action.data)
            _protect(action.path, None, directory=False)
        elif action.kind == "edit":
            if action.backup is not None:
                _create(action.backup, _read(action.path, action.path.name))
                _protect(action.backup, action.path, directory=False)
            _rewrite(action.path, action.data)
        elif action.kind == "rename" and action.target is not None:
            action.path.rename(action.target)
        elif action.kind == "remove":
            action.path.unlink()


# ---------------------------------------------------------------------------------------
# JSON with positions, for edits that leave every other byte alone


@dataclass
class _JNode:
    kind: str  # object | array | string | other
    start: int
    end: int
    value: Any = None
    members: List[Tuple[str, int, int, _JNode]] = field(default_factory=list)  # key, span, value
    items: List[_JNode] = field(default_factory=list)


_JSON_WS = re.compile(r"[ \t\r\n]*")
_JSON_ATOM = re.compile(r"true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _jskip(text: str, pos: int) -> int:
    match = _JSON_WS.match(text, pos)
    return pos if match is None else match.end()


def _jvalue(text: str, pos: int) -> _JNode:
    char = text[pos : pos + 1]
    if char == '"':
        value, end = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
        return _JNode("string", pos, end, value)
    if char in ("{", "["):
        return _jcontainer(text, pos)
    match = _JSON_ATOM.match(text, pos)
    if match is None:
        raise ValueError(f"unexpected {char!r} at offset {pos}")
    return _JNode("other", pos, match.end(), json.loads(match.group()))


def _jcontainer(text: str, pos: int) -> _JNode:
    is_object = text[pos] == "{"
    node = _JNode("object" if is_object else "array", pos, pos)
    closing = "}" if is_object else "]"
    pos = _jskip(text, pos + 1)
    if text[pos : pos + 1] == closing:
        node.end = pos + 1
        return node
    while True:
        if is_object:
            if text[pos : pos + 1] != '"':
                raise ValueError(f"expected a key at offset {pos}")
            key, key_end = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
            colon = _jskip(text, key_end)
            if text[colon : colon + 1] != ":":
                raise ValueError(f"expected ':' at offset {colon}")
            value = _jvalue(text, _jskip(text, colon + 1))
            node.members.append((key, pos, key_end, value))
        else:
            value = _jvalue(text, pos)
            node.items.append(value)
        pos = _jskip(text, value.end)
        if text[pos : pos + 1] == closing:
            node.end = pos + 1
            return node
        if text[pos : pos + 1] != ",":
            raise ValueError(f"expected ',' or {closing!r} at offset {pos}")
        pos = _jskip(text, pos + 1)


def _jparse(text: str, rel: str) -> _JNode:
    try:
        json.loads(text)  # the standard parser's message is the clearer one
        root = _jvalue(text, _jskip(text, 0))
    except ValueError as exc:
        raise ConfigParseError(f"{rel} is not valid JSON ({exc}): fix or restore it") from exc
    return root


def _jmembers(node: _JNode, key: str, fold: bool = False) -> List[Tuple[int, _JNode]]:
    wanted = key.casefold() if fold else key
    return [
        (index, value)
        for index, (name, _, _, value) in enumerate(node.members)
        if (name.casefold() if fold else name) == wanted
    ]


def _jsplice(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _jappend(text: str, node: _JNode, new: str) -> str:
    """Add `new` (a member or an item) after the last one, in the container's own layout."""
    spans = [(key_start, value.end) for _, key_start, _, value in node.members] or [
        (item.start, item.end) for item in node.items
    ]
    if not spans:
        return _jsplice(text, node.start + 1, node.start + 1, new)
    if len(spans) > 1:
        separator = text[spans[-2][1] : spans[-1][0]]  # e.g. ",\r\n    "
    else:
        separator = "," + text[node.start + 1 : spans[0][0]]
    return _jsplice(text, spans[-1][1], spans[-1][1], separator + new)


def _jmember(text: str, node: _JNode, key: str, value: str) -> str:
    colon = ": "
    if node.members:
        _, _, key_end, first = node.members[-1]
        colon = text[key_end : first.start]  # PowerShell writes "key":  value
    return _jappend(text, node, json.dumps(key) + colon + value)


def _jremove_member(text: str, node: _JNode, index: int) -> str:
    _, key_start, _, value = node.members[index]
    if index > 0:
        return _jsplice(text, node.members[index - 1][3].end, value.end, "")
    if len(node.members) > 1:
        return _jsplice(text, key_start, node.members[1][1], "")
    return _jsplice(text, key_start, value.end, "")


# ---------------------------------------------------------------------------------------
# EC2Launch v1


def _edit_launch_config(text: str, rel: str) -> Tuple[str, Optional[str]]:
    root = _jparse(text, rel)
    if root.kind != "object":
        raise ConfigParseError(f"{rel} is not a JSON object: restore EC2Launch's LaunchConfig.json")
    # PowerShell's ConvertFrom-Json, which EC2Launch v1 reads it with, ignores key case.
    found = _jmembers(root, "adminPasswordType", fold=True)
    if not found:
        new = _jmember(text, root, "adminPasswordType", '"Random"')
        note = "LaunchConfig.json: added adminPasswordType Random"
    else:
        new = text
        changed = []
        for _, value in sorted(found, key=lambda item: -item[1].start):
            if value.kind == "string" and str(value.value).casefold() == "random":
                continue
            changed.append(json.dumps(value.value))
            new = _jsplice(new, value.start, value.end, '"Random"')
        if not changed:
            return text, None
        note = f'LaunchConfig.json: adminPasswordType {" ".join(changed)} -> "Random"'
    before = {k.casefold(): v for k, v in json.loads(text).items()}
    after = {k.casefold(): v for k, v in json.loads(new).items()}
    before["adminpasswordtype"] = "Random"
    if before != after:  # a safety net: nothing but adminPasswordType may differ
        raise ConfigParseError(f"{rel}: could not set adminPasswordType alone; set it by hand")
    return new, note


@dataclass
class _Ini:
    """An INI file as lines, edited in place (Group Policy's gpt.ini and scripts.ini)."""

    lines: List[List[str]]
    newline: str

    @classmethod
    def parse(cls, text: str, newline: str = "") -> _Ini:
        return cls([[body, eol] for body, eol in _split_lines(text)], newline or _newline(text))

    def render(self) -> str:
        return "".join(body + eol for body, eol in self.lines)

    def section(self, name: str) -> Optional[Tuple[int, int]]:
        start = None
        for index, (body, _) in enumerate(self.lines):
            match = re.match(r"\s*\[([^\]]*)\]\s*$", body)
            if match is None:
                continue
            if start is not None:
                return start, index
            if match.group(1).strip().casefold() == name.casefold():
                start = index
        return None if start is None else (start, len(self.lines))

    def ensure_section(self, name: str) -> Tuple[int, int]:
        found = self.section(name)
        if found is not None:
            return found
        self.insert(len(self.lines), [f"[{name}]"])
        return len(self.lines) - 1, len(self.lines)

    def entries(self, name: str) -> List[Tuple[int, str, str]]:
        found = self.section(name)
        if found is None:
            return []
        out = []
        for index in range(found[0] + 1, found[1]):
            match = re.match(r"\s*([^=;#\s][^=]*?)\s*=(.*)$", self.lines[index][0])
            if match:
                out.append((index, match.group(1), match.group(2)))
        return out

    def get(self, section: str, key: str) -> Optional[Tuple[int, str]]:
        for index, name, value in self.entries(section):
            if name.casefold() == key.casefold():
                return index, value
        return None

    def put(self, section: str, key: str, value: str) -> None:
        found = self.get(section, key)
        if found is not None:
            body = self.lines[found[0]][0]
            self.lines[found[0]][0] = body[: body.index("=") + 1] + value
            return
        self.add(section, [f"{key}={value}"])

    def add(self, section: str, bodies: List[str]) -> None:
        start, _ = self.ensure_section(section)
        entries = self.entries(section)
        self.insert((entries[-1][0] if entries else start) + 1, bodies)

    def insert(self, index: int, bodies: List[str]) -> None:
        if index > 0 and not self.lines[index - 1][1]:
            self.lines[index - 1][1] = self.newline  # the last line had no line ending
        self.lines[index:index] = [[body, self.newline] for body in bodies]

    def remove(self, indexes: Set[int]) -> None:
        self.lines = [line for index, line in enumerate(self.lines) if index not in indexes]


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


def _has_scripts_extension(ini: _Ini) -> bool:
    found = ini.get("General", "gPCMachineExtensionNames")
    return found is not None and SCRIPTS_CSE in found[1].upper()


def _next_machine_version(version: int) -> int:
    """gpt.ini Version: user version in the high 16 bits, computer version in the low 16."""
    machine = (version & 0xFFFF) + 1
    return (version & ~0xFFFF) | (machine if machine <= 0xFFFF else 1)


def _gpt_ini_texts(current: Optional[str], rel: str) -> Tuple[str, str, int, int]:
    """gpt.ini with our script announced, and as the script leaves it after its run."""
    ini = _Ini.parse(current or "", "" if current else "\r\n")
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
    ini = _Ini.parse(current or "", "" if current else "\r\n")
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
        "rem Written offline by ResetAccess (rescue/windows.py) as a local Group Policy",
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
        rf'"%SystemRoot%\System32\schtasks.exe" /Run /TN "{V1_TASK_NAME}" >>"%RA_LOG%" 2>&1',
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


def _existing_text(volume: _Volume, directory: Path, missing: List[Path], name: str,
                   ) -> Optional[Tuple[Path, _Text]]:
    path = None if directory in missing else volume.find_file(f"{volume.rel(directory)}/{name}")
    if path is None:
        return None
    return path, _decode(_read(path, volume.rel(path)), volume.rel(path))


def _plan_startup_script(volume: _Volume, plan: _AgentPlan) -> None:
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
    if listed and script is not None and gpt and _has_scripts_extension(_Ini.parse(gpt[1].text)):
        plan.notes.append(f"the startup script {volume.rel(script)} from an earlier run is in "
                          "place: it runs at the next boot")
        return
    gpt_rel = volume.rel(gpt[0] if gpt else gp_dir / "gpt.ini")
    gpt_new, gpt_after, version, new_version = _gpt_ini_texts(gpt[1].text if gpt else None, gpt_rel)

    plan.actions.extend(_Action("mkdir", path) for path in missing)
    gpt_codec = gpt[1] if gpt else _Text("", "latin-1", b"")
    ours = [
        (STARTUP_SCRIPT, _startup_cmd(secrets.token_hex(8), scripts_after is not None)),
        (AFTER_GPT_INI, gpt_codec.encode(gpt_after)),
    ]
    if scripts is not None and scripts_after is not None:
        ours.append((AFTER_SCRIPTS_INI, scripts[1].encode(scripts_after)))
    for name, data in ours:
        existing = None if missing else volume.child(startup, name)
        if existing is not None:  # left by an interrupted earlier run: ours to replace
            plan.actions.append(_Action("edit", existing, data))
        else:
            plan.actions.append(_Action("create", startup / name, data))
    if scripts is None:
        # Windows writes scripts.ini as UTF-16 LE with a BOM.
        utf16 = _Text("", "utf-16-le", codecs.BOM_UTF16_LE)
        plan.actions.append(
            _Action("create", scripts_dir / "scripts.ini", utf16.encode(scripts_new)))
    elif not listed:
        _edit_action(volume, scripts[0], scripts[1].encode(scripts_new), plan)
    # gpt.ini last: its new version is what makes Windows pick the script up.
    if gpt is None:
        plan.actions.append(_Action("create", gp_dir / "gpt.ini", gpt_codec.encode(gpt_new)))
    else:
        _edit_action(volume, gpt[0], gpt[1].encode(gpt_new), plan)
    plan.notes.append(
        f"installed the one-shot local Group Policy startup script "
        f"{volume.rel(startup / STARTUP_SCRIPT)} (local policy version {version} -> "
        f"{new_version}): at the next boot it runs InitializeInstance.ps1 -Schedule, starts the "
        f"task '{V1_TASK_NAME}', puts {gpt_rel} and scripts.ini back and deletes itself"
    )


def _plan_ec2launch_v1(volume: _Volume, config: Path) -> _AgentPlan:
    plan = _AgentPlan("ec2launch-v1-group-policy-startup-script", limits=list(V1_LIMITS))
    rel = volume.rel(config)
    text = _decode(_read(config, rel), rel)
    new, note = _edit_launch_config(text.text, rel)
    if note is None:
        plan.notes.append("LaunchConfig.json already has adminPasswordType Random")
    else:
        _edit_action(volume, config, text.encode(new), plan)
        plan.notes.append(note)
    _plan_startup_script(volume, plan)
    plan.notes.append("EC2Launch v1 " + NEXT_BOOT_NOTE)
    return plan


# ---------------------------------------------------------------------------------------
# EC2Config


_XML_HIDDEN = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)
_PLUGIN = re.compile(r"<Plugin(?:\s[^>]*)?>(.*?)</Plugin\s*>", re.S)
_NAME = re.compile(r"<Name(?:\s[^>]*)?>([^<]*)</Name\s*>")
_STATE = re.compile(r"<State(?:\s[^>]*)?>([^<]*)</State\s*>|<State(?:\s[^>]*)?/>")
_PLUGINS_END = re.compile(r"</Plugins\s*>")


def _xml_plugins(data: bytes, rel: str) -> List[Tuple[str, str]]:
    """(Name, State) of each Plugin under Plugins, by a parser that refuses DTD entities."""
    plugins: List[Tuple[str, str]] = []
    path: List[str] = []
    text: List[str] = []
    current: Dict[str, str] = {}

    def start(name: str, _attrs: Dict[str, str]) -> None:
        path.append(name)
        text.clear()
        if path[-2:] == ["Plugins", "Plugin"]:
            current.clear()

    def end(name: str) -> None:
        if path[-3:-1] == ["Plugins", "Plugin"] and name in ("Name", "State"):
            current[name] = "".join(text).strip()
        if path[-2:] == ["Plugins", "Plugin"]:
            plugins.append((current.get("Name", ""), current.get("State", "")))
        path.pop()
        text.clear()

    def entity(*_args: object) -> None:
        raise ConfigParseError(f"{rel} declares XML entities: not an EC2Config file, restore it")

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    parser.EntityDeclHandler = entity
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ConfigParseError(f"{rel} is not well-formed XML ({exc}): fix or restore it") from exc
    return plugins


def _edit_ec2config(text: str, rel: str) -> Tuple[str, Optional[str]]:
    # Comments, CDATA and processing instructions blanked out, offsets unchanged.
    masked = _XML_HIDDEN.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    plugins = list(_PLUGIN.finditer(masked))
    targets = []
    for plugin in plugins:
        name = _NAME.search(masked, plugin.start(1), plugin.end(1))
        if name is not None and name.group(1).strip() == "Ec2SetPassword":
            targets.append((plugin, name))
    edits: List[Tuple[int, int, str]] = []
    if not targets:
        plugins_end = _PLUGINS_END.search(masked)
        if plugins_end is None:
            raise ConfigParseError(
                f"{rel} has no <Plugins> element: restore EC2Config's config.xml"
            )
        block = "<Plugin><Name>Ec2SetPassword</Name><State>Enabled</State></Plugin>"
        if plugins:
            last = plugins[-1]
            before = masked[: last.start()]
            lead = before[len(before.rstrip()) :]  # the line break and indent before a Plugin
            block = _NAME.sub("<Name>Ec2SetPassword</Name>", text[last.start() : last.end()], 1)
            block = _STATE.sub("<State>Enabled</State>", block, 1)
            edits.append((last.end(), last.end(), lead + block))
        else:
            edits.append((plugins_end.start(), plugins_end.start(), block))
        note = "config.xml: added plugin Ec2SetPassword Enabled"
    else:
        states = []
        for plugin, name in targets:
            state = _STATE.search(masked, plugin.start(1), plugin.end(1))
            if state is None:
                line_start = masked.rfind("\n", 0, name.start()) + 1
                indent = masked[line_start : name.start()]
                lead = _newline(text) + indent if not indent.strip() else ""
                edits.append((name.end(), name.end(), lead + "<State>Enabled</State>"))
                states.append("(none)")
            elif state.group(1) is None:
                edits.append((state.start(), state.end(), "<State>Enabled</State>"))
                states.append("(empty)")
            elif state.group(1).strip() != "Enabled":
                value = state.group(1)
                start = state.start(1) + len(value) - len(value.lstrip())
                edits.append((start, start + len(value.strip()), "Enabled"))
                states.append(value.strip())
        if not edits:
            return text, None
        note = f"config.xml: plugin Ec2SetPassword {', '.join(states)} -> Enabled"
    new = text
    for start, end, replacement in sorted(edits, reverse=True):
        new = new[:start] + replacement + new[end:]
    return new, note


def _plan_ec2config(volume: _Volume, config: Path) -> _AgentPlan:
    plan = _AgentPlan("ec2config-ec2setpassword")
    rel = volume.rel(config)
    data = _read(config, rel)
    text = _decode(data, rel)
    before = _xml_plugins(data, rel)
    new, note = _edit_ec2config(text.text, rel)
    if note is None:
        plan.notes.append("config.xml already has plugin Ec2SetPassword Enabled")
    else:
        encoded = text.encode(new)
        after = _xml_plugins(encoded, rel)
        expected = [(n, "Enabled" if n == "Ec2SetPassword" else s) for n, s in before]
        if not any(n == "Ec2SetPassword" for n, _ in before):
            expected.append(("Ec2SetPassword", "Enabled"))
        if after != expected:
            raise ConfigParseError(
                f"{rel}: could not enable Ec2SetPassword without touching other plugins; set its "
                "State to Enabled by hand"
            )
        _edit_action(volume, config, encoded, plan)
        plan.notes.append(note)
    plan.notes.append(
        "EC2Config " + NEXT_BOOT_NOTE + "; EC2Config sets Ec2SetPassword back to Disabled"
    )
    return plan


# ---------------------------------------------------------------------------------------
# EC2Launch v2: agent-config.yml, YAML edited line by line


_KEYVAL = re.compile(
    r"""(?P<key>"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#:?,\[\]{}&*!|>%@`-][^#]*?|-[^\s#][^#]*?)"""
    r"""[ \t]*(?P<colon>:)(?:[ \t]+(?P<value>.*?))?[ \t]*$"""
)
_BLOCK_SCALAR = re.compile(r"(?:[&!]\S*[ \t]+)*[|>][1-9+-]{0,2}")


def _strip_comment(text: str) -> str:
    """The text before a YAML comment (a # after a space, outside quotes), right-stripped."""
    quote = ""
    previous = " "
    index = 0
    while index < len(text):
        char = text[index]
        if quote == '"' and char == "\\":
            index += 2
            continue
        if quote:
            if char == quote:
                if quote == "'" and text[index + 1 : index + 2] == "'":
                    index += 2
                    continue
                quote = ""
        elif char == "#" and previous in " \t":
            return text[:index].rstrip()
        elif char in "\"'" and previous in " \t[{,":
            quote = char
        previous = char
        index += 1
    return text.rstrip()


def _dash(text: str, col: int) -> Optional[int]:
    """If a list item's dash is at `col`, the column where its content starts."""
    if text[col : col + 1] != "-" or text[col + 1 : col + 2] not in ("", " ", "\t"):
        return None
    after = col + 1
    while text[after : after + 1] in (" ", "\t"):
        after += 1
    return after


def _unquote(token: str) -> str:
    if token.startswith('"'):
        try:
            return str(json.loads(token))
        except ValueError:
            return token[1:-1]
    if token.startswith("'"):
        return token[1:-1].replace("''", "'")
    return token


@dataclass
class _YLine:
    text: str
    eol: str
    kind: str = "content"  # content | blank | comment | scalar (block scalar body) | marker
    indent: int = 0


@dataclass(frozen=True)
class _Block:
    first: int  # line of the first entry (for a list item's mapping: the dash line)
    col: int  # column of the entries' keys, or of the list's dashes
    end: int  # exclusive
    seq: bool


@dataclass(frozen=True)
class _Key:
    line: int
    key: str
    value: str  # inline value, comment stripped
    value_col: int  # -1 without an inline value
    colon_col: int


class _Yaml:
    """Block-style YAML as lines; just enough structure to find and change one setting."""

    def __init__(self, text: str, rel: str) -> None:
        self.rel = rel
        self.newline = _newline(text)
        self.lines = [_YLine(body, eol) for body, eol in _split_lines(text)]
        self._classify()

    def render(self) -> str:
        return "".join(line.text + line.eol for line in self.lines)

    def error(self, index: int, message: str) -> ConfigParseError:
        return ConfigParseError(
            f"{self.rel} line {index + 1}: {message}; fix the file (or restore AWS's default "
            "agent-config.yml) and retry"
        )

    def _classify(self) -> None:
        scalar_floor: Optional[int] = None
        seen_content = False
        for index, line in enumerate(self.lines):
            stripped = line.text.lstrip(" ")
            line.indent = len(line.text) - len(stripped)
            if scalar_floor is not None:
                if not stripped.strip() or line.indent > scalar_floor:
                    line.kind = "scalar"
                    continue
                scalar_floor = None
            if not stripped.strip():
                line.kind = "blank"
            elif stripped.startswith("#"):
                line.kind = "comment"
            elif stripped.startswith("\t"):
                raise self.error(index, "tabs indent this line (YAML allows spaces only)")
            elif line.indent == 0 and (
                stripped.startswith("%") or re.match(r"(---|\.\.\.)(\s|$)", stripped)
            ):
                if seen_content or _strip_comment(stripped[3:]):
                    raise self.error(index, "several YAML documents, or content after '---'")
                line.kind = "marker"
            else:
                seen_content = True
                scalar_floor = self._block_scalar_floor(line)

    @staticmethod
    def _block_scalar_floor(line: _YLine) -> Optional[int]:
        """If the line opens a block scalar (| or >), the column its body must be right of."""
        col = floor = line.indent
        while True:
            after = _dash(line.text, col)
            if after is None:
                break
            floor, col = col, after
        content = _strip_comment(line.text[col:])
        if _BLOCK_SCALAR.fullmatch(content):
            return floor
        match = _KEYVAL.match(content)
        if match and match.group("value") and _BLOCK_SCALAR.fullmatch(match.group("value")):
            return col
        return None

    # -- structure

    def root(self) -> _Block:
        first = next((i for i, line in enumerate(self.lines) if line.kind == "content"), None)
        if first is None:
            raise ConfigParseError(f"{self.rel} is empty: restore AWS's default agent-config.yml")
        col = self.lines[first].indent
        return _Block(first, col, len(self.lines), _dash(self.lines[first].text, col) is not None)

    def entries(self, block: _Block) -> List[int]:
        found = [block.first]
        for index in range(block.first + 1, block.end):
            line = self.lines[index]
            if line.kind != "content":
                continue
            if line.indent < block.col:
                raise self.error(index, "this line is indented less than its block")
            if line.indent == block.col:
                is_item = _dash(line.text, block.col) is not None
                if block.seq and not is_item:
                    raise self.error(index, "expected a list item ('- ...')")
                if is_item == block.seq:
                    found.append(index)
                # else: an item of the previous key's list, written at the key's own column
        return found

    def keys(self, block: _Block) -> List[_Key]:
        out = []
        for index in self.entries(block):
            content = _strip_comment(self.lines[index].text[block.col :])
            match = _KEYVAL.match(content)
            if match is None:
                raise self.error(index, "expected 'key: value'")
            value = match.group("value") or ""
            value_col = block.col + match.start("value") if value else -1
            out.append(
                _Key(
                    index,
                    _unquote(match.group("key")),
                    value,
                    value_col,
                    block.col + match.start("colon"),
                )
            )
        return out

    def key(self, block: _Block, name: str) -> Optional[_Key]:
        found = [key for key in self.keys(block) if key.key == name]
        if len(found) > 1:
            raise self.error(found[1].line, f"'{name}' appears twice in the same mapping")
        return found[0] if found else None

    def region_end(self, block: _Block, line: int) -> int:
        """Where the entry starting at `line` ends."""
        later = [index for index in self.entries(block) if index > line]
        return later[0] if later else block.end

    def value(self, block: _Block, key: _Key) -> Optional[_Block]:
        """The nested block under a key (a mapping or a list), None if it has none."""
        end = self.region_end(block, key.line)
        for index in range(key.line + 1, end):
            line = self.lines[index]
            if line.kind != "content":
                continue
            is_item = _dash(line.text, line.indent) is not None
            if line.indent > block.col or (line.indent == block.col and is_item):
                return _Block(index, line.indent, end, is_item)
            raise self.error(index, "unexpected indentation")
        return None

    def items(self, seq: _Block) -> List[Tuple[int, int]]:
        starts = self.entries(seq)
        return [
            (start, starts[n + 1] if n + 1 < len(starts) else seq.end)
            for n, start in enumerate(starts)
        ]

    def item_mapping(self, seq: _Block, start: int, end: int) -> Optional[_Block]:
        """The mapping a list item holds, None for a scalar or a nested list."""
        text = self.lines[start].text
        col = _dash(text, seq.col) or seq.col + 1  # items() starts items at dashes only
        inline = _strip_comment(text[col:])
        if inline:
            if _dash(text, col) is not None or not _KEYVAL.match(inline):
                return None
            return _Block(start, col, end, False)
        for index in range(start + 1, end):
            line = self.lines[index]
            if line.kind == "content":
                if line.indent <= seq.col or _dash(line.text, line.indent) is not None:
                    return None
                return _Block(index, line.indent, end, False)
        return None

    def scalar(self, key: Optional[_Key]) -> str:
        if key is None:
            return ""
        value = key.value.strip()
        if value[:1] in ("&", "*", "!"):
            raise self.error(
                key.line, f"anchors, aliases and tags are not supported for '{key.key}'"
            )
        if value[:1] in ("{", "["):
            raise self.error(key.line, f"'{key.key}' is written in flow style ({value})")
        return _unquote(value)

    def last_line(self, start: int, end: int) -> int:
        """The last line of [start, end) that holds content (comments after it are not part)."""
        for index in range(end - 1, start - 1, -1):
            if self.lines[index].kind in ("content", "scalar"):
                return index
        return start

    def entry_col(self, index: int) -> int:
        line = self.lines[index]
        col = line.indent
        while True:
            after = _dash(line.text, col)
            if after is None:
                return col
            col = after

    def step(self) -> int:
        """The file's indentation step, from its first key with a nested mapping."""
        for index, line in enumerate(self.lines):
            if line.kind != "content" or not _strip_comment(line.text).endswith(":"):
                continue
            col = self.entry_col(index)
            below = next(
                (j for j in range(index + 1, len(self.lines)) if self.lines[j].kind == "content"),
                None,
            )
            if below is not None:
                nested = self.lines[below]
                if nested.indent > col and _dash(nested.text, nested.indent) is None:
                    return nested.indent - col
        return 2

    # -- changes

    def insert_after(self, index: int, bodies: List[str]) -> None:
        new = [_YLine(body, self.newline) for body in bodies]
        if not self.lines[index].eol:  # the file's last line, with no line ending
            self.lines[index].eol = self.newline
            new[-1].eol = ""
        self.lines[index + 1 : index + 1] = new

    def insert_before(self, index: int, bodies: List[str]) -> None:
        self.lines[index:index] = [_YLine(body, self.newline) for body in bodies]

    def set_value(self, key: _Key, value: str) -> None:
        line = self.lines[key.line]
        if key.value_col < 0:
            line.text = (
                line.text[: key.colon_col + 1] + " " + value + line.text[key.colon_col + 1 :]
            )
            return
        old = key.value.strip()
        quote = old[0] if old[:1] in ("'", '"') else ""
        line.text = (
            line.text[: key.value_col]
            + quote
            + value
            + quote
            + line.text[key.value_col + len(key.value) :]
        )

    def drop_inline(self, key: _Key) -> None:
        """Remove an inline empty collection ({} or []) so a block can follow the key."""
        line = self.lines[key.line]
        line.text = line.text[: key.colon_col + 1] + line.text[key.value_col + len(key.value) :]

    def remove_entry(self, key: _Key) -> None:
        """Delete a key's line and the lines nested under it, not the comments after it."""
        end = key.line + 1
        col = self.entry_col(key.line)
        while end < len(self.lines):
            line = self.lines[end]
            if not (line.kind == "scalar" or (line.kind == "content" and line.indent > col)):
                break
            end += 1
        del self.lines[key.line : end]


def _admin_task_lines(dash_col: int, offset: int, step: int) -> List[str]:
    key = dash_col + offset
    return [
        " " * dash_col + "-" + " " * (offset - 1) + "task: setAdminAccount",
        " " * key + "inputs:",
        " " * (key + step) + "password:",
        " " * (key + 2 * step) + "type: random",
    ]


@dataclass
class _V2Layout:
    step: int  # nested mapping indentation
    list_indent: int  # 0 when lists sit at their key's column ("indentless"), else step
    offset: int  # from a dash to its item's first key


def _v2_yaml_next_edit(doc: _Yaml) -> Optional[str]:
    """Make the one next change toward the goal; None when the file already meets it."""
    root = doc.root()
    if root.seq:
        raise doc.error(root.first, "the top level is a list; expected 'version' and 'config'")
    config = doc.key(root, "config")
    if config is None:
        raise ConfigParseError(
            f"{doc.rel} has no 'config' list: restore AWS's default agent-config.yml"
        )
    stages = doc.value(root, config)
    if config.value or stages is None or not stages.seq:
        raise doc.error(config.line, "'config' must be a block list of stages")
    step = doc.step()
    layout = _V2Layout(step, stages.col - root.col, 2)
    found = []
    for start, end in doc.items(stages):
        mapping = doc.item_mapping(stages, start, end)
        if mapping is None:
            raise doc.error(start, "a stage must be a mapping with 'stage' and 'tasks'")
        layout.offset = mapping.col - stages.col
        found.append((start, mapping, doc.scalar(doc.key(mapping, "stage")).casefold()))
    pre = [mapping for _, mapping, name in found if name == "preready"]
    if not pre:
        key_col = stages.col + layout.offset
        bodies = [
            " " * stages.col + "-" + " " * (layout.offset - 1) + "stage: preReady",
            " " * key_col + "tasks:",
            *_admin_task_lines(key_col + layout.list_indent, layout.offset, step),
        ]
        later = [start for start, _, name in found if name in ("postready", "userdata")]
        if later and later[0] == stages.first:
            doc.insert_before(later[0], bodies)
        else:
            doc.insert_after(doc.last_line(stages.first, later[0] if later else stages.end), bodies)
        return "agent-config.yml: added stage preReady with task setAdminAccount (password random)"
    for mapping in pre:
        change = _v2_fix_stage(doc, mapping, layout)
        if change:
            return change
    return None


def _v2_fix_stage(doc: _Yaml, stage: _Block, layout: _V2Layout) -> Optional[str]:
    added = "agent-config.yml: added task setAdminAccount (password random) to stage preReady"
    tasks = doc.key(stage, "tasks")
    if tasks is None:
        doc.insert_after(
            doc.last_line(stage.first, stage.end),
            [
                " " * stage.col + "tasks:",
                *_admin_task_lines(stage.col + layout.list_indent, layout.offset, layout.step),
            ],
        )
        return added
    if tasks.value.strip() == "[]":
        doc.drop_inline(tasks)
    elif tasks.value:
        raise doc.error(tasks.line, "'tasks' must be a block list")
    items = doc.value(stage, tasks)
    if items is None:
        doc.insert_after(
            tasks.line,
            _admin_task_lines(stage.col + layout.list_indent, layout.offset, layout.step),
        )
        return added
    if not items.seq:
        raise doc.error(items.first, "'tasks' must be a list of tasks")
    admins = []
    for start, end in doc.items(items):
        mapping = doc.item_mapping(items, start, end)
        if mapping is None:
            raise doc.error(start, "a task must be a mapping with 'task'")
        layout.offset = mapping.col - items.col
        if doc.scalar(doc.key(mapping, "task")).casefold() == "setadminaccount":
            admins.append(mapping)
    if not admins:
        doc.insert_after(
            doc.last_line(items.first, items.end),
            _admin_task_lines(items.col, layout.offset, layout.step),
        )
        return added
    for mapping in admins:
        change = _v2_fix_admin(doc, mapping, layout.step)
        if change:
            return change
    return None


def _v2_fix_admin(doc: _Yaml, task: _Block, step: int) -> Optional[str]:
    added = "agent-config.yml: setAdminAccount had no password type, set it to random"
    inputs = doc.key(task, "inputs")
    if inputs is None:
        doc.insert_after(
            doc.last_line(task.first, task.end),
            [
                " " * task.col + "inputs:",
                " " * (task.col + step) + "password:",
                " " * (task.col + 2 * step) + "type: random",
            ],
        )
        return added
    if inputs.value.strip() == "{}":
        doc.drop_inline(inputs)
    elif inputs.value:
        raise doc.error(inputs.line, "setAdminAccount 'inputs' must be a block mapping")
    block = doc.value(task, inputs)
    if block is None:
        doc.insert_after(
            inputs.line,
            [" " * (task.col + step) + "password:", " " * (task.col + 2 * step) + "type: random"],
        )
        return added
    if block.seq:
        raise doc.error(block.first, "setAdminAccount 'inputs' must be a mapping")
    password = doc.key(block, "password")
    if password is None:
        doc.insert_after(
            doc.last_line(block.first, block.end),
            [" " * block.col + "password:", " " * (block.col + step) + "type: random"],
        )
        return added
    if password.value.strip() == "{}":
        doc.drop_inline(password)
    elif password.value:
        raise doc.error(
            password.line, "setAdminAccount 'password' must be a block mapping with 'type'"
        )
    settings = doc.value(block, password)
    if settings is None:
        doc.insert_after(password.line, [" " * (block.col + step) + "type: random"])
        return added
    if settings.seq:
        raise doc.error(settings.first, "setAdminAccount 'password' must be a mapping")
    kind = doc.key(settings, "type")
    old = doc.scalar(kind)
    if old.casefold() == "random":
        return None
    data = doc.key(settings, "data")
    if data is not None:
        # 'data' holds the static password: meaningless once the type is random (and it could
        # make EC2Launch refuse the file). The backup keeps it.
        doc.remove_entry(data)
        return ("agent-config.yml: removed setAdminAccount's static password 'data' (kept in "
                "the backup), as the password type becomes random")
    if kind is None:
        doc.insert_after(doc.last_line(settings.first, settings.end),
                         [" " * settings.col + "type: random"])
    else:
        doc.set_value(kind, "random")
    return f"agent-config.yml: setAdminAccount password type {old or '(none)'} -> random"


def _v2_json_next_edit(text: str, rel: str) -> Tuple[str, Optional[str]]:
    root = _jparse(text, rel)
    config = _jmembers(root, "config") if root.kind == "object" else []
    if not config or config[0][1].kind != "array":
        raise ConfigParseError(
            f"{rel} has no 'config' list: restore AWS's default agent-config.yml"
        )
    stages = config[0][1]
    admin_task = '{"task": "setAdminAccount", "inputs": {"password": {"type": "random"}}}'
    pre = []
    for stage in stages.items:
        name = _jmembers(stage, "stage") if stage.kind == "object" else []
        if name and str(name[0][1].value).casefold() == "preready":
            pre.append(stage)
    if not pre:
        new = f'{{"stage": "preReady", "tasks": [{admin_task}]}}'
        return _jappend(
            text, stages, new
        ), "agent-config.yml: added stage preReady with setAdminAccount"
    for stage in pre:
        tasks = _jmembers(stage, "tasks")
        if not tasks:
            return _jmember(
                text, stage, "tasks", f"[{admin_task}]"
            ), "agent-config.yml: added setAdminAccount"
        items = tasks[0][1]
        if items.kind != "array":
            raise ConfigParseError(f"{rel}: 'tasks' of stage preReady is not a list")
        admins = [
            t
            for t in items.items
            if t.kind == "object"
            and any(str(v.value).casefold() == "setadminaccount" for _, v in _jmembers(t, "task"))
        ]
        if not admins:
            return _jappend(text, items, admin_task), "agent-config.yml: added setAdminAccount"
        for task in admins:
            change = _v2_json_fix_admin(text, task, rel)
            if change[1]:
                return change
    return text, None


def _v2_json_fix_admin(text: str, task: _JNode, rel: str) -> Tuple[str, Optional[str]]:
    added = "agent-config.yml: setAdminAccount had no password type, set it to random"
    inputs = _jmembers(task, "inputs")
    if not inputs:
        return _jmember(text, task, "inputs", '{"password": {"type": "random"}}'), added
    password = _jmembers(inputs[0][1], "password") if inputs[0][1].kind == "object" else None
    if password is None:
        raise ConfigParseError(f"{rel}: setAdminAccount 'inputs' is not an object")
    if not password:
        return _jmember(text, inputs[0][1], "password", '{"type": "random"}'), added
    settings = password[0][1]
    if settings.kind != "object":
        raise ConfigParseError(f"{rel}: setAdminAccount 'password' is not an object")
    kind = _jmembers(settings, "type")
    if not kind:
        return _jmember(text, settings, "type", '"random"'), added
    old = kind[0][1]
    if str(old.value).casefold() == "random":
        return text, None
    data = _jmembers(settings, "data")
    if data:  # the static password, meaningless once the type is random; the backup keeps it
        return _jremove_member(text, settings, data[0][0]), (
            "agent-config.yml: removed setAdminAccount's static password 'data' (kept in the "
            "backup), as the password type becomes random")
    note = f"agent-config.yml: setAdminAccount password type {old.value} -> random"
    return _jsplice(text, old.start, old.end, '"random"'), note


def _edit_agent_config(text: str, rel: str) -> Tuple[str, List[str]]:
    """agent-config.yml with setAdminAccount random in preReady, and what changed."""
    notes: List[str] = []
    is_json = text.lstrip().startswith("{")  # agent-config.yml may hold JSON (AWS shows both)
    for _ in range(12):  # each round makes one change; a file needs at most a few
        if is_json:
            new, change = _v2_json_next_edit(text, rel)
        else:
            doc = _Yaml(text, rel)
            change = _v2_yaml_next_edit(doc)
            new = doc.render()
        if change is None:
            return text, notes
        notes.append(change)
        text = new
    raise ConfigParseError(f"{rel}: editing did not settle; set setAdminAccount by hand")


def _plan_ec2launch_v2(volume: _Volume, config: Path) -> _AgentPlan:
    plan = _AgentPlan(
        "ec2launch-v2-run-once-reset",
        limits=[
            "EC2Launch v2 runs every task whose frequency is 'once' again at the next boot "
            "(AWS: 'Any scripts set to run once will be triggered'), user data included"
        ],
    )
    rel = volume.rel(config)
    text = _decode(_read(config, rel), rel)
    new, notes = _edit_agent_config(text.text, rel)
    if notes:
        _edit_action(volume, config, text.encode(new), plan)
        plan.notes.extend(notes)
    else:
        plan.notes.append(
            "agent-config.yml already has setAdminAccount with a random password in preReady"
        )
    run_once = volume.find_file(RUN_ONCE)
    if run_once is None:
        plan.notes.append(
            "no .run-once state file: EC2Launch v2 already runs its once tasks at the next boot"
        )
    else:
        aside = run_once.name + BACKUP_SUFFIX
        if volume.child(run_once.parent, aside) is None:
            plan.actions.append(_Action("rename", run_once, target=run_once.parent / aside))
        else:
            plan.actions.append(_Action("remove", run_once))
        plan.notes.append(
            "removed .run-once: EC2Launch v2 runs every task with frequency 'once' again at the "
            "next boot, not only setAdminAccount (AWS: any scripts set to run once will be "
            "triggered)"
        )
    plan.notes.append("EC2Launch v2 " + NEXT_BOOT_NOTE)
    return plan


# ---------------------------------------------------------------------------------------
# Entry point


PLANNERS = {
    EC2LAUNCH_V2: _plan_ec2launch_v2,
    EC2LAUNCH_V1: _plan_ec2launch_v1,
    EC2CONFIG: _plan_ec2config,
}


def enable_password_generation(root: Path, *, dry_run: bool = False) -> Dict[str, Any]:
    """Make the volume's launch agent set a new random Administrator password at next boot.

    Returns what it found and did: {"agent", "agents_found", "method", "changed",
    "dry_run", "changed_files", "created_files", "removed_files", "backups", "notes",
    "limits"}, paths relative to `root`. Raises NoLaunchAgentError when no agent is
    configured, ConfigParseError when a file cannot be edited safely (both are
    WindowsRescueError, a RescueError); nothing is written then. With dry_run nothing is
    written either, and the lists say what would change.
    """
    volume = _Volume(Path(root))
    found: List[Tuple[_Agent, Path, bool]] = []
    for agent in AGENTS:
        config = volume.find_file(agent.config)
        if config is not None:
            installed = any(volume.find(program) is not None for program in agent.programs)
            found.append((agent, config, installed))
    if not found:
        raise NoLaunchAgentError(
            "no EC2 launch agent configuration on this volume (looked for "
            + ", ".join(agent.config for agent in AGENTS)
            + "): check that it is the Windows system partition; without a launch agent, reset "
            "the password online (Mode online, AWSSupport-RunEC2RescueForWindowsTool) or "
            "with EC2Rescue for Windows on a Windows helper"
        )
    agent, config, installed = next((item for item in found if item[2]), found[0])
    if agent.name == EC2LAUNCH_V1 and not installed:
        raise WindowsRescueError(
            f"EC2Launch v1 is configured but {INITIALIZE_INSTANCE} is missing, so it cannot run: "
            "reinstall EC2Launch (or migrate to EC2Launch v2) and retry"
        )
    plan = PLANNERS[agent.name](volume, config)
    notes = []
    if len(found) > 1:
        others = ", ".join(item[0].name for item in found if item[0] is not agent)
        notes.append(
            f"also configured: {others}; only {agent.name} was changed, as it is the "
            "agent " + ("installed" if installed else "preferred") + " on this volume"
        )
    if not installed:
        notes.append(
            f"none of {agent.name}'s program files were found ({', '.join(agent.programs)}): "
            "if it is not installed, no password will be generated"
        )
    if not dry_run:
        _execute(plan.actions)

    def rels(kinds: Tuple[str, ...]) -> List[str]:
        return [volume.rel(a.path) for a in plan.actions if a.kind in kinds]

    backups = [volume.rel(a.backup) for a in plan.actions if a.backup is not None]
    backups += [volume.rel(a.target) for a in plan.actions if a.target is not None]
    backups += [volume.rel(path) for path in plan.backups_kept]
    return {
        "agent": agent.name,
        "agents_found": [item[0].name for item in found],
        "method": plan.method,
        "changed": bool(plan.actions),
        "dry_run": dry_run,
        "changed_files": rels(("edit",)),
        "created_files": rels(("create", "mkdir")),
        "removed_files": rels(("rename", "remove")),
        "backups": backups,
        "notes": notes + plan.notes,
        "limits": plan.limits,
    }
