"""Start-up from an image: rootless run --rm IMAGE true against podman run --rm IMAGE true.

    python tests/bench/bench_image_run.py [--runs 20]

Both engines first pull the Debian image (helpers/mkimage-debian, cached) from a local
registry; then each start is timed, interleaved run by run, 2 warm-up runs then --runs
timed runs, with the default network (slirp4netns for both) and with --network none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import debian_in_registry, engines, format_table, interleave

NETWORKS = {"default network": [], "--network none": ["--network", "none"]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per tool (>= 20)")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20 for a meaningful median")
    failed = False
    with debian_in_registry() as ref, engines("overlay") as (rootless, podman):
        contenders = [rootless] + ([podman] if podman else [])
        for engine in contenders:
            engine.run("pull", "--tls-verify=false", "-q", ref)
        for label, net in NETWORKS.items():
            argv_of = {e.name: ["run", "--rm", *net, ref, "true"] for e in contenders}
            results = interleave(contenders, argv_of, args.runs)
            failed |= any(r.error for r in results)
            title = f"run --rm {' '.join(net)} IMAGE true ({label}), {args.runs} runs each"
            print(format_table(title.replace("  ", " "), results), end="\n\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
