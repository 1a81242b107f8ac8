"""In-root path resolution: symlinks are the volume's, never the helper's."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rescue import RescueError
from rescue.linux.authorized_keys import KeyInjector
from rescue.linux.inroot import VolumeRoot
from rescue.linux.key_lines import key_blobs
from rescue.linux.keys import parse_public_key
from rescue.linux.users import read_accounts


def test_absolute_and_dotdot_links_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "var/home/ann").mkdir(parents=True)
    (tmp_path / "home").symlink_to("/var/home")
    (tmp_path / "var/home/ann/up").symlink_to("../../../../../../etc")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("in-volume\n")
    with VolumeRoot(tmp_path) as root:
        assert root.resolve("/home/ann") == (["var", "home", "ann"], True)
        assert root.resolve("/home/ann/up/passwd") == (["etc", "passwd"], True)
        assert root.read_text("/home/ann/up/passwd") == "in-volume\n"
        assert root.resolve("/home/ann/up", follow_last=False) == (
            ["var", "home", "ann", "up"],
            True,
        )


def test_missing_tail_is_lexical(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with VolumeRoot(tmp_path) as root:
        assert root.resolve("/a/b/../c/d") == (["a", "c", "d"], False)


def test_link_loops_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    os.mkfifo(tmp_path / "fifo")
    with VolumeRoot(tmp_path) as root:
        with pytest.raises(RescueError, match="too many symlinks"):
            root.resolve("/loop/x")
        assert root.read_text("/fifo") is None  # never opened: reading would block


def test_glob_in_root(tmp_path: Path) -> None:
    (tmp_path / "etc/ssh/d").mkdir(parents=True)
    for name in ("b.conf", "a.conf", ".hidden.conf", "c.txt"):
        (tmp_path / "etc/ssh/d" / name).write_text("")
    (tmp_path / "etc/ssh/link").symlink_to("/etc/ssh/d")
    with VolumeRoot(tmp_path) as root:
        assert root.glob("/etc/ssh/link/*.conf") == ["/etc/ssh/d/a.conf", "/etc/ssh/d/b.conf"]
        assert root.glob("/etc/*/d/a.conf") == ["/etc/ssh/d/a.conf"]
        assert root.glob("/nowhere/*.conf") == []


KEY_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " #\n=\"'-", max_size=200)


@settings(max_examples=200, deadline=None)
@given(existing=KEY_TEXT)
def test_appending_keeps_every_byte_before_it(
    tmp_path_factory: pytest.TempPathFactory, existing: str
) -> None:
    """Whatever the file held stays byte for byte; the key is found afterwards."""
    tree = tmp_path_factory.mktemp("t")
    (tree / "home/u/.ssh").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc/passwd").write_text("ec2-user:x:1000:1000::/home/u:/bin/sh\n")
    (tree / "home/u/.ssh/authorized_keys").write_text(existing)
    key = parse_public_key(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB f"
    )
    with VolumeRoot(tree) as root:
        injector = KeyInjector(root, key, as_root=False)
        outcome = injector.inject(injector.choose_users(read_accounts(root))[0])
    after = (tree / "home/u/.ssh/authorized_keys").read_text()
    assert after.startswith(existing)
    assert key.blob in key_blobs(after)
    assert outcome.added == (key.blob not in key_blobs(existing))
