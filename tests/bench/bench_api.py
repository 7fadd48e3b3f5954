"""Containers one after another through the Python API, against ``podman run --rm``.

    python tests/bench/bench_api.py [--runs 100]

One process: --runs containers of ``/bin/true`` through ``rootless.Client`` (trio) and
as many through ``rootless.SyncClient``, against as many ``podman run --rm`` calls,
interleaved run by run (each contender going first in turn) so drift in machine load
hits all alike. Both engines run the same busybox image (imported into each from one
tarball) with ``--network none``; Podman uses runc and the overlay driver. Each
client's first call starts its runner process and is reported on its own, outside the
medians. Target: the API at least 5x faster than Podman.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from _common import REPO_ROOT, Engine, engines

if TYPE_CHECKING:
    from rootless.api import CompletedRun

IMAGE = "localhost/bench-busybox:latest"
COMMAND = ["/bin/true"]
TARGET = 5.0
WARMUP = 2


def image_tarball(tmp: Path) -> Path:
    """The busybox rootfs as a tarball owned by root, as images are."""
    rootfs = tmp / "rootfs"
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "helpers/mkrootfs-busybox"), str(rootfs)], check=True
    )

    def as_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    tarball = tmp / "busybox.tar"
    with tarfile.open(tarball, "w") as tar:
        tar.add(rootfs, arcname=".", filter=as_root)
    return tarball


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


async def measure(
    rootless_env: dict[str, str], podman: Engine | None, runs: int
) -> dict[str, list[float]]:
    """Milliseconds per container for each contender, and each client's first call."""
    import rootless

    options: rootless.RunKwargs = {"rm": True, "network": "none"}
    async with rootless.Client(env=rootless_env) as client:
        with rootless.SyncClient(env=rootless_env) as sync:

            async def api_async() -> None:
                check(await client.run(IMAGE, COMMAND, **options))

            async def api_sync() -> None:
                check(sync.run(IMAGE, COMMAND, **options))

            async def podman_run() -> None:
                assert podman is not None
                podman.run("run", "--rm", "--network", "none", IMAGE, *COMMAND)

            contenders = {"api async": api_async, "api sync": api_sync}
            samples: dict[str, list[float]] = {name: [] for name in contenders}
            for name, contender in contenders.items():  # starts the client's runner
                start = time.perf_counter()
                await contender()
                samples[f"{name} first call"] = [_ms(start)]
            if podman is not None:
                contenders["podman"] = podman_run
                samples["podman"] = []
            names = list(contenders)
            for i in range(WARMUP + runs):
                # Each goes first in turn: a run right after Podman's meets its clean-up.
                for name in names[i % len(names) :] + names[: i % len(names)]:
                    start = time.perf_counter()
                    await contenders[name]()
                    if i >= WARMUP:
                        samples[name].append(_ms(start))
    return samples


def check(done: CompletedRun) -> None:
    if done.exit_code != 0:
        raise SystemExit(f"bench: the API's run failed: {done}")


def report(samples: dict[str, list[float]], runs: int) -> str:
    lines = [
        f"{runs} containers of {' '.join(COMMAND)} one after another, image {IMAGE},",
        f"--network none for both, --rm; after {WARMUP} warm-up runs each; podman: runc, overlay",
        "",
        f"{'contender':<24} {'median ms':>10} {'min':>8} {'max':>8} {'total s':>8}",
    ]
    for name in sorted(samples, key=lambda n: "first" in n):
        got = samples[name]
        if got:
            lines.append(
                f"{name:<24} {statistics.median(got):>10.1f} {min(got):>8.1f} {max(got):>8.1f}"
                f" {sum(got) / 1000:>8.2f}"
            )
    podman = samples.get("podman")
    for name in ("api async", "api sync"):
        if podman:
            ratio = statistics.median(podman) / statistics.median(samples[name])
            verdict = "met" if ratio >= TARGET else "NOT met"
            lines.append(f"podman/{name}: {ratio:.1f}x faster   target >= {TARGET:g}x: {verdict}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import trio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed containers per contender")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="rootless-bench-", ignore_cleanup_errors=True) as tmp,
        engines("overlay") as (rootless_engine, podman),
    ):
        tarball = image_tarball(Path(tmp))
        for engine in [rootless_engine] + ([podman] if podman else []):
            engine.run("import", str(tarball), IMAGE)
        samples = trio.run(measure, rootless_engine.env, podman, args.runs)
    print(report(samples, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
