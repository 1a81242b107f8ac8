"""Windows volumes for the Windows half of the agent: realistic launch agent files and trees.

The sample files are written for these tests in the shapes the agents really use: the
agent-config.yml AWS documents (lists indented under their keys), the same file as Go's
YAML writer emits it (lists at their key's column), one an administrator edited (comments,
blank lines, a script whose body looks like configuration), the JSON form AWS also shows,
LaunchConfig.json as PowerShell's ConvertTo-Json writes it, and EC2Config's config.xml.
`make_tree` lays one out as a Windows system partition; `snapshot` reads a tree back.
"""

from __future__ import annotations

import codecs
from pathlib import Path

AGENT_CONFIG_REL = "ProgramData/Amazon/EC2Launch/config/agent-config.yml"
RUN_ONCE_REL = "ProgramData/Amazon/EC2Launch/state/.run-once"
LAUNCH_CONFIG_REL = "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json"
INITIALIZE_REL = "ProgramData/Amazon/EC2-Windows/Launch/Scripts/InitializeInstance.ps1"
EC2CONFIG_REL = "Program Files/Amazon/Ec2ConfigService/Settings/config.xml"
GPT_INI_REL = "Windows/System32/GroupPolicy/gpt.ini"
SCRIPTS_INI_REL = "Windows/System32/GroupPolicy/Machine/Scripts/scripts.ini"
STARTUP_REL = "Windows/System32/GroupPolicy/Machine/Scripts/Startup"

# As in AWS's EC2Launch v2 settings page: lists indented under their keys.
AGENT_CONFIG_AWS = """\
version: 1.0
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
      - task: setDnsSuffix
        inputs:
          suffixes:
            - $REGION.ec2-utilities.amazonaws.com
      - task: setAdminAccount
        inputs:
          password:
            type: random
      - task: setWallpaper
        inputs:
          path: C:\\ProgramData\\Amazon\\EC2Launch\\wallpaper\\Ec2Wallpaper.jpg
          attributes:
            - hostName
            - instanceId
            - privateIpAddress
            - publicIpAddress
            - instanceSize
            - availabilityZone
            - architecture
            - memory
            - network
  - stage: postReady
    tasks:
      - task: startSsm
"""

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

# PowerShell's ConvertTo-Json layout (two spaces after the colon), after the first boot.
LAUNCH_CONFIG = """\
{
    "setComputerName":  false,
    "setMonitorAlwaysOn":  false,
    "setWallpaper":  true,
    "addDnsSuffixList":  true,
    "extendBootVolumeSize":  true,
    "handleUserData":  true,
    "adminPasswordType":  "DoNothing",
    "adminPassword":  ""
}
"""

EC2CONFIG_XML = """\
<?xml version="1.0" standalone="yes"?>
<Ec2ConfigurationSettings>
  <!-- to regenerate the password:
       <Plugin><Name>Ec2SetPassword</Name><State>Enabled</State></Plugin> -->
  <Plugins>
    <Plugin>
      <Name>Ec2SetPassword</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2SetComputerName</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2InitializeDrives</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2EventLog</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2ConfigureRDP</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2OutputRDPCert</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2SetDriveLetter</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2WindowsActivate</Name>
      <State>Enabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2DynamicBootVolumeSize</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>Ec2HandleUserData</Name>
      <State>Disabled</State>
    </Plugin>
    <Plugin>
      <Name>AWS.EC2.Windows.CloudWatch.PlugIn</Name>
      <State>Disabled</State>
    </Plugin>
  </Plugins>
  <GlobalSettings>
    <ManageShutdown>true</ManageShutdown>
    <SetDnsSuffixList>true</SetDnsSuffixList>
    <WaitForMetaDataAvailable>true</WaitForMetaDataAvailable>
    <ShouldAddRoutes>true</ShouldAddRoutes>
    <RemoveCredentialsfromSysprepOnStartup>true</RemoveCredentialsfromSysprepOnStartup>
  </GlobalSettings>
</Ec2ConfigurationSettings>
"""

# A local policy that already has settings (Registry extension) and a startup script.
GPT_INI_EXISTING = (
    "[General]\r\ngPCFunctionalityVersion=2\r\ngPCMachineExtensionNames="
    "[{35378EAC-683F-11D2-A89A-0000F87571E3}{D02B1F72-3407-48AE-BA88-E8213C6761F1}]\r\n"
    "Version=65537\r\n"
)
SCRIPTS_INI_EXISTING = "\r\n[Startup]\r\n0CmdLine=inventory.cmd\r\n0Parameters=/quiet\r\n"

PROGRAMS = {
    "ec2launch-v2": [
        "Program Files/Amazon/EC2Launch/EC2Launch.exe",
        "Program Files/Amazon/EC2Launch/service/EC2LaunchService.exe",
    ],
    "ec2launch-v1": [INITIALIZE_REL, "ProgramData/Amazon/EC2-Windows/Launch/Module/Ec2Launch.psd1"],
    "ec2config": ["Program Files/Amazon/Ec2ConfigService/Ec2Config.exe"],
}
CONFIGS = {
    "ec2launch-v2": (AGENT_CONFIG_REL, AGENT_CONFIG_AWS),
    "ec2launch-v1": (LAUNCH_CONFIG_REL, LAUNCH_CONFIG),
    "ec2config": (EC2CONFIG_REL, EC2CONFIG_XML),
}
# Files every Windows system partition has; the agent must leave them alone.
SYSTEM_FILES = {
    "Windows/System32/drivers/etc/hosts": b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n"
    b"127.0.0.1       localhost\r\n",
    "Windows/System32/config/SOFTWARE": b"regf" + bytes(range(256)) * 16,
    "Windows/System32/Tasks/Amazon Ec2 Launch - Instance Initialization": codecs.BOM_UTF16_LE
    + '<?xml version="1.2" encoding="UTF-16"?>\r\n'.encode("utf-16-le"),
    "Users/Administrator/Desktop/notes.txt": b"do not delete\n",
    "pagefile.sys": bytes(4096),
}


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
    """A Windows system partition with `agent` configured (its default file, or `config`)."""
    for rel, data in SYSTEM_FILES.items():
        write(root, rel, data)
    rel, text = CONFIGS[agent]
    write(root, rel, config if config is not None else encode(text, newline="\r\n"))
    if programs:
        for program in PROGRAMS[agent]:
            write(root, program, b"MZ\x90\x00" + agent.encode())
    if agent == "ec2launch-v2":
        write(root, "ProgramData/Amazon/EC2Launch/state/state.json", b'{"status":"done"}')
        if run_once:
            write(root, RUN_ONCE_REL, b"")
    return root / rel


def snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file under root (relative path -> content); directories as None-free."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
