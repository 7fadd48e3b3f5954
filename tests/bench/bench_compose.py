"""compose up -d and down of a three-service project: rootless against podman-compose.

    python tests/bench/bench_compose.py [--runs 10]

Both engines pull the Debian image (helpers/mkimage-debian, cached) from a local
registry first. Then, interleaved run by run (1 warm-up run, then --runs timed runs),
each times ``compose up -d`` (it returns once every service runs) and then
``compose down`` of the same compose file: three services on the project network,
``init: true`` and ``sleep infinity``, a dependency chain (api -> processor ->
ingestion) and a bind mount. podman-compose (PyPI) drives Podman (runc, overlay).
Target: rootless's up at most 0.3x podman-compose's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BenchError, Engine, debian_in_registry, engines, ratio_line

TARGET = 0.3
WARMUP = 1
COMPOSE_FILE = """\
services:
  ingestion:
    image: {image}
    command: [sleep, infinity]
    init: true
    environment: {{ROLE: ingestion}}
    volumes: ["./data:/data"]
  processor:
    image: {image}
    command: [sleep, infinity]
    init: true
    environment: {{ROLE: processor}}
    depends_on: [ingestion]
  api:
    image: {image}
    command: [sleep, infinity]
    init: true
    environment: {{ROLE: api}}
    depends_on: [processor]
"""


def podman_compose(podman: Engine) -> Engine:
    """podman-compose (from PyPI, installed beside this interpreter) on podman's roots."""
    probe = subprocess.run(
        [sys.executable, "-m", "podman_compose", "version"],
        env=podman.env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise BenchError(
            "podman-compose is not installed for this interpreter: pip install podman-compose "
            f"({probe.stderr.strip()[-300:]})"
        )
    return Engine("podman", (sys.executable, "-m", "podman_compose"), podman.env)


def time_call(engine: Engine, *args: str) -> float:
    start = time.perf_counter()
    engine.run(*args)
    return (time.perf_counter() - start) * 1000


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per tool (>= 5)")
    args = parser.parse_args(argv)
    if args.runs < 5:
        parser.error("--runs must be at least 5")
    with (
        debian_in_registry() as ref,
        engines("overlay") as (rootless, podman),
        tempfile.TemporaryDirectory(prefix="rootless-bench-compose-") as tmp,
    ):
        project = Path(tmp)
        (project / "data").mkdir()
        (project / "compose.yaml").write_text(COMPOSE_FILE.format(image=ref))
        contenders = [rootless]
        for engine in [rootless] + ([podman] if podman else []):
            engine.run("pull", "--tls-verify=false", "-q", ref)
        if podman is not None:
            contenders.append(podman_compose(podman))
        compose = ["-f", str(project / "compose.yaml"), "-p", "bench"]
        up: dict[str, list[float]] = {e.name: [] for e in contenders}
        down: dict[str, list[float]] = {e.name: [] for e in contenders}
        for i in range(WARMUP + args.runs):
            for engine in contenders:
                prefix = ["compose"] if engine is rootless else []
                t_up = time_call(engine, *prefix, *compose, "up", "-d")
                t_down = time_call(engine, *prefix, *compose, "down")
                if i >= WARMUP:
                    up[engine.name].append(t_up)
                    down[engine.name].append(t_down)
    print(f"compose up -d / down of 3 services, {args.runs} runs each (after {WARMUP} warm-up)")
    print()
    print(f"{'tool':<10} {'up median ms':>13} {'min':>8} {'max':>8} {'down median ms':>15}")
    for name in up:
        print(
            f"{name:<10} {statistics.median(up[name]):>13.1f} {min(up[name]):>8.1f}"
            f" {max(up[name]):>8.1f} {statistics.median(down[name]):>15.1f}"
        )
    for label, samples, target in (("up:  ", up, TARGET), ("down:", down, 1.0)):
        medians = {name: statistics.median(times) for name, times in samples.items()}
        line = ratio_line(medians, target).replace("rootless/podman", "rootless/podman-compose")
        print(f"{label} {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
