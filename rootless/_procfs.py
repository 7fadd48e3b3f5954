"""Process liveness from /proc that PID reuse cannot fool: a PID plus its start time."""

from __future__ import annotations


def process_start_time(pid: int, proc: str = "/proc") -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot), or None when the process is
    gone or a zombie."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):  # dead, waiting to be reaped
        return None
    return int(fields[19])


def is_alive(pid: int, start: int) -> bool:
    """True if ``pid`` still runs and is the same process (not a reused PID)."""
    return pid > 0 and process_start_time(pid) == start
