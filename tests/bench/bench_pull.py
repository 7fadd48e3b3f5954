"""Cold pull of a Debian image (about 170 MB, 8,700 entries) from a local registry:
rootless pull against podman pull, medians of N runs each.

    python tests/bench/bench_pull.py [--runs 3]

The image is made by helpers/mkimage-debian (cached), pushed with skopeo to Debian's
docker-registry on 127.0.0.1. Podman uses the overlay storage driver, falling back to
vfs (and saying so) when rootless overlay does not work for it here. Between runs each
engine removes the image (`rmi -a -f`), so every timed pull downloads and unpacks it all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def cold_pulls(contenders: list[Engine], ref: str, runs: int) -> list[Result]:
    """One warm-up pull each (fills the registry's page cache), then `runs` timed cold
    pulls each, interleaved; the image is removed after every pull."""
    samples: dict[str, list[float]] = {e.name: [] for e in contenders}
    errors: dict[str, str] = {}
    for i in range(runs + 1):
        for engine in contenders:
            if engine.name in errors:
                continue
            try:
                elapsed = time_ms(engine, *pull_args(engine, ref))
                engine.run("rmi", "-a", "-f")
            except BenchError as exc:
                errors[engine.name] = str(exc)
                continue
            if i:
                samples[engine.name].append(elapsed)
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
