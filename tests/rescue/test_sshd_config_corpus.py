"""The agent writes where the volume's own sshd reads: checked against the real `sshd -T`.

For each config of the corpus the agent repairs a tree in-process; then, for every user it
reported and every connection spec, `sshd -T -C user=..,addr=..` (run in a private mount
namespace where /etc/passwd, /etc/group and /etc/ssh are the tree's, so `~`, Match Group
and Include resolve as on the instance) gives the AuthorizedKeysFile list sshd applies.
sshd takes the first line holding the key, in file order (auth2-pubkeyfile.c), so that
first line must carry no options, or the agent must have refused the user naming why.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from rescue import RescueError
from rescue.linux.authorized_keys import inject_key
from rescue.linux.inroot import VolumeRoot
from rescue.linux.keys import parse_public_key
from tests.support.rescue_helpers import require_root, require_tools
from tests.support.rescue_trees import new_key, write_linux_tree

pytestmark = [pytest.mark.root, pytest.mark.sshd]

USERS = (("ec2-user", 1000), ("alice", 1001), ("bob", 1002), ("carol", 1003))
GROUPS = "admins:x:2000:alice\ndevelopers:x:2001:bob,carol\n"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVuc2VkIGtleSBvZiBzb21lb25lIGVsc2UgICAg other"
ROOT_KEYS = f'command="echo Please login as ec2-user;exit 142" {OTHER_KEY}\n'
BASE_FILES = {
    "root/.ssh/authorized_keys": ROOT_KEYS,
    "home/alice/.ssh/authorized_keys": OTHER_KEY + "\n",
    "home/bob/.ssh/authorized_keys2": OTHER_KEY + "\n",
    "etc/ssh/keys/carol": OTHER_KEY + "\n",
}
# Connections a client may make: addresses, names, local ends, ports and routing domains.
CONNECTIONS = (
    "host=admin.corp.example,addr=10.1.2.3,laddr=172.31.5.6,lport=22,rdomain=vrf-blue",
    "host=home.isp.example,addr=203.0.113.9,laddr=172.31.5.6,lport=22,rdomain=default",
    "host=home.isp.example,addr=203.0.113.9,laddr=10.0.0.5,lport=2222,rdomain=default",
    "host=v6.example,addr=2001:db8::7,laddr=2001:db8::1,lport=443,rdomain=default",
    "host=lab.corp.example,addr=192.0.2.44,laddr=10.0.0.5,lport=22,rdomain=vrf-blue",
    "host=admin.corp.example,addr=10.9.9.9,laddr=172.31.5.6,lport=2222,rdomain=default",
)


class Config(NamedTuple):
    sshd_config: str | None
    files: dict[str, str] | None = None


# "{key}" in a file stands for the key under test (for keys already present, restricted).
CORPUS: dict[str, Config] = {
    "no-config-file": Config(None),
    "tilde-is-sshd-own-home": Config("AuthorizedKeysFile ~/.ssh/authorized_keys\n"),
    # Root's file holds a plain key: root is chosen, so sharing its file gives no new access.
    "tilde-shared-with-key-using-root": Config(
        "AuthorizedKeysFile ~/.ssh/authorized_keys\n",
        {"root/.ssh/authorized_keys": OTHER_KEY + "\n"},
    ),
    "tilde-user-and-relative": Config(
        "AuthorizedKeysFile ~ec2-user/.ssh/shared_keys .ssh/authorized_keys\n"
    ),
    "relative-second-file": Config("AuthorizedKeysFile .ssh/keys_a %h/.ssh/keys_b\n"),
    "match-localport": Config(
        "AuthorizedKeysFile .ssh/authorized_keys\n"
        "Match LocalPort 2222\n  AuthorizedKeysFile /etc/ssh/keys/%u\n"
    ),
    "match-address-negated": Config(
        "Match Address !10.0.0.0/8,*\n  AuthorizedKeysFile .ssh/outside_keys\n"
        "Match Address 10.0.0.0/8\n  AuthorizedKeysFile .ssh/inside_keys\n"
    ),
    "match-host-laddr-rdomain": Config(
        "AuthorizedKeysFile .ssh/authorized_keys\n"
        "Match Host *.corp.example\n  AuthorizedKeysFile .ssh/corp_keys\n"
        "Match LocalAddress 10.0.0.5\n  AuthorizedKeysFile /etc/ssh/lan/%u\n"
        "Match RDomain vrf-blue\n  AuthorizedKeysFile .ssh/vrf_keys\n"
    ),
    "match-user-lists-and-negation": Config(
        "Match User alice,b?b\n  AuthorizedKeysFile /etc/ssh/team/%u\n"
        "Match User *,!root,!carol\n  AuthorizedKeysFile .ssh/users_keys .ssh/authorized_keys\n"
    ),
    "match-group-negation-wins": Config(
        "Match Group *,!developers\n  AuthorizedKeysFile .ssh/not_dev_keys\n"
        "Match Group developers\n  AuthorizedKeysFile /etc/ssh/keys/%u\n"
    ),
    "match-user-and-group": Config(
        "Match User a*,c* Group developers\n  AuthorizedKeysFile .ssh/both_keys\n"
        "Match User r[o]ot,ec2-use?\n  AuthorizedKeysFile .ssh/ec2_keys\n"
    ),
    "match-all-after-user": Config(
        "AuthorizedKeysFile .ssh/never_global\n"
        "Match User ec2-user\n  AuthorizedKeysFile .ssh/ec2\n"
        "Match all\n  AuthorizedKeysFile .ssh/everyone\n"
    ),
    "match-user-and-port": Config(
        "Match User ec2-user LocalPort 22\n  AuthorizedKeysFile .ssh/port22_keys\n"
        "Match User ec2-user\n  AuthorizedKeysFile .ssh/other_port_keys\n"
    ),
    "none-with-command": Config(
        "AuthorizedKeysFile none\n"
        "AuthorizedKeysCommand /usr/local/bin/keys %u\nAuthorizedKeysCommandUser nobody\n"
    ),
    "command-and-files": Config(
        "AuthorizedKeysCommand /usr/bin/sss_ssh_authorizedkeys %u\n"
        "AuthorizedKeysCommandUser nobody\n"
    ),
    "none-for-some-addresses": Config("Match Address 192.0.2.0/24\n  AuthorizedKeysFile none\n"),
    "include-drop-ins": Config(
        "Include sshd_config.d/*.conf\nAuthorizedKeysFile .ssh/too_late\n",
        {
            "etc/ssh/sshd_config.d/10-users.conf": (
                "Match User carol\n  AuthorizedKeysFile ~carol/.ssh/carol_keys\n"
            ),
            "etc/ssh/sshd_config.d/50-cloud.conf": "AuthorizedKeysFile .ssh/cloud_keys\n",
        },
    ),
    "include-inside-match-port": Config(
        "Match LocalPort 2222\n  Include /etc/ssh/alt/*.conf\n",
        {"etc/ssh/alt/keys.conf": "AuthorizedKeysFile /etc/ssh/alt_keys/%u\n"},
    ),
    "restricted-key-first": Config(
        None, {"home/ec2-user/.ssh/authorized_keys": 'command="exit 142" {key}\n'}
    ),
    "restricted-key-in-second-file": Config(
        None,
        {"home/alice/.ssh/authorized_keys2": 'from="10.0.0.0/8",no-pty {key}\n'},
    ),
    "restrict-then-plain-elsewhere": Config(
        "AuthorizedKeysFile .ssh/a .ssh/b\n",
        {"home/ec2-user/.ssh/a": "restrict {key}\n", "home/ec2-user/.ssh/b": "{key}\n"},
    ),
}


@pytest.fixture(scope="module")
def sshd_tools() -> None:
    require_root()  # a private mount namespace shows sshd the tree's passwd, group and /etc/ssh
    require_tools("sshd", "ssh-keygen", "unshare")


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sshd-corpus") / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    return new_key(tmp_path_factory.mktemp("sshd-corpus-key"))[1]


def sshd_key_files(tree: Path, host_key: Path, specs: list[str]) -> list[dict[str, str]]:
    """`sshd -T` for each spec with the tree as the instance's /etc: its settings per spec."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    config = tree / "etc/ssh/sshd_config"
    if not config.exists():
        config.write_text("")  # sshd -T needs a file; an empty one means every default
    # The private namespace copies every mount on the host, other xdist workers' too: the
    # copy of an agent's probe mount would keep its filesystem alive after the agent
    # unmounts it, so loop-device mounts are dropped from the copy first.
    script = [
        "awk '$1 ~ \"^/dev/loop\" {print $2}' /proc/self/mounts | sort -r | "
        'while read -r m; do umount -l "$m"; done',
        "mkdir -p /run/sshd",
    ]
    for name in ("passwd", "group"):
        script.append(f"mount --bind {shlex.quote(str(tree / 'etc' / name))} /etc/{name}")
    script.append(f"mount --bind {shlex.quote(str(tree / 'etc/ssh'))} /etc/ssh")
    for spec in specs:
        script.append(
            f"{sshd} -T -f /etc/ssh/sshd_config -o HostKey={shlex.quote(str(host_key))} "
            f"-C {shlex.quote(spec)} 2>&1; echo '=== end'"
        )
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    results = []
    for block in out.split("=== end\n")[: len(specs)]:
        settings: dict[str, str] = {}
        for line in block.splitlines():
            keyword, _, value = line.partition(" ")
            settings.setdefault(keyword, value)
        assert "authorizedkeysfile" in settings, block  # sshd refused the config
        results.append(settings)
    return results


