"""Put one public key into the right authorized_keys files of a Linux volume.

Who gets the key and how each file is written: docs/sshd-config.md.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Set, Tuple

from .. import RescueError
from .inroot import DIR_FLAGS, VolumeRoot, as_path, resolve_dots, split, write_all
from .keys import PublicKey
from .sshd_config import (
    ROOT_HOME_KEY,
    Directive,
    KeysChoice,
    UserIdentity,
    authorized_keys_choices,
    key_login_refusal,
    keys_command,
    permit_root_login,
    permit_root_login_choices,
    read_directives,
    setting,
)
from .users import (
    CLOUD_USERS,
    Account,
    distro_name,
    passwd_homes,
    read_group_names,
    read_passwd,
)

ROOT_KEY_LOGINS = ("yes", "prohibit-password", "without-password")
SELINUX_XATTR = "security.selinux"
KEY_TYPE_PREFIXES = ("ssh-", "ecdsa-", "sk-")


def _parse_key_line(line: str) -> Optional[Tuple[str, str]]:
    """(options, blob) of an authorized_keys line, None for comments and blank lines."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    for index, word in enumerate(words[:-1]):
        if word.startswith(KEY_TYPE_PREFIXES):
            return " ".join(words[:index]), words[index + 1]
    return None


def key_blobs(text: str) -> List[str]:
    """The base64 blob of every key line, with options or without."""
    return [parsed[1] for parsed in map(_parse_key_line, text.splitlines()) if parsed]


def first_key_line(texts: List[str], blob: str) -> Optional[Tuple[int, int, bool]]:
    """(file index, line index, has options) of the first line sshd finds holding `blob`.

    Lines end at a newline only, as sshd reads them (str.splitlines also breaks at form
    feeds, U+2028...), so the index counts the same lines as the file's bytes split there.
    """
    for file_index, text in enumerate(texts):
        for line_index, line in enumerate(text.split("\n")):
            parsed = _parse_key_line(line)
            if parsed and parsed[1] == blob:
                return file_index, line_index, bool(parsed[0])
    return None


def has_unforced_key(text: str) -> bool:
    """Whether some key line carries no forced command (so the account is really used)."""
    return any(
        parsed and "command=" not in parsed[0] for parsed in map(_parse_key_line, text.splitlines())
    )


class SELinuxLabels:
    """Keeps SELinux labels right for inodes the agent creates, or asks for a relabel.

    A new inode gets its parent directory's label; `.ssh` and what is inside it get the
    type ssh_home_t, which sshd_t may read, instead of the home's user_home_dir_t.
    """

    def __init__(self, root: VolumeRoot, can_set: bool) -> None:
        config = root.read_text("/etc/selinux/config") or ""
        mode = ""
        for line in config.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "SELINUX":
                mode = value.strip().strip("\"'").lower()
        self.active = mode in ("enforcing", "permissive")
        self.can_set = can_set
        self.copied = False
        self.relabel_needed = False

    def label(self, parent_fd: int, new_fd: int, ssh_object: bool) -> None:
        if not self.active:
            return
        if not self.can_set:
            self.relabel_needed = True
            return
        try:
            context = os.getxattr(parent_fd, SELINUX_XATTR)
            os.setxattr(new_fd, SELINUX_XATTR, _ssh_type(context) if ssh_object else context)
            self.copied = True
        except OSError:
            self.relabel_needed = True

    def action(self) -> str:
        if self.relabel_needed:
            return "autorelabel"
        return "label-copied" if self.copied else "none"


def _ssh_type(context: bytes) -> bytes:
    parts = context.rstrip(b"\0").split(b":", 3)
    if len(parts) == 4 and parts[2] in (b"user_home_dir_t", b"user_home_t", b"home_root_t"):
        parts[2] = b"ssh_home_t"
        return b":".join(parts) + b"\0"
    return context


FULL_VOLUME = (
    "the volume is full: no room for the key in {path}, which is left as it was; free space "
    "on the volume from a helper (old logs under /var/log, caches under /var/cache, core "
    "dumps) or grow it (EC2 ModifyVolume, then growpart and resize2fs or xfs_growfs), and "
    "run again"
)


