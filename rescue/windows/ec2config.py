"""EC2Config: plugin Ec2SetPassword Enabled in config.xml, every other byte as it was.

EC2Config sets the plugin back to Disabled once it has run.
Design, AWS sources and limits: docs/rescue-windows.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from xml.parsers import expat

from .encoding import decode_text, line_ending
from .errors import ConfigParseError
from .plan import NEXT_BOOT_NOTE, AgentPlan, edit_action
from .volume import Volume, read_config

NAME = "ec2config"
CONFIG = "Program Files/Amazon/Ec2ConfigService/Settings/config.xml"
PROGRAMS = ("Program Files/Amazon/Ec2ConfigService/Ec2Config.exe",)


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


def edit_ec2config(text: str, rel: str) -> Tuple[str, Optional[str]]:
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
                lead = line_ending(text) + indent if not indent.strip() else ""
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


def plan(volume: Volume, config: Path) -> AgentPlan:
    plan = AgentPlan("ec2config-ec2setpassword")
    rel = volume.rel(config)
    data = read_config(config, rel)
    text = decode_text(data, rel)
    before = _xml_plugins(data, rel)
    new, note = edit_ec2config(text.text, rel)
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
        edit_action(volume, config, encoded, plan)
        plan.notes.append(note)
    plan.notes.append(
        "EC2Config " + NEXT_BOOT_NOTE + "; EC2Config sets Ec2SetPassword back to Disabled"
    )
    return plan
