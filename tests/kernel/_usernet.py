"""What the user-network tests look at: a network's holder state and its processes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rootless._procfs import process_start_time


def network_state(rootless: Any, name: str) -> dict[str, Any]:
    """The holder's state.json of network ``name`` ({} when no holder runs)."""
    path = Path(rootless.runtime_dir) / "rootless" / "networks" / name / "state.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data


def alive(pid: int) -> bool:
    return process_start_time(pid) is not None


def wait_gone(pids: list[int], timeout: float = 8.0) -> list[int]:
    """The ``pids`` still alive after waiting up to ``timeout`` seconds for them to end."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def slirp_pids(inner: int) -> list[int]:
    """slirp4netns processes attached to the holder's namespace (its PID is an argument)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args[0].endswith(b"slirp4netns") and str(inner).encode() in args:
            out.append(int(entry.name))
    return out


def holders_left(rootless: Any) -> list[int]:
    """Processes of any network holder of this test's runtime directory still alive after a
    grace period: what a test must not leave behind."""
    runtime = Path(rootless.runtime_dir) / "rootless" / "networks"
    holders = [json.loads(p.read_text())["holder"] for p in runtime.glob("*/state.json")]
    return wait_gone([h["pid"] for h in holders] + [h["inner"] for h in holders])