class UserOutcome(NamedTuple):
    name: str
    uid: int
    files: List[str]
    added: bool
    refused: Optional[str]
    notes: Tuple[str, ...] = ()
    # The real path of each of `files`, when links made one differ from the configured one.
    written: Tuple[str, ...] = ()

    def as_report(self) -> Dict[str, Any]:
        report: Dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "files": self.files,
            "added": self.added,
        }
        if self.written:
            report["written"] = self.written[0] if len(self.written) == 1 else list(self.written)
        if self.refused:
            report["refused"] = self.refused
        if self.notes:
            report["notes"] = list(self.notes)
        return report


class KeyInjector:
    """Adds one key for the chosen users of one volume and counts what it changed."""

    def __init__(
        self,
        root: VolumeRoot,
        key: PublicKey,
        as_root: bool,
        unavailable: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.root = root
        self.unavailable = dict(unavailable or {})  # mount points not on this volume -> why
        self.key = key
        self.as_root = as_root
        self.changed_files = 0
        self.selinux = SELinuxLabels(root, can_set=as_root)
        self.directives: List[Directive] = read_directives(root)
        self.names: Dict[int, str] = {}  # uid -> first account name, to name owners
        self.homes: Dict[str, str] = {}  # name -> home, for `~name` in sshd_config
        self.shared: Set[str] = set()  # key files sshd reads for more than one login account
        # real key file -> uid-0 account sshd reads it for, when that account is not chosen
        self.root_files: Dict[str, str] = {}

    def identity(self, account: Account) -> UserIdentity:
        return UserIdentity(
            account.name, account.uid, account.home, read_group_names(self.root, account)
        )

    def choose_users(self, accounts: List[Account]) -> List[Account]:
        self.homes = passwd_homes(accounts)
        chosen = []
        readers: Dict[str, int] = {}
        for account in accounts:
            self.names.setdefault(account.uid, account.name)
            if not account.can_log_in:
                continue
            files = self._key_files(account)
            for path in {as_path(resolve_dots(split(path))) for path in files}:
                readers[path] = readers.get(path, 0) + 1
            existing = [path for path in files if self.root.resolve(path, follow_last=False)[1]]
            if account.uid == 0:
                if existing and self._root_uses_keys(account, existing):
                    chosen.append(account)
            elif existing or account.name in CLOUD_USERS:
                chosen.append(account)
        self.shared = {path for path, count in readers.items() if count > 1}
        self.root_files = self._root_files(accounts, chosen)
        return chosen

    def _root_files(self, accounts: List[Account], chosen: List[Account]) -> Dict[str, str]:
        """The real key files sshd may read for a uid-0 account not chosen for the key.

        Writing the key there would give root access the owner never granted (a file root
        owns passes StrictModes for root too). Any uid-0 account counts, whatever its shell,
        when some value of PermitRootLogin sshd may apply lets keys in."""
        chosen_names = {account.name for account in chosen}
        files: Dict[str, str] = {}
        for account in accounts:
            if account.uid != 0 or account.name in chosen_names:
                continue
            logins = permit_root_login_choices(self.directives, self.identity(account))
            if not any(login in ROOT_KEY_LOGINS for login in logins):
                continue
            for path in self._key_files(account):
                files.setdefault(as_path(self.root.resolve(path)[0]), account.name)
        return files

    def _key_files(self, account: Account) -> List[str]:
        """Every file sshd may read for the account, whatever the connection."""
        try:
            choices = authorized_keys_choices(self.directives, self.identity(account), self.homes)
        except RescueError:
            return []
        return list(dict.fromkeys(path for choice in choices for path in choice.paths))

    def _notes(self, identity: UserIdentity, choices: List[KeysChoice]) -> List[str]:
        notes = []
        command = keys_command(self.directives, identity)
        if command:
            notes.append(
                f"AuthorizedKeysCommand {command} also decides which keys log in; "
                "sshd reads the files only while AuthorizedKeysFile is not none"
            )
        for choice in choices:
            if not choice.paths:
                notes.append(
                    f"connections matching {choice.match or 'no Match'} read no key file "
                    "(AuthorizedKeysFile none): the key cannot log in through them"
                )
        if len([choice for choice in choices if choice.paths]) > 1:
            notes.append(
                "sshd_config picks the key file by connection ("
                + "; ".join(choice.match for choice in choices if choice.match)
                + "): the key went to each file it may pick"
            )
        return notes

    def _target(self, paths: List[str]) -> Tuple[str, Optional[int], bool]:
        """(file, line to insert before or None to append, whether to write) for the key."""
        texts = [self.root.read_text(path) or "" for path in paths]
        first = first_key_line(texts, self.key.blob)
        if first is None:
            return paths[0], None, True
        file_index, line_index, has_options = first
        return paths[file_index], line_index, has_options

    def _root_uses_keys(self, account: Account, existing: List[str]) -> bool:
        if permit_root_login(self.directives, self.identity(account)) not in ROOT_KEY_LOGINS:
            return False
        return any(has_unforced_key(self.root.read_text(path) or "") for path in existing)

    def inject(self, account: Account) -> UserOutcome:
        name, uid = account.name, account.uid
        identity = self.identity(account)
        try:
            choices = authorized_keys_choices(self.directives, identity, self.homes)
        except RescueError as exc:
            return UserOutcome(name, uid, [], False, str(exc))
        refusal, access_notes = key_login_refusal(self.directives, identity)
        notes = tuple(self._notes(identity, choices) + access_notes)
        if refusal:
            return UserOutcome(name, uid, [], False, refusal, notes)
        readable = [choice for choice in choices if choice.paths]
        if not readable:
            command = keys_command(self.directives, identity)
            reason = "sshd_config sets AuthorizedKeysFile none: " + (
                f"only AuthorizedKeysCommand {command} gives keys"
                if command
                else "sshd reads no key file at all"
            )
            return UserOutcome(name, uid, [], False, reason, notes)
        elsewhere = self._unavailable(
            account.home, *(path for choice in readable for path in choice.paths)
        )
        if elsewhere:
            return UserOutcome(name, uid, [readable[0].paths[0]], False, elsewhere, notes)
        present, targets = self._targets(readable)
        home, home_exists = self.root.resolve(account.home)
        if targets and not home_exists:
            reason = f"home directory {account.home} does not exist on the volume"
            return UserOutcome(name, uid, [targets[0][0]], False, reason, notes)
        # Every file is checked before any is written: a refusal changes nothing.
        reals: Dict[str, List[str]] = {}
        for path in [*present, *(path for path, _ in targets)]:
            try:
                reals[path] = self._usable_path(path, account, home)
            except RescueError as exc:
                return UserOutcome(name, uid, [path], False, str(exc), notes)
        root_file = self._root_file(account, reals, targets)
        if root_file:
            return UserOutcome(name, uid, [root_file[0]], False, root_file[1], notes)
        written: List[str] = []
        for path, before in targets:
            try:
                shared = as_path(resolve_dots(split(path))) in self.shared
                self._write_key(reals[path], account, home, before, shared)
            except (RescueError, OSError) as exc:
                reason = self._write_failure(path, reals[path], exc)
                return UserOutcome(name, uid, [*written, path], bool(written), reason, notes)
            written.append(path)
        files = list(dict.fromkeys(present + written))
        shown: Tuple[str, ...] = ()
        if any(_shown(reals[path], path) for path in files):
            shown = tuple(as_path(reals[path]) for path in files)
        return UserOutcome(name, uid, files, bool(written), None, notes, shown)

    def _targets(
        self, readable: List[KeysChoice]
    ) -> Tuple[List[str], List[Tuple[str, Optional[int]]]]:
        """(files whose first line with the key has no options, (file, line to insert before)
        for each file to write)."""
        present: List[str] = []
        targets: List[Tuple[str, Optional[int]]] = []
        for choice in readable:
            path, before, write = self._target(choice.paths)
            if not write:
                present.append(path)
            elif (path, before) not in targets:
                targets.append((path, before))
        return present, targets

    def _root_file(
        self, account: Account, reals: Dict[str, List[str]], targets: List[Tuple[str, Any]]
    ) -> Optional[Tuple[str, str]]:
        """(file, why) when a file to write is also a uid-0 account's key file."""
        for path, _ in targets:
            owner = self.root_files.get(as_path(reals[path]))
            if account.uid != 0 and owner is not None:
                return path, (
                    f"{as_path(reals[path])} is also {owner}'s key file (uid 0) and "
                    "PermitRootLogin allows keys: the key would log in as root"
                )
        return None

    @staticmethod
    def _write_failure(path: str, real: List[str], exc: Exception) -> str:
        if isinstance(exc, RescueError):
            return str(exc)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return FULL_VOLUME.format(path=as_path(real))
        # e.g. a read-only volume: say which file, go on with the other users
        strerror = exc.strerror if isinstance(exc, OSError) else None
        return f"writing {path} failed: {strerror or exc}; it is left as it was"

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

    def _unavailable(self, *paths: str) -> Optional[str]:
        """Why a path lies on a filesystem not on this volume (what is under it here is stale)."""
        for path in paths:
            real = as_path(self.root.resolve(path)[0])
            for mountpoint, reason in self.unavailable.items():
                if real == mountpoint or real.startswith(mountpoint.rstrip("/") + "/"):
                    return f"{path} is on {mountpoint}: {reason}"
        return None

    def _usable_path(self, path: str, account: Account, home: List[str]) -> List[str]:
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
        under_home = _below(lexical, own_home)
        anchor: Optional[List[str]] = own_home if under_home else None
        resolved_anchor = home
        label = f"{account.name}'s home {account.home}"
        if anchor is None:
            named = [tilde for tilde in self._tilde_homes() if _below(lexical, tilde)]
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
        value = setting(self.directives, "strictmodes", self.identity(account))
        return not value or value[0].lower() != "no"

    def _check_owners(self, parent: List[str], top: int, name: str, account: Account) -> None:
        """Refuse (RescueError) what StrictModes would refuse and the agent will not fix."""
        with self._open(self.root.open_dir([])) as fd_box:
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
                fd_box[0] = _swap(fd_box[0], next_fd)
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

    @staticmethod
    @contextmanager
    def _open(fd: int) -> Iterator[List[int]]:
        """Hold a (replaceable) fd in a box and close whichever fd it holds at the end."""
        box = [fd]
        try:
            yield box
        finally:
            os.close(box[0])

    def _write_key(
        self,
        real: List[str],
        account: Account,
        home: List[str],
        before: Optional[int] = None,
        shared: bool = False,
    ) -> None:
        """Create the key file or add the key to it (appended, or inserted before line
        `before`); on any failure undo what this attempt created. A new file outside the
        home that other accounts read too (`shared`) is root's, 644 (see the docstring)."""
        parent, name = real[:-1], real[-1]
        in_home = len(parent) > len(home) and parent[: len(home)] == home
        created: List[List[str]] = []
        try:
            with self._open(self._ensure_dirs(parent, account, home, created)) as dir_box:
                dir_fd = dir_box[0]
                try:
                    info: Optional[os.stat_result] = os.lstat(name, dir_fd=dir_fd)
                except FileNotFoundError:
                    info = None
                if info is not None:
                    self._refuse_odd_file(dir_fd, name, as_path(real), info)
                tightened = in_home and self._tighten(dir_fd)
                if info is None:
                    owner = None if shared and not in_home else account
                    self._create_file(dir_fd, name, owner, ssh_object=in_home)
                else:
                    self._append_existing(dir_fd, name, as_path(real), info, before)
        except BaseException:
            self._remove_dirs(created)
            raise
        self.changed_files += len(created) + 1 + int(tightened)

    @staticmethod
    def _refuse_odd_file(dir_fd: int, name: str, path: str, info: os.stat_result) -> None:
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=dir_fd)
            raise RescueError(
                f"{path} is a symlink to {target}: not following it; make it a regular file"
            )
        if not stat.S_ISREG(info.st_mode):
            raise RescueError(f"{path} is not a regular file")
        if info.st_nlink > 1:
            raise RescueError(
                f"{path} has {info.st_nlink} hard links: refusing to write through them"
            )

    def _ensure_dirs(
        self, components: List[str], account: Account, home: List[str], created: List[List[str]]
    ) -> int:
        """Open the directory, creating missing components (owned per the class docstring)."""
        fd = os.dup(self.root.fd)
        try:
            for depth, name in enumerate(components, start=1):
                try:
                    next_fd = os.open(name, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    next_fd = self._make_dir(fd, name, components[:depth], account, home, created)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise RescueError(
                            f"{as_path(components[:depth])} is not a directory"
                        ) from exc
                    raise
                fd = _swap(fd, next_fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_dir(
        self,
        parent_fd: int,
        name: str,
        components: List[str],
        account: Account,
        home: List[str],
        created: List[List[str]],
    ) -> int:
        in_home = components[: len(home)] == home and len(components) > len(home)
        os.mkdir(name, 0o700 if in_home else 0o755, dir_fd=parent_fd)
        created.append(components)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        try:
            os.fchmod(fd, 0o700 if in_home else 0o755)  # mkdir's mode passes through the umask
            if in_home and self.as_root:
                os.fchown(fd, account.uid, account.gid)
            self.selinux.label(parent_fd, fd, ssh_object=in_home)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _remove_dirs(self, created: List[List[str]]) -> None:
        """Remove directories this attempt made (empty ones only: rmdir never deletes data)."""
        for components in reversed(created):
            parent = components[:-1]  # one line, not parenthesised: Python 3.7 has no such with
            with suppress(OSError, RescueError), self._open(self.root.open_dir(parent)) as box:
                os.rmdir(components[-1], dir_fd=box[0])

    def _create_file(
        self, dir_fd: int, name: str, owner: Optional[Account], ssh_object: bool
    ) -> None:
        """A new key file: 600 and the owner's, or with no owner root's 644 (sshd reads it
        with the user's rights)."""
        mode = 0o600 if owner else 0o644
        fd = os.open(
            name,
            os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
        try:
            try:
                os.fchmod(fd, mode)
                if self.as_root:
                    os.fchown(fd, *((owner.uid, owner.gid) if owner else (0, 0)))
                self.selinux.label(dir_fd, fd, ssh_object=ssh_object)
                write_all(fd, (self.key.line + "\n").encode(), 0)
            finally:
                os.close(fd)
        except BaseException:
            with suppress(OSError):  # an empty key file must not stay behind
                os.unlink(name, dir_fd=dir_fd)
            raise

    def _append_existing(
        self,
        dir_fd: int,
        name: str,
        path: str,
        before: os.stat_result,
        line_index: Optional[int] = None,
    ) -> None:
        """Append the key line in place, or insert it before line `line_index` (inode, owner,
        label kept). The file only grows: the bytes past its old end are written first (only
        they need free blocks), then an insert shifts the lines after it in place. On any
        failure the file is put back byte for byte: truncated to its old length and, after
        an insert, its old bytes from the insertion point written back."""
        # pwrite ignores its offset under O_APPEND (pwrite(2), BUGS): appends only.
        append = os.O_APPEND if line_index is None else 0
        flags = os.O_RDWR | append | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        with self._open(os.open(name, flags, dir_fd=dir_fd)) as box:
            fd = box[0]
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (before.st_dev, before.st_ino):
                raise RescueError(f"{path} changed while being opened")
            content = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                content += chunk
            separator = b"\n" if content and not content.endswith(b"\n") else b""
            line = (self.key.line + "\n").encode()
            if line_index is None:
                at, new = len(content), content + separator + line
            else:
                at = self._line_offset(content, line_index, path)
                new = content[:at] + line + content[at:] + separator
            try:
                write_all(fd, new[len(content) :], len(content))
                if at < len(content):
                    write_all(fd, new[at : len(content)], at)
                # sshd's StrictModes ignores a key file others can write: that alone locks
                # users out. The owner is never changed (_check_owners refused others').
                if info.st_mode & 0o022:
                    os.fchmod(fd, stat.S_IMODE(info.st_mode) & ~0o022)
            except BaseException as exc:
                _restore(fd, content, at, path, exc)
                raise

    def _line_offset(self, content: bytes, line_index: int, path: str) -> int:
        """Where line `line_index` starts (lines end at a newline); it must still hold the key."""
        lines = content.split(b"\n")
        if line_index < len(lines):
            parsed = _parse_key_line(lines[line_index].decode("utf-8", errors="replace"))
            if parsed and parsed[1] == self.key.blob:
                return sum(len(line) + 1 for line in lines[:line_index])
        raise RescueError(f"{path} changed while being read; run again")

    def _tighten(self, dir_fd: int) -> bool:
        info = os.fstat(dir_fd)
        if info.st_mode & 0o022:
            os.fchmod(dir_fd, stat.S_IMODE(info.st_mode) & ~0o022)
            return True
        return False

    def finish(self) -> str:
        """Write /.autorelabel when a label could not be set; return the SELinux action."""
        if self.selinux.relabel_needed:
            fd = os.open(
                ".autorelabel",
                os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o644,
                dir_fd=self.root.fd,
            )
            os.close(fd)
            self.changed_files += 1
        return self.selinux.action()


def _restore(fd: int, content: bytes, at: int, path: str, exc: BaseException) -> None:
    """Put back a key file whose bytes from `at` on were `content[at:]`, or say it is not."""
    try:
        os.ftruncate(fd, len(content))  # first: frees the blocks the new bytes took
        if at < len(content):
            write_all(fd, content[at:], at)
        else:
            os.fsync(fd)
    except (OSError, OverflowError) as failed:  # what os calls raise
        raise RescueError(
            f"writing {path} failed ({exc}) and putting its old content back failed too "
            f"({failed}): check the file before the instance boots"
        ) from exc


def _below(path: List[str], home: List[str]) -> bool:
    """Whether path lies inside home (never true for home /: that is the whole volume)."""
    return bool(home) and len(path) > len(home) and path[: len(home)] == home


def _swap(old_fd: int, new_fd: int) -> int:
    os.close(old_fd)
    return new_fd


def _shown(real: List[str], configured: str) -> Optional[str]:
    """The real path when links made it differ from the configured one."""
    written = as_path(real)
    return written if written != as_path(resolve_dots(split(configured))) else None


def inject_key(
    root_path: Path, key: PublicKey, unavailable: Optional[Mapping[str, str]] = None
) -> Dict[str, Any]:
    """Repair a Linux root tree at root_path; the report fields of the agent's JSON line.

    unavailable: home mount points whose filesystem is not on this volume -> why; users
    whose keys would go there are refused, not written into the stale directory below.
    """
    as_root = os.geteuid() == 0
    with VolumeRoot(root_path) as root:
        injector = KeyInjector(root, key, as_root, unavailable)
        all_accounts, skipped = read_passwd(root)
        accounts = injector.choose_users(all_accounts)
        if not accounts:
            raise RescueError(
                "no login user to give the key to: the volume's /etc/passwd has none of the "
                f"default cloud users ({', '.join(CLOUD_USERS)}) and no user with an "
                "authorized_keys file" + "".join(f"; {reason}" for reason in skipped)
            )
        outcomes = [injector.inject(account) for account in accounts]
        selinux = injector.finish()
        key_users = [outcome.name for outcome in outcomes if outcome.refused is None]
        if not key_users:
            reasons = "; ".join(f"{outcome.name}: {outcome.refused}" for outcome in outcomes)
            raise RescueError(f"no user could be given the key: {reasons}")
        report: Dict[str, Any] = {
            "distro": distro_name(root),
            "users": [outcome.as_report() for outcome in outcomes],
            "key_users": key_users,
            "fingerprint": key.fingerprint,
            "selinux": selinux,
            "changed_files": injector.changed_files,
        }
        if skipped:
            report["passwd_skipped"] = skipped
        if not as_root:
            report["ownership"] = "skipped: not root"
        return report
