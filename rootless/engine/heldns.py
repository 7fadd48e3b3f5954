"""A user namespace held open for many containers, as Podman's pause process holds one.

The API's runner (one per client) makes one when it starts: a process that is root of
a new user namespace with the user's default ID map and does nothing else. Foreground
runs in the runner's calls join it instead of making their own, which saves the two
setuid helpers (newuidmap, newgidmap: ~4 ms) on every container. Each container still
gets its own mount, PID, network, IPC and UTS namespaces; what it shares with its
siblings is the ID map, which is the same for all of them anyway.

The holder is named to the calls by ``ROOTLESS_USERNS_HOLDER=PID:START`` (its start
time guards against a reused PID) and dies with the process that made it.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, NoReturn

from rootless._procfs import process_start_time

if TYPE_CHECKING:
    from rootless.runtime.idmap import IDMapPlan, IDRange
    from rootless.runtime.spec import Spec

HOLDER_ENV = "ROOTLESS_USERNS_HOLDER"


def hold_user_namespace() -> int | None:
    """Start the holder and name it in this process's environment; its PID, or None
    when the IDs cannot be mapped here (then every container maps its own)."""
    from rootless.errors import RootlessError
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.userns import fork_in_userns

    def hold() -> NoReturn:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        while True:
            signal.pause()

    try:
        plan = current_user_plan()
        if plan.direct:  # already inside a user namespace: nothing to save
            return None
        pid = fork_in_userns(plan, hold)
    except RootlessError:
        return None
    os.environ[HOLDER_ENV] = f"{pid}:{process_start_time(pid)}"
    return pid


def join_held(spec: Spec, idmap: IDMapPlan) -> Spec:
    """``spec`` joining the held user namespace, when one is named, is alive and has
    exactly the map the container would get; otherwise ``spec`` unchanged."""
    held = os.environ.get(HOLDER_ENV, "")
    pid, _, start = held.partition(":")
    users = [n for n in spec.linux.namespaces if n.type == "user"]
    if not pid.isdigit() or len(users) != 1 or users[0].path is not None:
        return spec
    if str(process_start_time(int(pid))) != start:
        return spec
    try:
        with open(f"/proc/{pid}/uid_map") as u, open(f"/proc/{pid}/gid_map") as g:
            maps = (_parse_map(u.read()), _parse_map(g.read()))
    except OSError:
        return spec
    if maps != (_ranges(idmap.uid_map), _ranges(idmap.gid_map)):
        return spec
    from rootless.runtime.spec import join_namespaces

    return join_namespaces(spec, {"user": f"/proc/{pid}/ns/user"})


def _parse_map(text: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in line.split()) for line in text.splitlines() if line)


def _ranges(ranges: tuple[IDRange, ...]) -> tuple[tuple[int, ...], ...]:
    return tuple((r.container_id, r.host_id, r.size) for r in ranges)
