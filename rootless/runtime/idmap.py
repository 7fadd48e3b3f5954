"""User-namespace ID maps: plan them from /etc/subuid and /etc/subgid, apply them.

Container root is the user's own ID; container IDs 1..N are the user's subordinate
range. Without a range, a single-ID map is used (only container root exists) and a
warning names the fix. Mapping more than one ID needs the setuid helpers
newuidmap/newgidmap from Debian's ``uidmap`` package.
"""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence

from rootless._record import Record
from rootless.errors import IDMapError


class IDRange(Record):
    container_id: int
    host_id: int
    size: int


class IDMapPlan(Record):
    uid_map: tuple[IDRange, ...]
    gid_map: tuple[IDRange, ...]
    # True when only the user's own IDs are mapped (no subordinate range).
    single: bool
    warning: str | None = None
    # Inside rootless's own user namespace (a build, `rootless unshare`) we are root
    # there and map nested namespaces ourselves, without the setuid helpers.
    direct: bool = False

    @property
    def size(self) -> int:
        return sum(r.size for r in self.uid_map)


class SubIDFiles(Record):
    subuid: str = "/etc/subuid"
    subgid: str = "/etc/subgid"

    @classmethod
    def from_env(cls) -> SubIDFiles:
        # Tests point these at temporary files to show the no-range fallback.
        return cls(
            os.environ.get("ROOTLESS_SUBUID_FILE", "/etc/subuid"),
            os.environ.get("ROOTLESS_SUBGID_FILE", "/etc/subgid"),
        )


DEFAULT_SUBID_FILES = SubIDFiles()


def parse_subid(text: str, user: str, uid: int) -> list[tuple[int, int]]:
    """The (start, count) ranges of ``user`` (by name or numeric ID) in a subid file."""
    ranges = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or parts[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if count > 0:
            ranges.append((start, count))
    return ranges


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise IDMapError(f"cannot read {path}: {e.strerror}") from None


def plan_idmap(
    uid: int,
    gid: int,
    user: str,
    subuid_text: str,
    subgid_text: str,
    files: SubIDFiles = DEFAULT_SUBID_FILES,
) -> IDMapPlan:
    """Pure: the maps for ``user`` given the contents of the subid files."""
    subuids = parse_subid(subuid_text, user, uid)
    subgids = parse_subid(subgid_text, user, uid)
    if not subuids or not subgids:
        missing = files.subuid if not subuids else files.subgid
        return IDMapPlan(
            uid_map=(IDRange(0, uid, 1),),
            gid_map=(IDRange(0, gid, 1),),
            single=True,
            warning=(
                f'no subordinate ID range for user "{user}" in {missing}; only root is '
                "mapped inside containers, so images with other users will fail; fix: "
                f"sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"
            ),
        )

    def build(own: int, ranges: Sequence[tuple[int, int]]) -> tuple[IDRange, ...]:
        out = [IDRange(0, own, 1)]
        next_id = 1
        for start, count in ranges:
            out.append(IDRange(next_id, start, count))
            next_id += count
        return tuple(out)

    return IDMapPlan(uid_map=build(uid, subuids), gid_map=build(gid, subgids), single=False)


def nested_plan(uid_map_text: str, gid_map_text: str) -> IDMapPlan:
    """Pure: an identity map of every ID this user namespace has, for a nested one.

    One range per range of our own map: the kernel refuses a range that spans two
    ranges of the parent's map.
    """

    def identity(text: str) -> tuple[IDRange, ...]:
        ranges = []
        for line in text.splitlines():
            if line.strip():
                inner, _, count = (int(v) for v in line.split())
                ranges.append(IDRange(inner, inner, count))
        return tuple(ranges)

    uids, gids = identity(uid_map_text), identity(gid_map_text)
    return IDMapPlan(uid_map=uids, gid_map=gids, single=sum(r.size for r in uids) == 1, direct=True)


INITIAL_MAP = ("0", "0", "4294967295")


def is_initial_map(uid_map_text: str) -> bool:
    """Pure: whether ``/proc/self/uid_map`` is the initial user namespace's."""
    return tuple(uid_map_text.split()) == INITIAL_MAP


def current_user_plan(files: SubIDFiles | None = None) -> IDMapPlan:
    if os.getuid() == 0:
        # Root of a user namespace (a build step, `rootless unshare`, or a container
        # running rootless nested): no newuidmap or subordinate range applies here,
        # so nested containers get every ID this namespace has.
        with open("/proc/self/uid_map") as u, open("/proc/self/gid_map") as g:
            uid_map, gid_map = u.read(), g.read()
        if os.environ.get("ROOTLESS_IN_USERNS") == "1" or not is_initial_map(uid_map):
            return nested_plan(uid_map, gid_map)
    files = files or SubIDFiles.from_env()
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return plan_idmap(uid, gid, user, _read(files.subuid), _read(files.subgid), files)


def _map_args(ranges: Sequence[IDRange]) -> list[str]:
    return [str(v) for r in ranges for v in (r.container_id, r.host_id, r.size)]


def apply_idmap(pid: int, plan: IDMapPlan) -> None:
    """Write the maps of process ``pid`` (which has just unshared its user namespace)."""
    if plan.direct:
        hint = (
            "mapping the IDs of a nested user namespace needs CAP_SETUID and CAP_SETGID "
            "here; inside a container, keep them (--cap-add SETUID --cap-add SETGID)"
        )
        _write_proc(pid, "uid_map", _map_text(plan.uid_map), hint)
        _write_proc(pid, "gid_map", _map_text(plan.gid_map), hint)
        return
    if plan.single:
        _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, "uid_map", _map_text(plan.uid_map))
        _write_proc(pid, "gid_map", _map_text(plan.gid_map))
        return
    helpers = []
    for name, ranges in (("newuidmap", plan.uid_map), ("newgidmap", plan.gid_map)):
        exe = shutil.which(name)
        if exe is None:
            raise IDMapError(
                f"cannot map IDs: {name} not found in PATH",
                hint="install it: sudo apt-get install uidmap",
            )
        helpers.append((name, exe, ranges))
    # Run both helpers at once: each is a setuid exec, the slowest part of mapping.
    running = []
    for name, exe, ranges in helpers:
        r, w = os.pipe()
        pid_h = os.posix_spawn(
            exe,
            [name, str(pid), *_map_args(ranges)],
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, w, 2), (os.POSIX_SPAWN_CLOSE, r)],
        )
        os.close(w)
        running.append((name, pid_h, r))
    errors = []
    for name, pid_h, r in running:
        with os.fdopen(r, "rb") as f:
            err = f.read(4096).decode(errors="replace").strip()
        status = os.waitpid(pid_h, 0)[1]
        if os.waitstatus_to_exitcode(status) != 0:
            errors.append(f"{name} failed: {err or 'exit status ' + str(status)}")
    if errors:
        raise IDMapError(
            "cannot map IDs: " + "; ".join(errors),
            hint="check your ranges in /etc/subuid and /etc/subgid (sudo helpers/setup-host USER)",
        )