def passwd(tree: Path) -> dict[str, tuple[int, str]]:
    entries = {}
    for line in (tree / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        entries[fields[0]] = (int(fields[2]), fields[5])
    return entries


def expand(value: str, user: str, uid: int, home: str) -> list[str]:
    """sshd's expand_authorized_keys: %h %u %U %%, then relative to the home."""
    if value == "none":
        return []
    paths = []
    for pattern in value.split():
        path = pattern
        for token, text in (("%h", home), ("%u", user), ("%U", str(uid)), ("%%", "%")):
            path = path.replace(token, text)
        paths.append(path if path.startswith("/") else f"{home}/{path}")
    return paths


def first_use_unrestricted(tree: Path, paths: list[str], blob: str) -> bool:
    """Whether the first line sshd finds with the key (files in order) has no options."""
    with VolumeRoot(tree) as root:
        for path in paths:
            for line in (root.read_text(path) or "").splitlines():
                words = line.split()
                if blob in words:
                    return words.index(blob) == 1 and not line.lstrip().startswith("#")
    return False


def refusal_disagreements(
    message: str, tree: Path, host_key: Path, cloud_user: tuple[int, str]
) -> list[str]:
    """A whole refusal is right only where sshd reads no file for the cloud user."""
    specs = [f"user=ec2-user,{connection}" for connection in CONNECTIONS]
    root_specs = [f"user=root,{connection}" for connection in CONNECTIONS]
    wrong = []
    for connection, settings, root_settings in zip(
        CONNECTIONS,
        sshd_key_files(tree, host_key, specs),
        sshd_key_files(tree, host_key, root_specs),
        strict=True,
    ):
        paths = expand(settings["authorizedkeysfile"], "ec2-user", *cloud_user)
        root_paths = expand(root_settings["authorizedkeysfile"], "root", 0, "/root")
        if "(uid 0)" in message and set(paths) & set(root_paths):
            continue  # root's own key file: writing it would give root access
        if paths:
            wrong.append(f"ec2-user @ {connection}: sshd reads a file, agent refused: {message}")
        elif "AuthorizedKeysFile none" not in message:
            wrong.append(f"ec2-user @ {connection}: sshd reads no file, refusal silent on it")
    return wrong


def disagreements(name: str, config: Config, tmp_path: Path, host_key: Path, key: str) -> list[str]:
    """Every (user, connection) where the agent's answer and sshd's reading disagree."""
    blob = parse_public_key(key).blob
    files = {
        **BASE_FILES,
        **{path: text.format(key=key) for path, text in (config.files or {}).items()},
    }
    tree = write_linux_tree(tmp_path / name, USERS, config.sshd_config, files)
    (tree / "etc/group").write_text((tree / "etc/group").read_text() + GROUPS)
    accounts = passwd(tree)
    before = {"/" + str(path.relative_to(tree)) for path in tree.rglob("*") if path.is_file()}
    try:
        report: dict[str, Any] = inject_key(tree, parse_public_key(key))
    except RescueError as refusal:
        return refusal_disagreements(str(refusal), tree, host_key, accounts["ec2-user"])
    wrong = []
    reported = {entry["name"]: entry for entry in report["users"]}
    if "ec2-user" not in reported:
        wrong.append("ec2-user (the cloud user) not in the report")
    for user, _ in USERS:
        uid, home = accounts[user]
        specs = [f"user={user},{connection}" for connection in CONNECTIONS]
        readings = [
            expanded(settings, user, uid, home)
            for settings in sshd_key_files(tree, host_key, specs)
        ]
        if user in reported:
            wrong += reported_disagreements(user, reported[user], readings, tree, blob)
        else:
            used = sorted({path for paths, _ in readings for path in paths if path in before})
            if used:
                wrong.append(f"{user}: has {used}, which sshd reads, but was skipped")
    return wrong


def expanded(settings: dict[str, str], user: str, uid: int, home: str) -> tuple[list[str], str]:
    """(the key files sshd reads for the user, its AuthorizedKeysCommand) on one connection."""
    paths = expand(settings["authorizedkeysfile"], user, uid, home)
    return paths, settings.get("authorizedkeyscommand", "none")


def reported_disagreements(
    user: str, entry: dict[str, Any], readings: list[tuple[list[str], str]], tree: Path, blob: str
) -> list[str]:
    """Where the report for a user the agent chose disagrees with sshd on each connection."""
    wrong = []
    said = " ".join([entry.get("refused") or "", *entry.get("notes", [])])
    read_anywhere = {path for paths, _ in readings for path in paths}
    # A refusal naming its cause is an answer on every connection.
    for connection, (paths, command) in zip(CONNECTIONS, readings, strict=True):
        if entry.get("refused"):
            continue
        if command != "none" and "AuthorizedKeysCommand" not in said:
            wrong.append(f"{user} @ {connection}: sshd runs {command}, report silent")
        if not paths:
            if "AuthorizedKeysFile none" not in said:
                wrong.append(f"{user} @ {connection}: sshd reads no file, report silent")
        elif not first_use_unrestricted(tree, paths, blob):
            wrong.append(f"{user} @ {connection}: sshd reads {paths}, agent wrote {entry}")
    stray = [path for path in entry["files"] if entry["added"] and path not in read_anywhere]
    # A file only some untested connection may pick is fine when the report says so.
    if stray and "picks the key file by connection" not in said:
        wrong.append(f"{user}: agent wrote {stray}, which sshd never reads")
    return wrong


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_agent_writes_where_sshd_reads(
    name: str, sshd_tools: None, tmp_path: Path, host_key: Path, public_key: str
) -> None:
    wrong = disagreements(name, CORPUS[name], tmp_path, host_key, public_key)
    assert not wrong, f"{len(wrong)} disagreements with sshd -T:\n" + "\n".join(wrong)
