"""The minified zipapp the SSM document ships does what the source agent does.

rescue/build.py minifies every module (python-minifier) to fit SSM's document quota: the same
trees repaired by `python -m rescue` and by the built zipapp must give the same report, the same
files and the same refusals, on this Python and on the oldest the document admits (3.7).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from rescue.build import build_zipapp
from tests.support.rescue_helpers import AgentRun
from tests.support.rescue_trees import new_key, write_linux_tree
from tests.support.windows_fixtures import CONFIGS, make_tree, snapshot

OLD_PYTHONS = Path("/root/.pyenv/versions")
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOth other@host"


@pytest.fixture(scope="module")
def zipapp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_zipapp(tmp_path_factory.mktemp("minified") / "rescue.pyz")


def pythons() -> list[str]:
    """This interpreter, and Python 3.7 where pyenv has it (Amazon Linux 2's python3)."""
    import sys

    found = sorted(OLD_PYTHONS.glob("3.7.*/bin/python3.7"))
    return [sys.executable, *(str(p) for p in found[-1:])]


def files(root: Path) -> dict[str, bytes]:
    """The tree's files; the EC2Launch v1 startup script's run marker is random per run."""
    return {
        rel: re.sub(rb"Init\.[0-9a-f]{16}\.done", b"Init.<token>.done", data)
        for rel, data in snapshot(root).items()
    }


def same_run(
    run_agent: AgentRun, zipapp: Path, tmp_path: Path, tree: Path, *args: str
) -> dict[str, Any]:
    """Run the source agent on tree and each packed run on a copy; return the source's report."""
    copies = []
    for index, python in enumerate(pythons()):
        copy = tmp_path / f"packed-{index}"
        shutil.copytree(tree, copy, symlinks=True)
        copies.append((python, copy))
    code, report = run_agent(*args, "--root", str(tree))
    for python, copy in copies:
        packed_code, packed = run_agent(
            *args, "--root", str(copy), python=python, entry=[str(zipapp)]
        )
        # Each report's paths are its own tree's; "seconds" is how long the run took.
        as_source = {
            k: v.replace(str(copy), str(tree)) if isinstance(v, str) else v
            for k, v in packed.items()
        }
        differ = {
            k: (report.get(k), as_source.get(k))
            for k in {*report, *as_source} - {"seconds"}
            if report.get(k) != as_source.get(k)
        }
        assert (packed_code, differ) == (code, {}), python
        assert files(copy) == files(tree), python
    return report


def test_a_linux_tree_gets_the_same_repair(
    tmp_path: Path, run_agent: AgentRun, zipapp: Path
) -> None:
    key = new_key(tmp_path)[1]
    tree = write_linux_tree(
        tmp_path / "tree",
        users=[("ec2-user", 1000), ("alice", 1001), ("ubuntu", 1002)],
        sshd_config=(
            "Include /etc/ssh/sshd_config.d/*.conf\n"
            "AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2\n"
            "Match Address 10.0.0.0/8\n  AuthorizedKeysFile /never\n"
            "Match User ec2-user,!bob\n  AuthorizedKeysFile /etc/ssh/keys/%u\n"
        ),
        files={
            "etc/ssh/sshd_config.d/50-cloud.conf": "PermitRootLogin no\n",
            "home/alice/.ssh/authorized_keys": OTHER,
            "etc/selinux/config": "SELINUX=enforcing\n",
        },
    )
    report = same_run(run_agent, zipapp, tmp_path, tree, "--platform", "linux", "--public-key", key)
    assert report["ok"] is True and len(report["users"]) == 3, report


def test_a_linux_refusal_says_the_same(tmp_path: Path, run_agent: AgentRun, zipapp: Path) -> None:
    tree = write_linux_tree(tmp_path / "tree", users=[("alice", 1000)])
    report = same_run(
        run_agent,
        zipapp,
        tmp_path,
        tree,
        "--platform",
        "linux",
        "--public-key",
        new_key(tmp_path)[1],
    )
    assert report["ok"] is False and "no login user" in report["error"], report


@pytest.mark.parametrize("agent", sorted(CONFIGS))
def test_a_windows_tree_gets_the_same_repair(
    tmp_path: Path, run_agent: AgentRun, zipapp: Path, agent: str
) -> None:
    tree = tmp_path / "volume"
    make_tree(tree, agent)
    report = same_run(run_agent, zipapp, tmp_path, tree, "--platform", "windows")
    assert report["ok"] is True and report["agent"] == agent, report


def test_a_windows_refusal_says_the_same(tmp_path: Path, run_agent: AgentRun, zipapp: Path) -> None:
    tree = tmp_path / "empty"
    tree.mkdir()
    report = same_run(run_agent, zipapp, tmp_path, tree, "--platform", "windows")
    assert report["ok"] is False and "no EC2 launch agent configuration" in report["error"]
