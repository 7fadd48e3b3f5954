"""Start-up latency: rootless run against podman run and bwrap, medians of N runs each.

Run as the unprivileged user: ``tox -e bench`` (or ``python tests/bench/bench_run.py``).
Podman is pointed at temporary config, storage and runtime roots so the user's own
containers and images are never touched; its rootless pause process is ended at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_VS_PODMAN = 0.7
WARMUP = 2

PODMAN_CONF = """\
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""


@attrs.frozen
class Contender:
    name: str
    argv: list[str]
    env: dict[str, str]


@attrs.frozen
class Result:
    name: str
    samples_ms: list[float]
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)


def make_xdg(base: Path) -> dict[str, str]:
    """Private XDG roots under base, as environment variables."""
    env = {}
    for key, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_RUNTIME_DIR", "runtime"),
    ):
        path = base / sub
        path.mkdir(parents=True)
        env[key] = str(path)
    os.chmod(env["XDG_RUNTIME_DIR"], 0o700)
    return env


def rootless_contender(base: Path, rootfs: Path) -> Contender:
    env = {**os.environ, **make_xdg(base), "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-m", "rootless", "run", "--rm", "--network", "none"]
    return Contender("rootless", [*argv, "--rootfs", str(rootfs), "/bin/true"], env)


def podman_contender(base: Path, rootfs: Path) -> Contender:
    xdg = make_xdg(base)
    conf_dir = Path(xdg["XDG_CONFIG_HOME"]) / "containers"
    conf_dir.mkdir()
    (conf_dir / "containers.conf").write_text(PODMAN_CONF)
    (conf_dir / "storage.conf").write_text(
        STORAGE_CONF.format(
            graphroot=Path(xdg["XDG_DATA_HOME"]) / "storage",
            runroot=Path(xdg["XDG_RUNTIME_DIR"]) / "storage",
        )
    )
    argv = ["podman", "run", "--rm", "--network", "none", "--rootfs", str(rootfs), "/bin/true"]
    return Contender("podman", argv, {**os.environ, **xdg})


def bwrap_contender(rootfs: Path) -> Contender:
    argv = ["bwrap", "--unshare-all", "--bind", str(rootfs), "/", "/bin/true"]
    return Contender("bwrap", argv, dict(os.environ))


def time_once(contender: Contender) -> tuple[float, str]:
    """Milliseconds for one run, and the error text if it did not exit 0."""
    start = time.perf_counter()
    proc = subprocess.run(
        contender.argv, env=contender.env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        return elapsed, f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
    return elapsed, ""


def measure(contenders: list[Contender], runs: int) -> list[Result]:
    """Interleave the contenders run by run so drift in machine load hits all alike."""
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    errors: dict[str, str] = {}
    for i in range(WARMUP + runs):
        for contender in contenders:
            if contender.name in errors:
                continue
            elapsed, error = time_once(contender)
            if error:
                errors[contender.name] = error
            elif i >= WARMUP:
                samples[contender.name].append(elapsed)
    return [Result(c.name, samples[c.name], errors.get(c.name, "")) for c in contenders]


def format_table(results: list[Result], runs: int) -> str:
    ok = {r.name: r for r in results if not r.error}
    lines = [f"start-up of /bin/true, {runs} runs each (after {WARMUP} warm-up runs)", ""]
    lines.append(f"{'tool':<10} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for r in results:
        if r.error:
            lines.append(f"{r.name:<10} failed: {r.error}")
        else:
            row = f"{r.name:<10} {r.median:>10.1f} {min(r.samples_ms):>8.1f}"
            lines.append(f"{row} {max(r.samples_ms):>8.1f}")
    lines.append("")
    mine = ok.get("rootless")
    for other in ("podman", "bwrap"):
        if mine is not None and other in ok:
            lines.append(f"rootless/{other}: {mine.median / ok[other].median:.2f}x")
    if mine is not None and "podman" in ok:
        met = mine.median <= TARGET_VS_PODMAN * ok["podman"].median
        lines.append(
            f"target rootless <= {TARGET_VS_PODMAN}x podman: {'met' if met else 'NOT met'}"
        )
    return "\n".join(lines)


def stop_podman(contender: Contender) -> None:
    """Remove podman's temporary storage and end the pause process it left running."""
    runtime = Path(contender.env["XDG_RUNTIME_DIR"])
    storage = [Path(contender.env["XDG_DATA_HOME"]) / "storage", runtime / "storage"]
    # Storage files may belong to subordinate IDs; delete them from inside podman's namespace.
    subprocess.run(
        ["podman", "unshare", "rm", "-rf", *map(str, storage)],
        env=contender.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    try:
        pid = int((runtime / "libpod/tmp/pause.pid").read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="start-up latency: rootless vs podman vs bwrap")
    parser.add_argument("--runs", type=int, default=25, help="timed runs per tool (>= 20)")
    parser.add_argument("--rootfs", type=Path, help="rootfs to use (default: a fresh busybox one)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a meaningful median")
    if os.geteuid() == 0:
        print("bench: run as the unprivileged user, not root", file=sys.stderr)
        return 2

    # Podman's conmon waits out a 20 s timeout when its runroot path is long (a socket
    # path limit), so its roots live in a short directory of their own.
    podman_base = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    try:
        with tempfile.TemporaryDirectory(
            prefix="rootless-bench-", ignore_cleanup_errors=True
        ) as tmp:
            base = Path(tmp)
            rootfs = args.rootfs
            if rootfs is None:
                rootfs = base / "rootfs"
                helper = REPO_ROOT / "helpers/mkrootfs-busybox"
                subprocess.run([sys.executable, str(helper), str(rootfs)], check=True)
            contenders = [rootless_contender(base / "rootless", rootfs)]
            podman = None
            if shutil.which("podman"):
                podman = podman_contender(podman_base, rootfs)
                contenders.append(podman)
            else:
                print("bench: podman not found; measuring without it", file=sys.stderr)
            if shutil.which("bwrap"):
                contenders.append(bwrap_contender(rootfs))
            try:
                results = measure(contenders, args.runs)
            finally:
                if podman is not None:
                    stop_podman(podman)
    finally:
        shutil.rmtree(podman_base, ignore_errors=True)
    print(format_table(results, args.runs))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
