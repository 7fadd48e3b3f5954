"""``top``: the processes of a container, as seen from inside it.

The processes are the host's whose PID namespace is the one of the container's PID 1
(``exec`` sessions included; their stage-1 helpers stay outside). Reading ``/proc``
is I/O (:func:`read_process`); choosing and formatting columns is pure
(:func:`plan_top`), with psgo's descriptors and headers, which Podman uses.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import attrs

from rootless.errors import ConfigError, ContainerStartError, RootlessError

DEFAULT_DESCRIPTORS = ("user", "pid", "ppid", "pcpu", "etime", "tty", "time", "comm")


@attrs.frozen
class ProcInfo:
    host_pid: int
    pid: int  # in the container's PID namespace
    host_ppid: int
    uid: int  # host IDs; mapped into the container by plan_top
    gid: int
    comm: str
    args: tuple[str, ...]
    state: str
    cpu_ticks: int  # utime + stime
    start_ticks: int  # since boot
    tty_nr: int
    nice: int
    pgid_host: int
    vsz: int  # bytes
    rss: int  # bytes


def read_process(pid: int, proc: str = "/proc") -> ProcInfo | None:
    """What ``top`` shows of host process ``pid`` (None when it is gone)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            raw = f.read()
        with open(f"{proc}/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return None
    comm = raw[raw.index(b"(") + 1 : raw.rindex(b")")].decode(errors="replace")
    fields = raw[raw.rindex(b")") + 2 :].split()
    page = os.sysconf("SC_PAGE_SIZE")
    return ProcInfo(
        host_pid=pid,
        pid=int(status["NSpid"].split()[-1]),
        host_ppid=int(fields[1]),
        uid=int(status["Uid"].split()[0]),
        gid=int(status["Gid"].split()[0]),
        comm=comm,
        args=tuple(a.decode(errors="replace") for a in cmdline.split(b"\0") if a),
        state=fields[0].decode(),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        start_ticks=int(fields[19]),
        tty_nr=int(fields[4]),
        nice=int(fields[16]),
        pgid_host=int(fields[2]),
        vsz=int(fields[20]),
        rss=int(fields[21]) * page,
    )


def same_pid_namespace(pid1: int, proc: str = "/proc") -> list[int]:
    """Host PIDs in the PID namespace of ``pid1`` (itself included)."""
    want = os.stat(f"{proc}/{pid1}/ns/pid")
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            st = os.stat(f"{proc}/{entry}/ns/pid")
        except OSError:  # gone, or not ours to look at
            continue
        if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            found.append(int(entry))
    return sorted(found)


def parse_id_map(text: str) -> list[tuple[int, int, int]]:
    """``/proc/PID/uid_map`` -> [(inside, outside, count)]."""
    return [
        (int(a), int(b), int(c)) for a, b, c in (line.split() for line in text.splitlines() if line)
    ]


def to_inside(host_id: int, idmap: Sequence[tuple[int, int, int]]) -> int:
    for inside, outside, count in idmap:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return 65534  # the overflow ID, as the kernel shows unmapped IDs


def _names(text: str, id_field: int) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) > id_field and fields[id_field].isdigit():
            names.setdefault(int(fields[id_field]), fields[0])
    return names


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``20.386825s``, ``0s``."""
    if seconds <= 0:
        return "0s"
    ns = round(seconds * 1e9)
    hours, ns = divmod(ns, 3_600_000_000_000)
    minutes, ns = divmod(ns, 60_000_000_000)
    secs = f"{ns / 1e9:.9f}".rstrip("0").rstrip(".")
    out = f"{hours}h" if hours else ""
    if hours or minutes:
        out += f"{minutes}m"
    return f"{out}{secs}s"


def tty_name(tty_nr: int) -> str:
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if tty_nr == 0:
        return "?"
    if 136 <= major <= 143:
        return f"pts/{minor + (major - 136) * 256}"
    if major == 4:
        return f"tty{minor}"
    return "?"


@attrs.frozen
class TopContext:
    """What the columns need besides the processes."""

    uid_map: tuple[tuple[int, int, int], ...]
    gid_map: tuple[tuple[int, int, int], ...]
    passwd: str  # the container's /etc/passwd
    group: str
    uptime: float  # seconds since boot, now
    clock_ticks: int


Column = Callable[[ProcInfo, TopContext, Mapping[int, ProcInfo]], str]


def _user(p: ProcInfo, c: TopContext, _: Mapping[int, ProcInfo]) -> str:
    uid = to_inside(p.uid, c.uid_map)
    return _names(c.passwd, 2).get(uid, str(uid))


def _group(p: ProcInfo, c: TopContext, _: Mapping[int, ProcInfo]) -> str:
    gid = to_inside(p.gid, c.gid_map)
    return _names(c.group, 2).get(gid, str(gid))


def _elapsed(p: ProcInfo, c: TopContext) -> float:
    return max(c.uptime - p.start_ticks / c.clock_ticks, 0.0)


def _pcpu(p: ProcInfo, c: TopContext, _: Mapping[int, ProcInfo]) -> str:
    elapsed = _elapsed(p, c)
    return f"{100 * p.cpu_ticks / c.clock_ticks / elapsed if elapsed else 0.0:.3f}"


def _ppid(p: ProcInfo, c: TopContext, procs: Mapping[int, ProcInfo]) -> str:
    parent = procs.get(p.host_ppid)
    return str(parent.pid if parent else 0)


def _pgid(p: ProcInfo, c: TopContext, procs: Mapping[int, ProcInfo]) -> str:
    leader = procs.get(p.pgid_host)
    return str(leader.pid if leader else 0)


# descriptor -> (header, column); the AIX forms (%C ...) are aliases, as in ps(1)
COLUMNS: dict[str, tuple[str, Column]] = {
    "user": ("USER", _user),
    "ruser": ("RUSER", _user),
    "uid": ("UID", lambda p, c, _: str(to_inside(p.uid, c.uid_map))),
    "group": ("GROUP", _group),
    "rgroup": ("RGROUP", _group),
    "gid": ("GID", lambda p, c, _: str(to_inside(p.gid, c.gid_map))),
    "pid": ("PID", lambda p, c, _: str(p.pid)),
    "ppid": ("PPID", _ppid),
    "pgid": ("PGID", _pgid),
    "pcpu": ("%CPU", _pcpu),
    "etime": ("ELAPSED", lambda p, c, _: go_duration(_elapsed(p, c))),
    "time": ("TIME", lambda p, c, _: go_duration(p.cpu_ticks / c.clock_ticks)),
    "tty": ("TTY", lambda p, c, _: tty_name(p.tty_nr)),
    "comm": ("COMMAND", lambda p, c, _: p.comm),
    "args": ("COMMAND", lambda p, c, _: " ".join(p.args) or f"[{p.comm}]"),
    "nice": ("NI", lambda p, c, _: str(p.nice)),
    "state": ("STATE", lambda p, c, _: p.state),
    "vsz": ("VSZ", lambda p, c, _: str(p.vsz // 1024)),
    "rss": ("RSS", lambda p, c, _: str(p.rss // 1024)),
    "hpid": ("HPID", lambda p, c, _: str(p.host_pid)),
    "huser": ("HUSER", lambda p, c, _: str(p.uid)),
    "hgroup": ("HGROUP", lambda p, c, _: str(p.gid)),
}
AIX = {
    "%C": "pcpu", "%G": "group", "%P": "ppid", "%U": "user", "%a": "args", "%c": "comm",
    "%g": "rgroup", "%n": "nice", "%p": "pid", "%r": "pgid", "%t": "etime", "%u": "ruser",
    "%x": "time", "%y": "tty", "%z": "vsz",
}  # fmt: skip


def parse_descriptors(args: Sequence[str]) -> list[str]:
    """``top`` descriptors, comma- or space-separated; the default set when none."""
    names = [d for arg in args for d in arg.replace(",", " ").split()]
    if not names:
        return list(DEFAULT_DESCRIPTORS)
    out = []
    for name in names:
        name = AIX.get(name, name)
        if name not in COLUMNS:
            raise ConfigError(
                f'unknown top descriptor "{name}"',
                hint="known descriptors: " + ", ".join(sorted(COLUMNS)),
            )
        out.append(name)
    return out


def plan_top(
    procs: Sequence[ProcInfo], descriptors: Sequence[str], ctx: TopContext
) -> list[list[str]]:
    """The header row and one row per process, ordered by PID in the container."""
    by_host = {p.host_pid: p for p in procs}
    rows = [[COLUMNS[d][0] for d in descriptors]]
    for p in sorted(procs, key=lambda p: p.pid):
        rows.append([COLUMNS[d][1](p, ctx, by_host) for d in descriptors])
    return rows


def top(ref: str, descriptors: Sequence[str] = ()) -> list[list[str]]:
    """The rows ``top`` prints for container ``ref``."""
    from rootless._procfs import process_start_time
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    wanted = parse_descriptors(descriptors)
    record = lifecycle.get(ref, containers_store())
    live = record.status in ("running", "paused")
    if not live or process_start_time(record.pid) != record.pid_start:
        raise ContainerStartError(
            f"cannot show the processes of container {record.name}: it is not running",
            hint="start it first: rootless start " + record.name,
        )
    procs = [p for p in map(read_process, same_pid_namespace(record.pid)) if p]
    with open(f"/proc/{record.pid}/uid_map") as f:
        uid_map = tuple(parse_id_map(f.read()))
    with open(f"/proc/{record.pid}/gid_map") as f:
        gid_map = tuple(parse_id_map(f.read()))
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    ctx = TopContext(
        uid_map,
        gid_map,
        _container_file(record.pid, "/etc/passwd"),
        _container_file(record.pid, "/etc/group"),
        uptime,
        os.sysconf("SC_CLK_TCK"),
    )
    return plan_top(procs, wanted, ctx)


def _container_file(pid: int, path: str) -> str:
    """A small file of the container, resolved inside its root (never the host's)."""
    from rootless.sys.openat2 import open_in_root

    try:
        root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        fd = open_in_root(root, path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            return f.read(1 << 20).decode(errors="replace")
    except (OSError, RootlessError):  # missing or unreadable: names fall back to numbers
        return ""
    finally:
        os.close(root)
