"""The entry point: find the volume's launch agent and run its plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from . import ec2config, ec2launch_v1, ec2launch_v2
from .errors import NoLaunchAgentError, WindowsRescueError
from .plan import AgentPlan, execute
from .volume import Volume


@dataclass(frozen=True)
class Agent:
    name: str
    config: str
    programs: Tuple[str, ...]
    plan: Callable[[Volume, Path], AgentPlan]


# The preferred first when several are configured.
AGENTS = (
    Agent(ec2launch_v2.NAME, ec2launch_v2.CONFIG, ec2launch_v2.PROGRAMS, ec2launch_v2.plan),
    Agent(
        ec2launch_v1.NAME,
        ec2launch_v1.CONFIG,
        (ec2launch_v1.INITIALIZE_INSTANCE,),
        ec2launch_v1.plan,
    ),
    Agent(ec2config.NAME, ec2config.CONFIG, ec2config.PROGRAMS, ec2config.plan),
)


def enable_password_generation(root: Path, *, dry_run: bool = False) -> Dict[str, Any]:
    """Make the volume's launch agent set a new random Administrator password at next boot.

    Returns what it found and did: {"agent", "agents_found", "method", "changed",
    "dry_run", "changed_files", "created_files", "removed_files", "backups", "notes",
    "limits"}, paths relative to `root`. Raises NoLaunchAgentError when no agent is
    configured, ConfigParseError when a file cannot be edited safely (both are
    WindowsRescueError, a RescueError); nothing is written then. With dry_run nothing is
    written either, and the lists say what would change.
    """
    volume = Volume(Path(root))
    found: List[Tuple[Agent, Path, bool]] = []
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
    if agent.name == ec2launch_v1.NAME and not installed:
        raise WindowsRescueError(
            f"EC2Launch v1 is configured but {ec2launch_v1.INITIALIZE_INSTANCE} is missing, so "
            "it cannot run: reinstall EC2Launch (or migrate to EC2Launch v2) and retry"
        )
    plan = agent.plan(volume, config)
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
        execute(plan.actions)

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
