"""Start-up latency: rootless run against podman run and bwrap, medians of N runs each.

Run as the unprivileged user: ``tox -e bench`` (or ``python tests/bench/bench_run.py``).
Podman is pointed at temporary config, storage and runtime roots so the user's own
containers and images are never touched; its rootless pause process is ended at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, Engine, engines, format_table, interleave

WARMUP = 2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="start-up latency: rootless vs podman vs bwrap")
    parser.add_argument("--runs", type=int, default=25, help="timed runs per tool (>= 20)")
    parser.add_argument("--rootfs", type=Path, help="rootfs to use (default: a fresh busybox one)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a meaningful median")

    with (
        tempfile.TemporaryDirectory(prefix="rootless-bench-", ignore_cleanup_errors=True) as tmp,
        engines() as (rootless, podman),
    ):
        rootfs = args.rootfs
        if rootfs is None:
            rootfs = Path(tmp) / "rootfs"
            helper = REPO_ROOT / "helpers/mkrootfs-busybox"
            subprocess.run([sys.executable, str(helper), str(rootfs)], check=True)
        contenders = [rootless] + ([podman] if podman else [])
        run = ["run", "--rm", "--network", "none", "--rootfs", str(rootfs), "/bin/true"]
        argv_of = {c.name: run for c in contenders}
        if shutil.which("bwrap"):
            contenders.append(Engine("bwrap", ("bwrap",), dict(os.environ)))
            argv_of["bwrap"] = ["--unshare-all", "--bind", str(rootfs), "/", "/bin/true"]
        results = interleave(contenders, argv_of, args.runs, WARMUP)
    title = f"start-up of /bin/true, {args.runs} runs each (after {WARMUP} warm-up runs)"
    print(format_table(title, results))
    medians = {r.name: r.median for r in results if r.samples_ms and not r.error}
    if "rootless" in medians and "bwrap" in medians:
        print(f"rootless/bwrap: {medians['rootless'] / medians['bwrap']:.2f}x")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
