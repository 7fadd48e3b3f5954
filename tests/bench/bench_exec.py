"""exec latency: rootless exec CTR true against podman exec CTR true, medians of N runs.

    python tests/bench/bench_exec.py [--runs 20]

Each engine pulls the Debian image (helpers/mkimage-debian, cached) from a local
registry and starts one detached container (`run -d --network none IMAGE sleep 1000`);
then `exec CTR true` is timed, interleaved run by run, 2 warm-up runs then --runs timed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import debian_in_registry, engines, format_table, interleave


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per tool (>= 20)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a meaningful median")
    with debian_in_registry() as ref, engines("overlay") as (rootless, podman):
        contenders = [rootless] + ([podman] if podman else [])
        argv_of = {}
        for engine in contenders:
            engine.run("pull", "--tls-verify=false", "-q", ref)
            engine.run(
                "run", "-d", "--name", "bench-exec", "--network", "none", ref, "sleep", "1000"
            )
            argv_of[engine.name] = ["exec", "bench-exec", "true"]
        results = interleave(contenders, argv_of, args.runs)
    print(format_table(f"exec CTR true, {args.runs} runs each", results))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
