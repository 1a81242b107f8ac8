"""The repair on directory trees (`--root`), as online mode and the local engine use it:
sshd_config variants, user choice, symlink safety, idempotence, SELinux, non-root runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rescue import RescueError
from rescue.__main__ import windows_repair
from tests.support.rescue_helpers import AgentResult, AgentRun, require_root
from tests.support.rescue_trees import new_key, write_linux_tree

OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherOtherOtherOtherOtherOtherOtherOthe other@x"


@pytest.fixture
def key(tmp_path: Path) -> str:
    return new_key(tmp_path)[1]


def repair(run_agent: AgentRun, tree: Path, key: str, **kwargs: object) -> AgentResult:
    return run_agent("--platform", "linux", "--root", str(tree), "--public-key", key, **kwargs)


def ok(run_agent: AgentRun, tree: Path, key: str) -> dict[str, Any]:
    code, out = repair(run_agent, tree, key)
    assert code == 0 and out["ok"], out
    return out


def test_default_config_creates_ssh_dir_for_cloud_user(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t")
    out = ok(run_agent, tree, key)
    ssh_dir = tree / "home/ec2-user/.ssh"
    assert (ssh_dir / "authorized_keys").read_text() == key + "\n"
    assert ssh_dir.stat().st_mode & 0o777 == 0o700
    assert (ssh_dir / "authorized_keys").stat().st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert ssh_dir.stat().st_uid == 1000 and (ssh_dir / "authorized_keys").stat().st_gid == 1000
    assert out["changed_files"] == 2 and out["device"] is not None and out["partition"] is None


@pytest.mark.parametrize(
    ("config", "written", "directory"),
    [
        pytest.param(
            "%h/.ssh/authorized_keys2",
            "home/ec2-user/.ssh/authorized_keys2",
            (0o700, 1000),
            id="home-relative-second-file",
        ),
        # A directory made outside the home is root's and readable, as sshd's StrictModes wants.
        pytest.param(
            "/etc/ssh/keys/%u .ssh/authorized_keys",
            "etc/ssh/keys/ec2-user",
            (0o755, 0),
            id="absolute-per-user-file",
        ),
    ],
)
def test_first_authorized_keys_file_is_written(
    tmp_path: Path,
    run_agent: AgentRun,
    key: str,
    config: str,
    written: str,
    directory: tuple[int, int],
) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config=f"AuthorizedKeysFile {config}\n")
    out = ok(run_agent, tree, key)
    assert out["users"][0]["files"] == ["/" + written]
    assert (tree / written).read_text() == key + "\n"
    assert not (tree / "home/ec2-user/.ssh/authorized_keys").exists()
    mode, owner = directory
    assert (tree / written).parent.stat().st_mode & 0o777 == mode
    if os.geteuid() == 0:
        assert (tree / written).parent.stat().st_uid == owner
        assert (tree / written).stat().st_uid == 1000


def test_included_drop_in_wins_over_later_main_setting(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(
        tmp_path / "t",
        sshd_config="Include sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/from_main\n",
        files={
            "etc/ssh/sshd_config.d/50-cloud.conf": "AuthorizedKeysFile  .ssh/from_drop_in %%x\n",
            "etc/ssh/sshd_config.d/90-later.conf": "AuthorizedKeysFile .ssh/too_late\n",
            "etc/ssh/sshd_config.d/README": "AuthorizedKeysFile .ssh/not_a_conf\n",
        },
    )
    out = ok(run_agent, tree, key)
    assert out["users"][0]["files"] == ["/home/ec2-user/.ssh/from_drop_in"]


def test_match_block_overrides_global(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    tree = write_linux_tree(
        tmp_path / "t",
        users=[("ec2-user", 1000), ("alice", 1001)],
        sshd_config=(
            "AuthorizedKeysFile .ssh/authorized_keys\n"
            "PermitRootLogin no\n"  # else /never is root's file too: refused (see below)
            "Match Address 10.0.0.0/8\n  AuthorizedKeysFile /never\n"
            "Match User ec2-user,!bob\n  AuthorizedKeysFile /etc/ssh/keys/%u\n"
        ),
        files={"home/alice/.ssh/authorized_keys": OTHER + "\n"},
    )
    out = ok(run_agent, tree, key)
    files = {user["name"]: user["files"] for user in out["users"]}
    # Connections from 10.0.0.0/8 read /never: the agent cannot know the client, so both get it.
    assert files == {
        "ec2-user": ["/never", "/etc/ssh/keys/ec2-user"],
        "alice": ["/never", "/home/alice/.ssh/authorized_keys"],
    }
    assert (tree / "home/alice/.ssh/authorized_keys").read_text() == f"{OTHER}\n{key}\n"
    assert (tree / "never").read_text() == f"{key}\n"
    assert all("Match Address 10.0.0.0/8" in user["notes"][0] for user in out["users"])
    # /never is every user's: root's and readable, so StrictModes lets each one use it.
    assert (tree / "never").stat().st_mode & 0o777 == 0o644
    if os.geteuid() == 0:
        assert (tree / "never").stat().st_uid == 0


def test_keeps_lines_and_order_and_adds_missing_newline(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    existing = f'# managed by hand\n{OTHER}\n\nfrom="10.0.0.1" {OTHER.replace("Other", "Third")}'
    tree = write_linux_tree(tmp_path / "t", files={"home/ec2-user/.ssh/authorized_keys": existing})
    ok(run_agent, tree, key)
    assert (tree / "home/ec2-user/.ssh/authorized_keys").read_text() == existing + "\n" + key + "\n"
    again = ok(run_agent, tree, key)
    assert again["users"][0]["added"] is False and again["changed_files"] == 0
    assert (tree / "home/ec2-user/.ssh/authorized_keys").read_text().count(key.split()[1]) == 1


def test_key_already_in_second_listed_file_counts(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(
        tmp_path / "t", files={"home/ec2-user/.ssh/authorized_keys2": f"{OTHER}\n{key}\n"}
    )
    out = ok(run_agent, tree, key)
    assert out["users"][0] == {
        "name": "ec2-user",
        "uid": 1000,
        "files": ["/home/ec2-user/.ssh/authorized_keys2"],
        "added": False,
    }
    assert out["changed_files"] == 0 and not (tree / "home/ec2-user/.ssh/authorized_keys").exists()


@pytest.mark.parametrize("options", ["restrict", 'command="exit 142"', 'from="10.0.0.0/8",no-pty'])
def test_key_present_only_with_options_gets_a_plain_line_first(
    tmp_path: Path, run_agent: AgentRun, key: str, options: str
) -> None:
    # sshd uses the first line holding the key (auth2-pubkeyfile.c): the plain one goes before.
    existing = f"{OTHER}\n{options} {key}\n"
    tree = write_linux_tree(tmp_path / "t", files={"home/ec2-user/.ssh/authorized_keys2": existing})
    out = ok(run_agent, tree, key)
    assert out["users"][0]["added"] is True
    assert out["users"][0]["files"] == ["/home/ec2-user/.ssh/authorized_keys2"]
    written = tree / "home/ec2-user/.ssh/authorized_keys2"
    assert written.read_text() == f"{OTHER}\n{key}\n{options} {key}\n"
    assert not (tree / "home/ec2-user/.ssh/authorized_keys").exists()
    again = ok(run_agent, tree, key)
    assert again["users"][0]["added"] is False and again["changed_files"] == 0


def test_symlink_out_of_the_volume_is_refused(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    helper_secret = tmp_path / "helper-shadow"
    helper_secret.write_text("root:$6$secret:19000::::::\n")
    tree = write_linux_tree(tmp_path / "t")
    (tree / "home/ec2-user/.ssh").mkdir()
    (tree / "home/ec2-user/.ssh/authorized_keys").symlink_to(helper_secret)
    code, out = repair(run_agent, tree, key)
    assert code == 1 and "is a symlink" in out["error"] and "ec2-user" in out["error"]
    assert helper_secret.read_text() == "root:$6$secret:19000::::::\n"


def test_symlinks_resolve_inside_the_volume(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    """`/home -> var/home` style links work; an absolute link never reaches the helper, and
    a `.ssh` link is followed only while it stays inside the user's home."""
    outside = tmp_path / "helper-dir"
    outside.mkdir()
    tree = write_linux_tree(
        tmp_path / "t", users=[("ec2-user", 1000), ("core", 1001), ("admin", 1002)]
    )
    (tree / "var").mkdir()
    shutil.move(str(tree / "home"), str(tree / "var/home"))
    (tree / "home").symlink_to("var/home")
    (tree / "var/home/core/.ssh").symlink_to(outside)  # absolute: resolves to <tree>/<outside>
    (tree / "var/home/admin/dotfiles").mkdir()
    (tree / "var/home/admin/.ssh").symlink_to("/home/admin/dotfiles")  # in-root, in the home
    if os.geteuid() == 0:
        os.chown(tree / "var/home/admin/dotfiles", 1002, 1002)
    out = ok(run_agent, tree, key)
    users = {user["name"]: user for user in out["users"]}
    assert users["ec2-user"]["added"] and users["admin"]["added"]
    assert users["ec2-user"]["written"] == "/var/home/ec2-user/.ssh/authorized_keys"
    assert users["admin"]["written"] == "/var/home/admin/dotfiles/authorized_keys"
    assert (tree / "var/home/ec2-user/.ssh/authorized_keys").read_text() == key + "\n"
    assert (tree / "var/home/admin/dotfiles/authorized_keys").read_text() == key + "\n"
    assert "outside core's home" in users["core"]["refused"] and not users["core"]["added"]
    assert list(outside.iterdir()) == []
    assert not (tree / str(outside).lstrip("/")).exists()


