"""Cold pull of a Debian image (about 170 MB, 8,700 entries) from a local registry:
rootless pull against podman pull, medians of N runs each.

    python tests/bench/bench_pull.py [--runs 3]

The image is made by helpers/mkimage-debian (cached), pushed with skopeo to Debian's
docker-registry on 127.0.0.1. Podman uses the overlay storage driver, falling back to
vfs (and saying so) when rootless overlay does not work for it here. Every pull gets a
storage root of its own (rootless: ROOTLESS_DATA_DIR, podman: --root/--runroot), so each
timed pull downloads and unpacks it all; the roots are deleted only at the end. Deleting
them between runs (as `rmi` did) made the next pull, whichever engine's, pay for it:
ext4 avoids reusing inodes deleted in the last minutes, and its allocator's scan past
the ~8,700 just freed (`recently_deleted`, `find_inode_bit`) took ~40% of a `tar -x`'s
CPU time in `perf record` here: a cost of the benchmark, not of either engine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BenchError,
    Engine,
    Result,
    debian_in_registry,
    engines,
    format_table,
    time_ms,
)


def pull_args(engine: Engine, ref: str) -> list[str]:
    quiet = "-q" if engine.name == "rootless" else "--quiet"
    return ["pull", "--tls-verify=false", quiet, ref]


def on_fresh_store(engine: Engine, root: Path) -> Engine:
    """``engine`` with an empty storage root of its own at ``root``."""
    if engine.name == "rootless":
        return attrs.evolve(engine, env={**engine.env, "ROOTLESS_DATA_DIR": str(root)})
    runroot = ("--root", str(root / "graph"), "--runroot", str(root / "run"))
    return attrs.evolve(engine, argv=(*engine.argv, *runroot))


def cold_pulls(contenders: list[Engine], ref: str, runs: int) -> list[Result]:
    """One warm-up pull each (fills the registry's page cache), then `runs` timed cold
    pulls each, interleaved, every one into a new storage root."""
    samples: dict[str, list[float]] = {e.name: [] for e in contenders}
    errors: dict[str, str] = {}
    used: list[tuple[Engine, Path]] = []
    # Short paths: podman's run root ends up in socket paths.
    scratch = Path(tempfile.mkdtemp(prefix="rbp", dir="/tmp"))
    try:
        for i in range(runs + 1):
            for engine in contenders:
                if engine.name in errors:
                    continue
                root = scratch / f"{engine.name[0]}{i}"
                fresh = on_fresh_store(engine, root)
                used.append((engine, root))
                try:
                    elapsed = time_ms(fresh, *pull_args(engine, ref))
                except BenchError as exc:
                    errors[engine.name] = str(exc)
                    continue
                if i:
                    samples[engine.name].append(elapsed)
    finally:
        for engine, root in used:  # files of subordinate IDs: removed from inside
            engine.run("unshare", "rm", "-rf", str(root), check=False)
        Path(scratch).rmdir()
    return [Result(e.name, tuple(samples[e.name]), errors.get(e.name, "")) for e in contenders]


def podman_driver_works(podman: Engine, ref: str) -> str:
    """The error of a pull with podman's configured driver, or "" when it works."""
    try:
        podman.run(*pull_args(podman, ref))
        podman.run("rmi", "-a", "-f")
    except BenchError as exc:
        return str(exc)
    return ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed cold pulls per tool (>= 3)")
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    driver = "overlay"
    note = ""
    with debian_in_registry() as ref:
        with engines("overlay") as (rootless, podman):
            failure = podman_driver_works(podman, ref) if podman else ""
            if failure:
                note = f"podman: overlay failed here, measured with vfs ({failure.splitlines()[0]})"
        if failure:
            driver = "vfs"
        with engines(driver) as (rootless, podman):
            results = cold_pulls([rootless] + ([podman] if podman else []), ref, args.runs)
    title = (
        f"cold pull of {ref.split('/', 1)[1]} from a local registry, {args.runs} runs each"
        f" (podman storage driver: {driver})"
    )
    print(format_table(title, results))
    if note:
        print(note)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
