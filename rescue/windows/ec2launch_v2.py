"""EC2Launch v2: task setAdminAccount with a random password in stage preReady of
agent-config.yml (YAML or JSON, edited in place), and state/.run-once moved aside.

Design, AWS sources and limits: docs/rescue-windows.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from . import json_splice as js
from .encoding import decode_text
from .errors import ConfigParseError
from .plan import BACKUP_SUFFIX, NEXT_BOOT_NOTE, Action, AgentPlan, edit_action
from .volume import Volume, read_config
from .yaml_subset import Block, Key, YamlDocument

NAME = "ec2launch-v2"
CONFIG = "ProgramData/Amazon/EC2Launch/config/agent-config.yml"
PROGRAMS = (
    "Program Files/Amazon/EC2Launch/EC2Launch.exe",
    "Program Files/Amazon/EC2Launch/service/EC2LaunchService.exe",
)
RUN_ONCE = "ProgramData/Amazon/EC2Launch/state/.run-once"


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


def _v2_yaml_next_edit(doc: YamlDocument) -> Optional[str]:
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


def _v2_fix_stage(doc: YamlDocument, stage: Block, layout: _V2Layout) -> Optional[str]:
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
    _v2_unfold(doc, tasks, "[]", "'tasks' must be a block list")
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


def _v2_unfold(doc: YamlDocument, key: Key, empty: str, message: str) -> None:
    """An inline empty value ({} or []) becomes a block to fill in; any other is refused."""
    if key.value.strip() == empty:
        doc.drop_inline(key)
    elif key.value:
        raise doc.error(key.line, message)


def _v2_fix_admin(doc: YamlDocument, task: Block, step: int) -> Optional[str]:
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
    _v2_unfold(doc, inputs, "{}", "setAdminAccount 'inputs' must be a block mapping")
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
    _v2_unfold(
        doc, password, "{}", "setAdminAccount 'password' must be a block mapping with 'type'"
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
        return (
            "agent-config.yml: removed setAdminAccount's static password 'data' (kept in "
            "the backup), as the password type becomes random"
        )
    if kind is None:
        doc.insert_after(
            doc.last_line(settings.first, settings.end), [" " * settings.col + "type: random"]
        )
    else:
        doc.set_value(kind, "random")
    return f"agent-config.yml: setAdminAccount password type {old or '(none)'} -> random"


def _v2_json_next_edit(text: str, rel: str) -> Tuple[str, Optional[str]]:
    root = js.parse(text, rel)
    config = js.members(root, "config") if root.kind == "object" else []
    if not config or config[0][1].kind != "array":
        raise ConfigParseError(
            f"{rel} has no 'config' list: restore AWS's default agent-config.yml"
        )
    stages = config[0][1]
    admin_task = '{"task": "setAdminAccount", "inputs": {"password": {"type": "random"}}}'
    pre = []
    for stage in stages.items:
        name = js.members(stage, "stage") if stage.kind == "object" else []
        if name and str(name[0][1].value).casefold() == "preready":
            pre.append(stage)
    if not pre:
        new = f'{{"stage": "preReady", "tasks": [{admin_task}]}}'
        return js.append(
            text, stages, new
        ), "agent-config.yml: added stage preReady with setAdminAccount"
    for stage in pre:
        tasks = js.members(stage, "tasks")
        if not tasks:
            return js.add_member(
                text, stage, "tasks", f"[{admin_task}]"
            ), "agent-config.yml: added setAdminAccount"
        items = tasks[0][1]
        if items.kind != "array":
            raise ConfigParseError(f"{rel}: 'tasks' of stage preReady is not a list")
        admins = [
            t
            for t in items.items
            if t.kind == "object"
            and any(str(v.value).casefold() == "setadminaccount" for _, v in js.members(t, "task"))
        ]
        if not admins:
            return js.append(text, items, admin_task), "agent-config.yml: added setAdminAccount"
        for task in admins:
            change = _v2_json_fix_admin(text, task, rel)
            if change[1]:
                return change
    return text, None


def _v2_json_fix_admin(text: str, task: js.JNode, rel: str) -> Tuple[str, Optional[str]]:
    added = "agent-config.yml: setAdminAccount had no password type, set it to random"
    inputs = js.members(task, "inputs")
    if not inputs:
        return js.add_member(text, task, "inputs", '{"password": {"type": "random"}}'), added
    password = js.members(inputs[0][1], "password") if inputs[0][1].kind == "object" else None
    if password is None:
        raise ConfigParseError(f"{rel}: setAdminAccount 'inputs' is not an object")
    if not password:
        return js.add_member(text, inputs[0][1], "password", '{"type": "random"}'), added
    settings = password[0][1]
    if settings.kind != "object":
        raise ConfigParseError(f"{rel}: setAdminAccount 'password' is not an object")
    kind = js.members(settings, "type")
    if not kind:
        return js.add_member(text, settings, "type", '"random"'), added
    old = kind[0][1]
    if str(old.value).casefold() == "random":
        return text, None
    data = js.members(settings, "data")
    if data:  # the static password, meaningless once the type is random; the backup keeps it
        return js.remove_member(text, settings, data[0][0]), (
            "agent-config.yml: removed setAdminAccount's static password 'data' (kept in the "
            "backup), as the password type becomes random"
        )
    note = f"agent-config.yml: setAdminAccount password type {old.value} -> random"
    return js.splice(text, old.start, old.end, '"random"'), note


def edit_agent_config(text: str, rel: str) -> Tuple[str, List[str]]:
    """agent-config.yml with setAdminAccount random in preReady, and what changed."""
    notes: List[str] = []
    is_json = text.lstrip().startswith("{")  # agent-config.yml may hold JSON (AWS shows both)
    for _ in range(12):  # each round makes one change; a file needs at most a few
        if is_json:
            new, change = _v2_json_next_edit(text, rel)
        else:
            doc = YamlDocument(text, rel)
            change = _v2_yaml_next_edit(doc)
            new = doc.render()
        if change is None:
            return text, notes
        notes.append(change)
        text = new
    raise ConfigParseError(f"{rel}: editing did not settle; set setAdminAccount by hand")


def plan(volume: Volume, config: Path) -> AgentPlan:
    plan = AgentPlan(
        "ec2launch-v2-run-once-reset",
        limits=[
            "EC2Launch v2 runs every task whose frequency is 'once' again at the next boot "
            "(AWS: 'Any scripts set to run once will be triggered'), user data included"
        ],
    )
    rel = volume.rel(config)
    text = decode_text(read_config(config, rel), rel)
    new, notes = edit_agent_config(text.text, rel)
    if notes:
        edit_action(volume, config, text.encode(new), plan)
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
            plan.actions.append(Action("rename", run_once, target=run_once.parent / aside))
        else:
            plan.actions.append(Action("remove", run_once))
        plan.notes.append(
            "removed .run-once: EC2Launch v2 runs every task with frequency 'once' again at the "
            "next boot, not only setAdminAccount (AWS: any scripts set to run once will be "
            "triggered)"
        )
    plan.notes.append("EC2Launch v2 " + NEXT_BOOT_NOTE)
    return plan