def test_tilde_path_follows_links_only_inside_the_home_it_names(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    """`~` in AuthorizedKeysFile is root's home, and /root may be a link (`/root ->
    var/roothome` on Fedora CoreOS): sshd reads through it, so the agent writes there. A link
    inside that home leading out of it is refused, as an absolute path through a link is."""
    # Root logs in with no key here: else root's own file is refused for ec2-user.
    config = "AuthorizedKeysFile ~/.ssh/authorized_keys\nPermitRootLogin no\n"
    tree = write_linux_tree(tmp_path / "t", sshd_config=config)
    (tree / "var").mkdir()
    shutil.move(str(tree / "root"), str(tree / "var/roothome"))
    (tree / "var/roothome").chmod(0o700)  # writable by whoever runs the test
    (tree / "root").symlink_to("var/roothome")
    out = ok(run_agent, tree, key)
    assert out["users"][0]["files"] == ["/root/.ssh/authorized_keys"]
    assert out["users"][0]["written"] == "/var/roothome/.ssh/authorized_keys"
    assert (tree / "var/roothome/.ssh/authorized_keys").read_text() == key + "\n"

    linked = write_linux_tree(tmp_path / "linked", sshd_config=config)
    (linked / "root/.ssh").symlink_to("/etc/cron.d")
    code, out = repair(run_agent, linked, key)
    assert code == 1 and "/root/.ssh is a symlink leading to /etc/cron.d" in out["error"], out
    assert "outside the home /root that sshd_config names with ~" in out["error"]
    assert not (linked / "etc/cron.d").exists()

    absolute = write_linux_tree(
        tmp_path / "absolute", sshd_config="AuthorizedKeysFile /etc/ssh/keys/%u\n"
    )
    (absolute / "etc/ssh/keys").symlink_to("/root")
    code, out = repair(run_agent, absolute, key)
    assert code == 1 and "/etc/ssh/keys is a symlink leading to /root" in out["error"], out
    assert "not /etc/ssh/keys/ec2-user as sshd_config names it" in out["error"]
    assert list((absolute / "root").iterdir()) == []


def test_one_refused_user_does_not_block_the_others(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", users=[("ubuntu", 1000), ("mallory", 1001)])
    (tree / "etc/shadow").write_text("shadow\n")
    (tree / "home/mallory/.ssh").mkdir()
    os.link(tree / "etc/shadow", tree / "home/mallory/.ssh/authorized_keys")
    out = ok(run_agent, tree, key)
    by_name = {user["name"]: user for user in out["users"]}
    assert by_name["ubuntu"]["added"] is True
    assert by_name["mallory"]["added"] is False and "hard links" in by_name["mallory"]["refused"]
    assert (tree / "etc/shadow").read_text() == "shadow\n"


def test_who_gets_the_key(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    """Existing key users and the cloud user, not service accounts or an unused root."""
    tree = write_linux_tree(
        tmp_path / "t",
        users=[("ubuntu", 1000), ("dev", 1001), ("idle", 1002)],
        files={
            "home/dev/.ssh/authorized_keys": OTHER + "\n",
            "root/.ssh/authorized_keys": f'command="echo Log in as ubuntu;exit 142" {OTHER}\n',
            "srv/git/.ssh/authorized_keys": OTHER + "\n",
        },
    )
    with (tree / "etc/passwd").open("a") as passwd:
        passwd.write("git:x:998:998::/srv/git:/usr/bin/git-shell\n")
    out = ok(run_agent, tree, key)
    assert sorted(user["name"] for user in out["users"]) == ["dev", "ubuntu"]
    assert key not in (tree / "root/.ssh/authorized_keys").read_text()
    assert key not in (tree / "srv/git/.ssh/authorized_keys").read_text()


def test_root_with_a_real_key_gets_it_unless_sshd_forbids(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(
        tmp_path / "t", users=[], files={"root/.ssh/authorized_keys": OTHER + "\n"}
    )
    out = ok(run_agent, tree, key)
    assert [user["name"] for user in out["users"]] == ["root"]
    forbidden = write_linux_tree(
        tmp_path / "f",
        users=[],
        sshd_config="PermitRootLogin no\n",
        files={"root/.ssh/authorized_keys": OTHER + "\n"},
    )
    code, refused = repair(run_agent, forbidden, key)
    assert code == 1 and "no login user" in refused["error"]


def test_authorized_keys_file_none(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    tree = write_linux_tree(tmp_path / "t", sshd_config="AuthorizedKeysFile none\n")
    code, out = repair(run_agent, tree, key)
    assert code == 1 and "AuthorizedKeysFile none" in out["error"]


def test_world_writable_key_file_is_tightened(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(
        tmp_path / "t", files={"home/ec2-user/.ssh/authorized_keys": OTHER + "\n"}
    )
    (tree / "home/ec2-user/.ssh").chmod(0o777)
    (tree / "home/ec2-user/.ssh/authorized_keys").chmod(0o666)
    out = ok(run_agent, tree, key)
    assert (tree / "home/ec2-user/.ssh/authorized_keys").stat().st_mode & 0o777 == 0o644
    assert (tree / "home/ec2-user/.ssh").stat().st_mode & 0o777 == 0o755
    assert out["changed_files"] == 2


def test_selinux_label_copied_with_ssh_type(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    require_root()
    tree = write_linux_tree(
        tmp_path / "t", files={"etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"}
    )
    home = tree / "home/ec2-user"
    try:
        os.setxattr(home, "security.selinux", b"unconfined_u:object_r:user_home_dir_t:s0\0")
    except OSError as exc:
        pytest.skip(f"this filesystem cannot hold security.selinux: {exc}")
    out = ok(run_agent, tree, key)
    assert out["selinux"] == "label-copied"
    expected = b"unconfined_u:object_r:ssh_home_t:s0\0"
    assert os.getxattr(home / ".ssh", "security.selinux") == expected
    assert os.getxattr(home / ".ssh/authorized_keys", "security.selinux") == expected
    assert not (tree / ".autorelabel").exists()


def test_selinux_without_parent_label_asks_for_relabel(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    tree = write_linux_tree(tmp_path / "t", files={"etc/selinux/config": "SELINUX=permissive\n"})
    out = ok(run_agent, tree, key)
    assert out["selinux"] == "autorelabel" and (tree / ".autorelabel").exists()
    assert out["changed_files"] == 3


def test_not_root_skips_ownership(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    """A developer laptop: the local engine runs the agent as a normal user on a tree."""
    require_root()  # to become another user here
    reachable = Path(tempfile.mkdtemp(prefix="rescue-tree-", dir="/tmp"))  # pytest: 0700
    try:
        reachable.chmod(0o755)
        tree = write_linux_tree(reachable / "t", users=[("ec2-user", 65534)])
        for path in [tree, *tree.rglob("*")]:
            os.lchown(path, 65534, 65534)
        # The agent as the helper gets it: a zipapp where the user can read it (a CI clone
        # lives in a mode-700 directory that user cannot enter).
        from rescue.build import build_zipapp

        agent = build_zipapp(reachable / "rescue.pyz")
        agent.chmod(0o644)
        # The system interpreter, not the clone's venv, which that user cannot reach either.
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        code, out = repair(run_agent, tree, key, user=65534, entry=[str(agent)], python=python)
        written = (tree / "home/ec2-user/.ssh/authorized_keys").read_text()
    finally:
        shutil.rmtree(reachable)
    assert code == 0, out
    assert out["ownership"] == "skipped: not root"
    assert written == key + "\n"


def test_no_user_to_give_the_key(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    tree = write_linux_tree(tmp_path / "t", users=[("alice", 1000)])
    code, out = repair(run_agent, tree, key)
    assert code == 1 and "no login user" in out["error"] and "ec2-user" in out["error"]


def test_bad_command_lines(tmp_path: Path, run_agent: AgentRun, key: str) -> None:
    tree = write_linux_tree(tmp_path / "t")
    code, out = run_agent("--platform", "linux", "--root", str(tree))
    assert code == 2 and "--public-key is required" in out["error"]
    code, out = run_agent(
        "--platform",
        "linux",
        "--root",
        str(tree),
        "--volume-id",
        "vol-12345678",
        "--public-key",
        key,
    )
    assert code == 2 and "not allowed with" in out["error"]
    code, out = run_agent(
        "--platform", "linux", "--root", str(tree), "--public-key", key + "\nssh-rsa AAAA x"
    )
    assert code == 1 and "single line" in out["error"]
    assert not (tree / "home/ec2-user/.ssh").exists()


def test_windows_without_its_module_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that lacks rescue/windows/ (written apart) reports it instead of crashing."""
    monkeypatch.setitem(sys.modules, "rescue.windows", None)  # makes the import fail
    with pytest.raises(RescueError, match=r"rescue/windows/ is missing"):
        windows_repair()


def test_unwritable_file_is_reported_per_user(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    """An immutable key file fails for its user alone; the others still get the key."""
    require_root()
    tree = write_linux_tree(
        tmp_path / "t",
        users=[("ubuntu", 1000), ("frozen", 1001)],
        files={"home/frozen/.ssh/authorized_keys": OTHER + "\n"},
    )
    frozen = tree / "home/frozen/.ssh/authorized_keys"
    if subprocess.run(["chattr", "+i", str(frozen)], check=False).returncode != 0:
        pytest.skip("this filesystem has no immutable attribute (chattr +i)")
    try:
        out = ok(run_agent, tree, key)
    finally:
        subprocess.run(["chattr", "-i", str(frozen)], check=True)
    by_name = {user["name"]: user for user in out["users"]}
    assert by_name["ubuntu"]["added"] is True
    assert by_name["frozen"]["refused"].startswith(
        "writing /home/frozen/.ssh/authorized_keys failed"
    )
    assert frozen.read_text() == OTHER + "\n"


def test_group_writable_home_is_refused_not_reported_added(
    tmp_path: Path, run_agent: AgentRun, key: str
) -> None:
    """sshd's StrictModes refuses keys below a home others can write (auth_secure_path):
    reporting the key added there would be a false success."""
    tree = write_linux_tree(tmp_path / "t")
    (tree / "home/ec2-user").chmod(0o775)
    code, out = repair(run_agent, tree, key)
    assert code == 1 and "/home/ec2-user is writable by its group" in out["error"], out
    assert "chmod go-w /home/ec2-user" in out["error"]
    assert not (tree / "home/ec2-user/.ssh").exists()
