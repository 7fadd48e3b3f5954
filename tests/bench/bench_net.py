"""Throughput through a published TCP port, host -> container: rootless (slirp4netns and
pasta) against Podman's default rootless port handler, in the same run.

Each container runs busybox ``nc -ll -p 8080 -e sh -c 'dd of=/dev/null bs=1M; echo ok'``:
every connection is drained into /dev/null and answered with ``ok`` once the sender has
shut down its side, so the time covers every byte reaching the container, not just the
host's socket buffers. The host sends --mb megabytes per sample with a plain Python
socket; rounds are interleaved across the contenders so drift in machine load hits all
alike. Run as the unprivileged user: ``python tests/bench/bench_net.py``.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO_ROOT, BenchError, Engine, engines

from tests.docker_registry import free_port

CONTAINER_PORT = 8080
SINK = f"nc -ll -p {CONTAINER_PORT} -e sh -c 'dd of=/dev/null bs=1M 2>/dev/null; echo ok'"
CHUNK = b"\0" * (1 << 20)
READY_TIMEOUT = 20.0


def send(port: int, nbytes: int, timeout: float = 120.0) -> float:
    """Seconds to push nbytes to 127.0.0.1:port and get the sink's ``ok`` back."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        left = nbytes
        view = memoryview(CHUNK)
        while left:
            n = min(left, len(CHUNK))
            s.sendall(view[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(64):
            reply += chunk
    elapsed = time.perf_counter() - start
    if reply.strip() != b"ok":
        raise BenchError(f"port {port}: the sink answered {reply!r}, not ok")
    return elapsed


def wait_ready(port: int) -> None:
    """Until the sink answers a one-byte transfer (the helpers accept on the host side
    before the container listens, so a bare connect proves nothing)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            send(port, 1, timeout=2)
            return
        except (OSError, BenchError) as exc:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"port {port}: no answer after {READY_TIMEOUT:.0f} s: {exc}"
                ) from None
            time.sleep(0.1)


def start_sink(engine: Engine, name: str, network: str | None, rootfs: Path) -> int:
    """A detached sink container published on a free port of 127.0.0.1; the port."""
    port = free_port()
    net = ["--network", network] if network else []
    engine.run(
        "run", "-d", "--name", name, *net, "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}",
        "--rootfs", str(rootfs), "sh", "-c", SINK,
    )  # fmt: skip
    wait_ready(port)
    return port


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="published-port throughput: rootless vs podman")
    parser.add_argument("--mb", type=int, default=200, help="megabytes per sample")
    parser.add_argument("--runs", type=int, default=3, help="samples per contender")
    args = parser.parse_args(argv)
    nbytes = args.mb * 1_000_000

    with (
        tempfile.TemporaryDirectory(prefix="rootless-bench-", ignore_cleanup_errors=True) as tmp,
        engines() as (rootless, podman),
    ):
        rootfs = Path(tmp) / "rootfs"
        helper = REPO_ROOT / "helpers/mkrootfs-busybox"
        subprocess.run([sys.executable, str(helper), str(rootfs)], check=True)
        contenders = [
            ("rootless slirp4netns", rootless, None),
            ("rootless pasta", rootless, "pasta"),
        ]
        if podman is not None:
            contenders.append(("podman (default)", podman, None))
        ports: dict[str, int] = {}
        errors: dict[str, str] = {}
        for i, (label, engine, network) in enumerate(contenders):
            try:
                ports[label] = start_sink(engine, f"sink{i}", network, rootfs)
                send(ports[label], nbytes // 10)  # warm-up
            except BenchError as exc:
                errors[label] = str(exc)
        samples: dict[str, list[float]] = {label: [] for label in ports}
        for _ in range(args.runs):
            for label, port in ports.items():
                if label in errors:
                    continue
                try:
                    samples[label].append(nbytes / send(port, nbytes) / 1e6)
                except (OSError, BenchError) as exc:
                    errors[label] = str(exc)

    print(f"host -> container through -p 127.0.0.1:PORT:{CONTAINER_PORT}, {args.mb} MB per")
    print(f"sample, median of {args.runs} (after one warm-up of {args.mb // 10} MB)\n")
    print(f"{'contender':<22} {'median MB/s':>12} {'min':>9} {'max':>9}")
    medians: dict[str, float] = {}
    for label, _, _ in contenders:
        if label in errors:
            print(f"{label:<22} failed: {errors[label]}")
            continue
        got = samples.get(label, [])
        medians[label] = statistics.median(got)
        print(f"{label:<22} {medians[label]:>12.0f} {min(got):>9.0f} {max(got):>9.0f}")
    theirs = medians.get("podman (default)")
    for label in ("rootless slirp4netns", "rootless pasta"):
        if theirs and label in medians:
            print(f"{label}/podman: {medians[label] / theirs:.2f}x (target >= 1.0x)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
