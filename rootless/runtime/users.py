"""Resolve ``-u USER[:GROUP]`` against the rootfs's /etc/passwd and /etc/group (pure parsing)."""

from __future__ import annotations

import os

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.spec import User


class PasswdEntry(Record):
    name: str
    uid: int
    gid: int
    home: str


class GroupEntry(Record):
    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit() and f[3].isdigit():
            out.append(PasswdEntry(f[0], int(f[2]), int(f[3]), f[5]))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out = []
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 4 and f[2].isdigit():
            out.append(GroupEntry(f[0], int(f[2]), tuple(m for m in f[3].split(",") if m)))
    return out


class ResolvedUser(Record):
    user: User
    home: str


def resolve_user(spec: str, passwd_text: str, group_text: str) -> ResolvedUser:
    """Docker's rules: a name or number, optionally ``:group``; a known user also gets
    its primary group, home and the supplementary groups that list it."""
    user_part, _, group_part = spec.partition(":")
    passwd = parse_passwd(passwd_text)
    groups = parse_group(group_text)
    entry: PasswdEntry | None = None
    if user_part == "":
        user_part = "0"
    if user_part.isdigit():
        uid = int(user_part)
        entry = next((p for p in passwd if p.uid == uid), None)
    else:
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None:
            raise ConfigError(
                f"unable to find user {user_part}: no matching entries in passwd file",
                hint="use a numeric UID or a user that exists in the image's /etc/passwd",
            )
        uid = entry.uid
    gid = entry.gid if entry else 0
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            g = next((g for g in groups if g.name == group_part), None)
            if g is None:
                raise ConfigError(
                    f"unable to find group {group_part}: no matching entries in group file",
                    hint="use a numeric GID or a group that exists in the image's /etc/group",
                )
            gid = g.gid
    extra: tuple[int, ...] = ()
    if entry is not None and not group_part:
        extra = tuple(sorted({g.gid for g in groups if entry.name in g.members} - {gid}))
    return ResolvedUser(User(uid, gid, extra), entry.home if entry else "/")


def read_user_databases(root: str = "/") -> tuple[str, str]:
    """The texts of ``root``'s /etc/passwd and /etc/group ("" for a missing file)."""

    def read(path: str) -> str:
        try:
            with open(os.path.join(root, path)) as f:
                return f.read()
        except OSError:
            return ""

    return read("etc/passwd"), read("etc/group")
