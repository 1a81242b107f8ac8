"""Whether sshd would read a key file for a user, checked before anything is written.

A key file must not lie on a filesystem that is not on this volume (what is under its
mount point here is stale), its directories must not lead through symlinks out of the home
(or off the path sshd_config names), and with StrictModes its owners and modes must be what
sshd accepts: a refusal names the reason, and the agent never takes a file from its owner.
"""

from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional

from .. import RescueError
from .inroot import DIR_FLAGS, VolumeRoot, as_path, held_fd, replace_fd, resolve_dots, split
from .sshd_config import ROOT_HOME_KEY, Directive, UserIdentity, setting
from .users import Account, read_group_names


def user_identity(root: VolumeRoot, account: Account) -> UserIdentity:
    """The account as sshd_config's Match sees it."""
    return UserIdentity(account.name, account.uid, account.home, read_group_names(root, account))


class KeyFileChecks:
    """The checks of one volume's key files; names and homes are filled from its passwd."""

    def __init__(
        self,
        root: VolumeRoot,
        directives: List[Directive],
        unavailable: Mapping[str, str],
        as_root: bool,
    ) -> None:
        self.root = root
        self.directives = directives
        self.unavailable = unavailable  # mount points not on this volume -> why
        self.as_root = as_root
        self.names: Dict[int, str] = {}  # uid -> first account name, to name owners
        self.homes: Dict[str, str] = {}  # name -> home, for `~name` in sshd_config

    def _owner(self, uid: int) -> str:
        return f"{self.names[uid]} (uid {uid})" if uid in self.names else f"uid {uid}"

    def _tilde_homes(self) -> List[List[str]]:
        """The homes sshd_config's AuthorizedKeysFile names with `~` or `~name` (lexical)."""
        homes = []
        for directive in self.directives:
            if directive.keyword != "authorizedkeysfile":
                continue
            for pattern in directive.args:
                key = pattern[1:].partition("/")[0] or ROOT_HOME_KEY
                if pattern.startswith("~") and key in self.homes:
                    homes.append(resolve_dots(split(self.homes[key])))
        return homes

    def unavailable_reason(self, *paths: str) -> Optional[str]:
        """Why a path lies on a filesystem not on this volume (what is under it here is stale)."""
        for path in paths:
            real = as_path(self.root.resolve(path)[0])
            for mountpoint, reason in self.unavailable.items():
                if real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/"):
                    return f"{path} is on {mountpoint}: {reason}"
        return None

    def usable_path(self, path: str, account: Account, home: List[str]) -> List[str]:
        """The key file's in-volume components, if sshd would read keys there for the account.

        Each directory on the way must lie inside the home: the user's own, or for a path
        outside it the one a `~`/`~name` of sshd_config names (which may itself be a link,
        as /root -> var/roothome). Any other path must be exactly as sshd_config names it:
        a `.ssh -> /root/.ssh` link must not turn ec2-user's key into root's. With
        StrictModes, sshd also wants the file and each directory up to the home (or /)
        owned by the user or root and not writable by others (auth2-pubkeyfile.c,
        auth_secure_path).
        """
        lexical = resolve_dots(split(path))
        own_home = resolve_dots(split(account.home))
        under_home = below(lexical, own_home)
        anchor: Optional[List[str]] = own_home if under_home else None
        resolved_anchor = home
        label = f"{account.name}'s home {account.home}"
        if anchor is None:
            named = [tilde for tilde in self._tilde_homes() if below(lexical, tilde)]
            if named:
                anchor = max(named, key=len)
                resolved_anchor = self.root.resolve(as_path(anchor))[0]
                label = f"the home {as_path(anchor)} that sshd_config names with ~"
        for depth in range(1 if anchor is None else len(anchor) + 1, len(lexical)):
            prefix = lexical[:depth]
            resolved = self.root.resolve(as_path(prefix))[0]
            if anchor is None:
                inside = resolved == prefix
                where = f", not {as_path(lexical)} as sshd_config names it"
            else:
                inside = resolved[: len(resolved_anchor)] == resolved_anchor
                where = f" outside {label}"
            if not inside:
                raise RescueError(
                    f"{as_path(prefix)} is a symlink leading to {as_path(resolved)}{where}: "
                    f"not writing {account.name}'s key through it; make {as_path(prefix)} a "
                    "real directory"
                )
        parent = self.root.resolve(as_path(lexical[:-1]))[0]
        if self._strict_modes(account):
            self._check_owners(parent, len(home) if under_home else 0, lexical[-1], account)
        return [*parent, lexical[-1]]

    def _strict_modes(self, account: Account) -> bool:
        value = setting(self.directives, "strictmodes", user_identity(self.root, account))
        return not value or value[0].lower() != "no"

    def _check_owners(self, parent: List[str], top: int, name: str, account: Account) -> None:
        """Refuse (RescueError) what StrictModes would refuse and the agent will not fix."""
        with held_fd(self.root.open_dir([])) as fd_box:
            for depth in range(len(parent) + 1):
                if depth >= top:
                    here = as_path(parent[:depth])
                    info = os.fstat(fd_box[0])
                    if self._foreign(info, account):
                        raise RescueError(
                            f"{here} belongs to {self._owner(info.st_uid)}: sshd's StrictModes "
                            f"refuses {account.name}'s keys below it; the agent does not take it "
                            "from its owner"
                        )
                    # The key file's own directory is tightened when inside the home.
                    tightened = depth == len(parent) and 0 < top < depth
                    if info.st_mode & 0o022 and not tightened:
                        raise RescueError(
                            f"{here} is writable by its group or others: sshd's StrictModes "
                            f"ignores keys below it; run chmod go-w {here} and run again"
                        )
                if depth == len(parent):
                    break
                try:
                    next_fd = os.open(parent[depth], DIR_FLAGS, dir_fd=fd_box[0])
                except FileNotFoundError:
                    return  # the rest is created by the agent, owned as sshd wants
                fd_box[0] = replace_fd(fd_box[0], next_fd)
            try:
                info = os.lstat(name, dir_fd=fd_box[0])
            except FileNotFoundError:
                return
            if self._foreign(info, account):
                raise RescueError(
                    f"{as_path([*parent, name])} belongs to {self._owner(info.st_uid)}: sshd's "
                    f"StrictModes ignores it for {account.name}, and the agent never changes an "
                    f"existing file's owner; give {account.name} a key file of its own"
                )

    def _foreign(self, info: os.stat_result, account: Account) -> bool:
        """Owned by neither the user nor root. Not as root, the tree belongs to whoever made
        it (a local run), so owners say nothing about the volume: not checked."""
        return self.as_root and info.st_uid not in (0, account.uid)


def below(path: List[str], home: List[str]) -> bool:
    """Whether path lies inside home (never true for home /: that is the whole volume)."""
    return bool(home) and len(path) > len(home) and path[: len(home)] == home
