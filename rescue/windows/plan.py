"""A launch agent's plan: everything is decided (and every file parsed) before the first
write, so a refusal changes nothing; then the plan's actions run in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from .ntfs_acl import protect
from .volume import Volume, create_file, read_config, rewrite

BACKUP_SUFFIX = ".reset-access.bak"
NEXT_BOOT_NOTE = (
    "at the next boot Windows gets a new random Administrator password; EC2 returns it "
    "encrypted with the instance's key pair (GetPasswordData, or Connect > RDP client > "
    "Get password); allow up to 15 minutes after the start"
)


@dataclass
class Action:
    kind: str  # mkdir | create | edit | remove | rename
    path: Path
    data: bytes = b""
    target: Optional[Path] = None  # rename: the new name
    backup: Optional[Path] = None  # edit: the backup to write first (None: ours, or exists)


@dataclass
class AgentPlan:
    method: str
    actions: List[Action] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    limits: List[str] = field(default_factory=list)
    backups_kept: List[Path] = field(default_factory=list)


def edit_action(volume: Volume, path: Path, data: bytes, plan: AgentPlan) -> None:
    """An in-place edit preceded by a backup, unless an earlier run's backup is there."""
    name = path.name + BACKUP_SUFFIX
    existing = volume.child(path.parent, name)
    if existing is None:
        plan.actions.append(Action("edit", path, data, backup=path.parent / name))
    else:
        plan.backups_kept.append(existing)
        plan.actions.append(Action("edit", path, data))


def execute(actions: List[Action]) -> None:
    for action in actions:
        if action.kind == "mkdir":
            action.path.mkdir()
            protect(action.path, None, directory=True)
        elif action.kind == "create":
            create_file(action.path, action.data)
            protect(action.path, None, directory=False)
        elif action.kind == "edit":
            if action.backup is not None:
                create_file(action.backup, read_config(action.path, action.path.name))
                protect(action.backup, action.path, directory=False)
            rewrite(action.path, action.data)
        elif action.kind == "rename" and action.target is not None:
            action.path.rename(action.target)
        elif action.kind == "remove":
            action.path.unlink()
