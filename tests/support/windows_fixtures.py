"""Windows volumes for the Windows half of the agent: realistic launch agent files and trees.

Each agent's default files are the local engine's (local/volumes.py), under the names these
tests use. Added here, in the shapes the agents really use: agent-config.yml as Go's YAML
writer emits it (lists at their key's column), one an administrator edited (comments, blank
lines, a script whose body looks like configuration), the JSON form AWS also shows, and the
Group Policy files. `make_tree` lays one out as a Windows system partition; `snapshot` reads a
tree back.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

from local import volumes
from local.volumes import windows_agent_files
from rescue.windows import enable_password_generation

AGENT_CONFIG_REL = volumes.WINDOWS_AGENT_CONFIG_REL
RUN_ONCE_REL = volumes.WINDOWS_RUN_ONCE_REL
LAUNCH_CONFIG_REL = volumes.WINDOWS_LAUNCH_CONFIG_REL
EC2CONFIG_REL = volumes.WINDOWS_EC2CONFIG_REL
AGENT_CONFIG_AWS = volumes.WINDOWS_AGENT_CONFIG_V2
LAUNCH_CONFIG = volumes.WINDOWS_LAUNCH_CONFIG_V1
EC2CONFIG_XML = volumes.WINDOWS_EC2CONFIG_XML
CONFIGS = volumes.WINDOWS_CONFIGS
SYSTEM_FILES = volumes.WINDOWS_SYSTEM_FILES
snapshot = volumes.read_tree

GPT_INI_REL = "Windows/System32/GroupPolicy/gpt.ini"
SCRIPTS_INI_REL = "Windows/System32/GroupPolicy/Machine/Scripts/scripts.ini"
STARTUP_REL = "Windows/System32/GroupPolicy/Machine/Scripts/Startup"

# As Go's YAML writer (the settings dialog, `ec2launch` itself) emits it: lists at the
# key's column, two-space steps.
AGENT_CONFIG_MARSHALLED = """\
version: "1.1"
config:
- stage: boot
  tasks:
  - task: extendRootPartition
- stage: preReady
  tasks:
  - task: activateWindows
    inputs:
      activation:
        type: amazon
  - task: setAdminAccount
    inputs:
      name: Administrator
      password:
        type: doNothing
  - task: setWallpaper
    inputs:
      attributes:
      - hostName
      - instanceId
      path: C:\\ProgramData\\Amazon\\EC2Launch\\wallpaper\\Ec2Wallpaper.jpg
- stage: postReady
  tasks:
  - task: startSsm
  - task: enableOpenSsh
"""

# Edited by hand: comments, blank lines, four-space steps, a quoted static password and an
# executeScript whose body contains lines that look like the keys the agent looks for.
AGENT_CONFIG_CUSTOM = """\
# EC2Launch v2 configuration for the web fleet (managed by ops, ticket OPS-1432)
version: 1.0
config:
    - stage: boot
      tasks:
          - task: extendRootPartition

    # anything below runs before Windows reports ready
    - stage: preReady   # keep in sync with the golden image
      tasks:
          - task: activateWindows
            inputs:
                activation:
                    type: amazon
          - task: executeScript
            inputs:
                - frequency: once
                  type: powershell
                  runAs: localSystem
                  content: |-
                      # a script that prints configuration, not configuration
                      Write-Output @"
                      - task: setAdminAccount
                        inputs:
                          password:
                            type: static
                      "@
                      Set-Content C:\\setup\\stage.txt 'stage: preReady'
          - task: setAdminAccount
            inputs:
                name: "Administrator"
                password:
                    type: "static"   # rotated by the vault job
                    data: 'Tr0ub4dor&3'
                expire: false

          - task: setWallpaper
            inputs:
                path: C:\\ProgramData\\Amazon\\EC2Launch\\wallpaper\\Ec2Wallpaper.jpg

    - stage: postReady
      tasks:
          - task: startSsm
# end of file"""

# The JSON form (AWS shows `ec2launch get-agent-config --format json | ... | Out-File`).
AGENT_CONFIG_JSON = """\
{
    "version":  "1.0",
    "config":  [
                   {
                       "stage":  "boot",
                       "tasks":  [
                                     {
                                         "task":  "extendRootPartition"
                                     }
                                 ]
                   },
                   {
                       "stage":  "preReady",
                       "tasks":  [
                                     {
                                         "task":  "setAdminAccount",
                                         "inputs":  {
                                                        "password":  {
                                                                         "type":  "static",
                                                                         "data":  "Winter2024!"
                                                                     }
                                                    }
                                     }
                                 ]
                   }
               ]
}
"""

# A local policy that already has settings (Registry extension) and a startup script.
GPT_INI_EXISTING = (
    "[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames="
    "[{35378EAC-683F-11D2-A89A-0000F87571E3}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]\r\n"
    "Version=65537\r\n"
)
SCRIPTS_INI_EXISTING = "\r\n[Startup]\r\n0CmdLine=inventory.cmd\r\n0Parameters=/quiet\r\n"


def encode(text: str, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    """The text with `newline` line endings in one of: utf-8, utf-8-sig, utf-16-le-bom."""
    text = text.replace("\r\n", "\n").replace("\n", newline)
    if encoding == "utf-16-le-bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    return text.encode(encoding)


def decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF16_LE):
        return data[2:].decode("utf-16-le")
    return data.decode("utf-8-sig")


def write(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_tree(
    root: Path,
    agent: str,
    config: bytes | None = None,
    programs: bool = True,
    run_once: bool = True,
) -> Path:
    """A Windows system partition with `agent` configured (its default file, or `config`),
    as the local engine lays one out."""
    files = {**SYSTEM_FILES, **windows_agent_files(agent, programs=programs, run_once=run_once)}
    rel = CONFIGS[agent][0]
    if config is not None:
        files[rel] = config
    for path, data in files.items():
        write(root, path, data)
    return root / rel


def enable_on(
    root: Path, agent: str, config: bytes | None = None
) -> tuple[dict[str, bytes], dict[str, Any], dict[str, bytes]]:
    """A volume with `agent` (configured by `config`), before and after the agent enables
    password generation on it: (files before, the agent's result, files after)."""
    make_tree(root, agent, config=config)
    before = snapshot(root)
    result = enable_password_generation(root)
    return before, result, snapshot(root)
