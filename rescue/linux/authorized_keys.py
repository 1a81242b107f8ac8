"""Put one public key into the right authorized_keys files of a Linux volume.

Who gets the key, which files, and what outcome each user has: here. Whether sshd would
read a file: key_paths; writing it safely: key_writer; its lines: key_lines.
Design: docs/sshd-config.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Set, Tuple

from .. import RescueError
from .inroot import VolumeRoot, as_path, resolve_dots, split
from .key_lines import first_key_line, has_unforced_key
from .key_paths import KeyFileChecks, user_identity
from .key_writer import KeyWriter, write_failure
from .keys import PublicKey
from .sshd_config import Directive, UserIdentity, read_directives
from .sshd_key_login import (
    KeysChoice,
    authorized_keys_choices,
    key_login_refusal,
    keys_command,
    permit_root_login,
    permit_root_login_choices,
)
from .users import CLOUD_USERS, Account, distro_name, passwd_homes, read_passwd

ROOT_KEY_LOGINS = ("yes", "prohibit-password", "without-password")


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
        self.key = key
        self.as_root = as_root
        self.writer = KeyWriter(root, key, as_root)
        self.directives: List[Directive] = read_directives(root)
        self.checks = KeyFileChecks(root, self.directives, dict(unavailable or {}), as_root)
        self.names = self.checks.names  # uid -> first account name, to name owners
        self.shared: Set[str] = set()  # key files sshd reads for more than one login account
        # real key file -> uid-0 account sshd reads it for, when that account is not chosen
        self.root_files: Dict[str, str] = {}

    @property
    def homes(self) -> Dict[str, str]:
        """name -> home, for `~name` in sshd_config."""
        return self.checks.homes

    @property
    def changed_files(self) -> int:
        return self.writer.changed_files

    def identity(self, account: Account) -> UserIdentity:
        return user_identity(self.root, account)

    def choose_users(self, accounts: List[Account]) -> List[Account]:
        self.checks.homes = passwd_homes(accounts)
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
        elsewhere = self.checks.unavailable_reason(
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
                reals[path] = self.checks.usable_path(path, account, home)
            except RescueError as exc:
                return UserOutcome(name, uid, [path], False, str(exc), notes)
        root_file = self._root_file(account, reals, targets)
        if root_file:
            return UserOutcome(name, uid, [root_file[0]], False, root_file[1], notes)
        written: List[str] = []
        for path, before in targets:
            try:
                shared = as_path(resolve_dots(split(path))) in self.shared
                self.writer.write(reals[path], account, home, before, shared)
            except (RescueError, OSError) as exc:
                reason = write_failure(path, reals[path], exc)
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

    def finish(self) -> str:
        """Write /.autorelabel when a label could not be set; return the SELinux action."""
        return self.writer.finish()


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
