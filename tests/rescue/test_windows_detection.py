"""Which launch agent a volume has, lookups in any letter case, links, and the CLI's view."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rescue import RescueError
from rescue.windows import (
    ConfigParseError,
    NoLaunchAgentError,
    WindowsRescueError,
    enable_password_generation,
)
from tests.support.windows_fixtures import (
    AGENT_CONFIG_REL,
    EC2CONFIG_REL,
    LAUNCH_CONFIG_REL,
    RUN_ONCE_REL,
    make_tree,
    snapshot,
    write,
)


def test_errors_are_the_agents_errors() -> None:
    # The CLI turns any RescueError into {"ok": false, "error": ...}.
    assert issubclass(NoLaunchAgentError, WindowsRescueError)
    assert issubclass(ConfigParseError, WindowsRescueError)
    assert issubclass(WindowsRescueError, RescueError)


def test_no_launch_agent(tmp_path: Path) -> None:
    write(tmp_path, "Windows/System32/drivers/etc/hosts", b"127.0.0.1 localhost\r\n")
    with pytest.raises(NoLaunchAgentError) as caught:
        enable_password_generation(tmp_path)
    message = str(caught.value)
    assert AGENT_CONFIG_REL in message and LAUNCH_CONFIG_REL in message and EC2CONFIG_REL in message
    assert "Windows system partition" in message and "online" in message


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(WindowsRescueError, match="not a directory"):
        enable_password_generation(tmp_path / "missing")


def test_all_three_configured_v2_wins_and_only_it_changes(tmp_path: Path) -> None:
    for agent in ("ec2config", "ec2launch-v1", "ec2launch-v2"):
        make_tree(tmp_path, agent)
    before = snapshot(tmp_path)

    result = enable_password_generation(tmp_path)

    after = snapshot(tmp_path)
    assert result["agent"] == "ec2launch-v2"
    assert result["agents_found"] == ["ec2launch-v2", "ec2launch-v1", "ec2config"]
    assert after[LAUNCH_CONFIG_REL] == before[LAUNCH_CONFIG_REL]
    assert after[EC2CONFIG_REL] == before[EC2CONFIG_REL]
    assert not any("GroupPolicy" in rel for rel in after)
    assert "also configured: ec2launch-v1, ec2config" in " ".join(result["notes"])


def test_an_installed_agent_wins_over_a_stale_config(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v1")
    make_tree(tmp_path, "ec2launch-v2", programs=False)  # left over, not installed
    result = enable_password_generation(tmp_path)
    assert result["agent"] == "ec2launch-v1"
    assert result["agents_found"] == ["ec2launch-v2", "ec2launch-v1"]
    assert (tmp_path / RUN_ONCE_REL).exists()


def test_config_without_program_files_is_used_with_a_warning(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2config", programs=False)
    result = enable_password_generation(tmp_path)
    assert result["agent"] == "ec2config"
    assert "program files were found" in " ".join(result["notes"])


def test_paths_in_any_letter_case(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2launch-v2")
    (tmp_path / "ProgramData").rename(tmp_path / "programdata")
    (tmp_path / "programdata/Amazon/EC2Launch/config").rename(
        tmp_path / "programdata/Amazon/EC2Launch/CONFIG"
    )
    (tmp_path / "programdata/Amazon/EC2Launch/CONFIG/agent-config.yml").rename(
        tmp_path / "programdata/Amazon/EC2Launch/CONFIG/Agent-Config.YML"
    )
    (tmp_path / "programdata/Amazon/EC2Launch/state/.run-once").rename(
        tmp_path / "programdata/Amazon/EC2Launch/state/.RUN-ONCE"
    )
    config = "programdata/Amazon/EC2Launch/CONFIG/Agent-Config.YML"
    (tmp_path / config).write_bytes(
        (tmp_path / config).read_bytes().replace(b"type: random", b"type: static")
    )

    result = enable_password_generation(tmp_path)

    assert result["changed_files"] == [config]
    assert result["removed_files"] == ["programdata/Amazon/EC2Launch/state/.RUN-ONCE"]
    assert result["backups"] == [
        config + ".reset-access.bak",
        "programdata/Amazon/EC2Launch/state/.RUN-ONCE.reset-access.bak",
    ]
    assert b"type: random" in (tmp_path / config).read_bytes()


def test_exact_case_wins_when_both_exist(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2config")
    write(tmp_path, "program files/amazon/notes.txt", b"unrelated")
    assert enable_password_generation(tmp_path)["changed_files"] == [EC2CONFIG_REL]


def test_names_that_differ_only_in_case_are_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2config")
    write(tmp_path, "Program Files/amazon/x.txt", b"")
    (tmp_path / "Program Files/Amazon").rename(tmp_path / "Program Files/AMAZON")
    with pytest.raises(WindowsRescueError, match="several letter cases"):
        enable_password_generation(tmp_path)


def test_a_link_out_of_the_volume_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "helper"
    volume = tmp_path / "volume"
    make_tree(outside, "ec2launch-v2")
    make_tree(volume, "ec2config")
    shutil.rmtree(volume / "Program Files")
    (volume / "ProgramData").symlink_to(outside / "ProgramData")
    (volume / "Program Files").symlink_to(outside / "Program Files")
    before = snapshot(outside)

    with pytest.raises(WindowsRescueError, match="symbolic link or junction"):
        enable_password_generation(volume)

    assert snapshot(outside) == before


def test_a_linked_config_file_is_not_followed(tmp_path: Path) -> None:
    make_tree(tmp_path, "ec2config")
    target = write(tmp_path, "elsewhere.xml", b"<S><Plugins/></S>")
    (tmp_path / EC2CONFIG_REL).unlink()
    (tmp_path / EC2CONFIG_REL).symlink_to(target)
    with pytest.raises(WindowsRescueError, match="symbolic link"):
        enable_password_generation(tmp_path)
    assert target.read_bytes() == b"<S><Plugins/></S>"


def test_a_config_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / AGENT_CONFIG_REL).mkdir(parents=True)
    with pytest.raises(WindowsRescueError, match="not a regular file"):
        enable_password_generation(tmp_path)


def test_the_cli_reports_it_on_one_json_line(tmp_path: Path, run_agent: Callable[..., Any]) -> None:
    make_tree(tmp_path, "ec2config")
    code, report = run_agent("--platform", "windows", "--root", str(tmp_path))
    assert code == 0, report
    assert report["ok"] is True and report["agent"] == "ec2config"
    assert report["changed_files"] == [EC2CONFIG_REL]

    empty = tmp_path / "empty"
    empty.mkdir()
    code, report = run_agent("--platform", "windows", "--root", str(empty))
    assert code == 1 and report["ok"] is False
    assert "no EC2 launch agent configuration" in report["error"]


def test_the_built_agent_repairs_windows(tmp_path: Path, run_agent: Callable[..., Any]) -> None:
    """The zipapp the SSM document ships carries the Windows package, subpackages included."""
    from rescue.build import build_zipapp

    agent = build_zipapp(tmp_path / "rescue.pyz")
    tree = tmp_path / "volume"
    make_tree(tree, "ec2config")
    code, report = run_agent("--platform", "windows", "--root", str(tree), entry=[str(agent)])
    assert code == 0, report
    assert report["agent"] == "ec2config" and report["changed_files"] == [EC2CONFIG_REL]
    assert b"<State>Enabled</State>" in (tree / EC2CONFIG_REL).read_bytes()