def _map_text(ranges: Sequence[IDRange]) -> str:
    return "".join(f"{r.container_id} {r.host_id} {r.size}\n" for r in ranges)


def _write_proc(pid: int, name: str, text: str, hint: str | None = None) -> None:
    path = f"/proc/{pid}/{name}"
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise IDMapError(f"cannot write {path}: {e.strerror}", hint=hint) from None


def plan_for_userns(mode: str | None) -> IDMapPlan:
    """The ID map for ``--userns`` (None: the user's default map)."""
    keep = parse_userns(mode)
    base = current_user_plan()
    if keep is None:
        return base
    return plan_keep_id(base, os.getuid(), os.getgid(), keep.uid, keep.gid)


class KeepID(Record):
    """``--userns=keep-id[:uid=N,gid=N]``: the container ID the user's own ID becomes."""

    uid: int
    gid: int


def parse_userns(mode: str | None, uid: int | None = None, gid: int | None = None) -> KeepID | None:
    """None for the default map (no mode, ``""`` or ``host``); the IDs for ``keep-id``.

    ``uid``/``gid`` default to the caller's (the IDs keep-id keeps).
    """
    from rootless.errors import ConfigError

    if mode in (None, "", "host"):
        return None
    name, _, opts = mode.partition(":")
    if name != "keep-id":
        raise ConfigError(
            f'unsupported --userns "{mode}"', hint="use --userns=keep-id[:uid=N,gid=N]"
        )
    ids = {"uid": os.getuid() if uid is None else uid, "gid": os.getgid() if gid is None else gid}
    for item in (i for i in opts.split(",") if i):
        key, _, value = item.partition("=")
        if key not in ids or not value.isdigit():
            raise ConfigError(
                f'invalid --userns "{mode}": unknown option "{item}"',
                hint="keep-id takes uid=N and gid=N",
            )
        ids[key] = int(value)
    return KeepID(ids["uid"], ids["gid"])


def keep_id_user(mode: str | None) -> str | None:
    """The default container user under ``mode``: "UID:GID" for keep-id, else None."""
    keep = parse_userns(mode)
    return None if keep is None else f"{keep.uid}:{keep.gid}"


def plan_keep_id(base: IDMapPlan, host_uid: int, host_gid: int, uid: int, gid: int) -> IDMapPlan:
    """Pure: ``base``'s subordinate IDs with the user's own ID moved to ``uid``/``gid``.

    As Podman: container IDs 0..uid-1 are the first subordinate IDs, ``uid`` is the
    user, uid+1.. are the rest of the subordinate range.
    """
    if base.single or base.direct:
        why = (
            "no subordinate ID range is mapped"
            if base.single
            else "it is not supported inside rootless's own user namespace"
        )
        raise IDMapError(
            f"cannot use --userns=keep-id: {why}",
            hint="give your user a subordinate ID range (sudo helpers/setup-host USER)"
            if base.single
            else "run it outside `rootless unshare`",
        )
    return base._replace(
        uid_map=_keep_one(base.uid_map, host_uid, uid),
        gid_map=_keep_one(base.gid_map, host_gid, gid),
    )


def _keep_one(ranges: Sequence[IDRange], host_id: int, keep: int) -> tuple[IDRange, ...]:
    subordinate = [r for r in ranges if r.container_id != 0]  # 0 is the user's own
    out: list[IDRange] = []
    next_id = 0
    placed = False
    for r in subordinate:
        if not placed and next_id <= keep < next_id + r.size:
            before = keep - next_id
            if before:
                out.append(IDRange(next_id, r.host_id, before))
            out.append(IDRange(keep, host_id, 1))
            if r.size > before:
                out.append(IDRange(keep + 1, r.host_id + before, r.size - before))
            next_id = keep + 1 + r.size - before
            placed = True
            continue
        out.append(IDRange(next_id, r.host_id, r.size))
        next_id += r.size
    if not placed:
        # Above the subordinate range: a gap of unmapped IDs before the user's.
        out.append(IDRange(keep, host_id, 1))
    return tuple(out)
