"""Memory of an idle detached container: the PSS of every process the engine keeps for it.

    python tests/bench/bench_memory.py [--settle 3]

rootless: the monitor (the rootless-logpump helper once the container runs, or a Python
monitor without the helpers) and stage 1 (rootless-wait, or a forked interpreter), and its
network helper, if any; podman: conmon (and slirp4netns, if any). The container's own
processes are not counted, nor Podman's pause process, which is shared by all of a user's
containers. PSS comes from /proc/PID/smaps_rollup, so pages shared between processes are
split between them instead of counted twice. Measured with --network none
(the ratio) and with each engine's default network (slirp4netns for both).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Engine, debian_in_registry, engines, ratio_line

TARGET_VS_PODMAN = 5.0
NETWORKS = {"--network none": ["--network", "none"], "default network": []}


@attrs.frozen
class Proc:
    pid: int
    role: str
    pss_kb: int


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError(f"no Pss line in /proc/{pid}/smaps_rollup")


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def subtree(pid: int, exclude: int) -> list[int]:
    """pid and its descendants, without exclude and its descendants."""
    if pid == exclude:
        return []
    found = [pid]
    for child in children(pid):
        found += subtree(child, exclude)
    return found


def inspect(engine: Engine, ctr: str) -> dict[str, object]:
    doc = json.loads(engine.run("inspect", ctr).stdout)
    return dict(doc[0])


def rootless_procs(engine: Engine, ctr: str) -> list[Proc]:
    """The monitor (parent of stage 1, which is the parent of the container's PID 1)
    and every descendant of the monitor outside the container."""
    state = inspect(engine, ctr)["State"]
    assert isinstance(state, dict)
    init = int(state["Pid"])
    stage1 = ppid(init)
    monitor = ppid(stage1)
    roles = {monitor: "monitor", stage1: "stage 1"}
    return [Proc(p, roles.get(p, comm(p)), pss_kb(p)) for p in subtree(monitor, init)]


def podman_procs(engine: Engine, ctr: str) -> list[Proc]:
    """conmon (and any helper below it outside the container), plus the slirp4netns whose
    command line names the container's network namespace."""
    doc = inspect(engine, ctr)
    state, settings = doc["State"], doc["NetworkSettings"]
    assert isinstance(state, dict) and isinstance(settings, dict)
    conmon, init = int(state["ConmonPid"]), int(state["Pid"])
    pids = subtree(conmon, init)
    sandbox = str(settings.get("SandboxKey") or "")
    if sandbox:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0].endswith(b"slirp4netns") and sandbox.encode() in cmdline:
                pids.append(int(proc.name))
    return [Proc(p, comm(p), pss_kb(p)) for p in pids]


def measure(engine: Engine, ref: str, net: list[str], settle: float) -> list[Proc]:
    name = f"bench-mem-{len(net)}"
    engine.run("run", "-d", "--name", name, *net, ref, "sleep", "1000")
    try:
        time.sleep(settle)
        if engine.name == "rootless":
            return rootless_procs(engine, name)
        return podman_procs(engine, name)
    finally:
        engine.run("rm", "-f", name)


def format_report(label: str, found: dict[str, list[Proc]]) -> str:
    lines = [f"idle detached container, {label}: PSS of the engine's processes", ""]
    totals = {}
    for name, procs in found.items():
        totals[name] = sum(p.pss_kb for p in procs) / 1024
        parts = ", ".join(f"{p.role} {p.pss_kb / 1024:.1f}" for p in procs)
        lines.append(f"{name:<10} {totals[name]:>7.1f} MB   ({parts})")
    lines.append(ratio_line(totals, TARGET_VS_PODMAN))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to let it go idle")
    args = parser.parse_args(argv)
    with debian_in_registry() as ref, engines("overlay") as (rootless, podman):
        contenders = [rootless] + ([podman] if podman else [])
        for engine in contenders:
            engine.run("pull", "--tls-verify=false", "-q", ref)
        for label, net in NETWORKS.items():
            found = {e.name: measure(e, ref, net, args.settle) for e in contenders}
            print(format_report(label, found), end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
