"""Build time: rootless build against podman build, cold (--no-cache) and fully cached.

    python tests/bench/bench_build.py [--runs 5] [--cached-runs 10]

The Containerfile is a multi-stage build on the Debian image (helpers/mkimage-debian,
cached, pulled by both engines first, untimed): a build stage copies a 20 MB file and
runs several steps on it, a final stage copies the results and runs two more. Cold
builds pass --no-cache; cached builds repeat an unchanged build. Runs are interleaved
run by run; the first of each kind is a warm-up (it also fills the cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import debian_in_registry, engines, format_table, interleave, ratio_line

COLD_TARGET = 0.8
CACHED_TARGET = 0.5
DATA_MB = 20

CONTAINERFILE = """\
FROM {base} AS build
WORKDIR /src
COPY data.bin tool.sh ./
RUN sha256sum data.bin > data.sha256
RUN sh tool.sh data.bin > report.txt
RUN mkdir -p /out && cp data.sha256 report.txt /out/ && head -c 1048576 data.bin > /out/head.bin
RUN rm -f /src/data.bin

FROM {base}
ENV APP=/app
WORKDIR /app
COPY --from=build /out/ ./
RUN cat data.sha256 report.txt > summary.txt
RUN useradd --no-create-home app && chown app summary.txt
USER app
CMD ["cat", "/app/summary.txt"]
"""

TOOL = """\
set -e
echo "size: $(wc -c < "$1")"
echo "lines: $(od -An -tx1 -N4096 "$1" | wc -l)"
"""


def make_context(root: Path, base: str) -> Path:
    ctx = root / "ctx"
    ctx.mkdir()
    (ctx / "data.bin").write_bytes(os.urandom(DATA_MB << 20))
    (ctx / "tool.sh").write_text(TOOL)
    (ctx / "Containerfile").write_text(CONTAINERFILE.format(base=base))
    return ctx


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed cold builds per tool")
    parser.add_argument("--cached-runs", type=int, default=10, help="timed cached builds")
    args = parser.parse_args(argv)
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="rootless-bench-build-") as tmp,
        debian_in_registry() as ref,
        engines("overlay") as (rootless, podman),
    ):
        ctx = str(make_context(Path(tmp), ref))
        contenders = [rootless] + ([podman] if podman else [])
        for engine in contenders:
            engine.run("pull", "--tls-verify=false", "-q", ref)
        kinds = {
            f"cold build (--no-cache), {args.runs} runs each": (
                ["--no-cache"],
                args.runs,
                COLD_TARGET,
            ),
            f"cached rebuild, {args.cached_runs} runs each": ([], args.cached_runs, CACHED_TARGET),
        }
        for title, (flags, runs, target) in kinds.items():
            build = ["build", "-q", "--tls-verify=false", *flags, "-t", "bench", ctx]
            results = interleave(contenders, {e.name: build for e in contenders}, runs, warmup=1)
            failed |= any(r.error for r in results)
            # the table's own ratio line has the default target: this one has the build's
            table = format_table(f"{title} (after 1 warm-up)", results).splitlines()[:-1]
            medians = {r.name: r.median for r in results if r.samples_ms and not r.error}
            print("\n".join([*table, ratio_line(medians, target)]), end="\n\n")
        # both images say the same
        outputs = {
            e.name: e.run("run", "--rm", "--network", "none", "bench").stdout for e in contenders
        }
        if len(set(outputs.values())) != 1:
            print(f"the images differ: {outputs}")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
