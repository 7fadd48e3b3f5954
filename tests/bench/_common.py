"""Shared pieces of the benchmarks: private engine roots, a local registry, timing, tables.

Every benchmark runs as the unprivileged user, measures Podman in the same run when it is
installed, and leaves nothing behind: temporary roots are removed, Podman's storage is
deleted from inside its user namespace and its rootless pause process is ended.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs

REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmarks run as scripts: the checkout on sys.path lets them share the registry
# starter with the tests under the module name pytest gives it (tests.docker_registry).
sys.path.insert(0, str(REPO_ROOT))

from tests.docker_registry import run_registry  # noqa: E402

TARGET_VS_PODMAN = 0.7
DEBIAN_REPO = "bench/debian"

PODMAN_CONF = """\
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

STORAGE_CONF = """\
[storage]
driver = "{driver}"
graphroot = "{graphroot}"
runroot = "{runroot}"
"""


class BenchError(Exception):
    """A step of a benchmark failed; the message says which and why."""


@attrs.frozen
class Engine:
    """One engine under test: how to call it and with which environment."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]

    def command(self, *args: str) -> list[str]:
        return [*self.argv, *args]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.command(*args),
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        if check and proc.returncode != 0:
            detail = proc.stderr.strip()[-800:]
            raise BenchError(f"{self.name} {' '.join(args)}: exit {proc.returncode}: {detail}")
        return proc


@attrs.frozen
class Result:
    name: str
    samples_ms: tuple[float, ...]
    error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)


def require_unprivileged() -> None:
    if os.geteuid() == 0:
        raise SystemExit("bench: run as the unprivileged user, not root")


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


def rootless_engine(base: Path) -> Engine:
    xdg = make_xdg(base)
    # Bytecode of its own: the checkout's __pycache__ may be stale and not writable by this
    # user, and recompiling on every call would be timed (an installed package has .pyc).
    pycache = Path(xdg["XDG_CACHE_HOME"]) / "pycache"
    env = {
        **os.environ,
        **xdg,
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONPYCACHEPREFIX": str(pycache),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return Engine("rootless", (sys.executable, "-m", "rootless"), env)


def podman_engine(base: Path, driver: str = "vfs") -> Engine:
    """Podman on temporary config, storage and runtime roots under base (keep base short:
    with a long runroot path conmon waits out a 20-second timeout on every start)."""
    xdg = make_xdg(base)
    conf_dir = Path(xdg["XDG_CONFIG_HOME"]) / "containers"
    conf_dir.mkdir()
    (conf_dir / "containers.conf").write_text(PODMAN_CONF)
    (conf_dir / "storage.conf").write_text(
        STORAGE_CONF.format(
            driver=driver,
            graphroot=Path(xdg["XDG_DATA_HOME"]) / "storage",
            runroot=Path(xdg["XDG_RUNTIME_DIR"]) / "storage",
        )
    )
    return Engine("podman", ("podman",), {**os.environ, **xdg})


def stop_podman(podman: Engine) -> None:
    """Remove Podman's containers and storage and end the pause process it left running."""
    podman.run("rm", "-a", "-f", "-t", "0", check=False)
    runtime = Path(podman.env["XDG_RUNTIME_DIR"])
    storage = [Path(podman.env["XDG_DATA_HOME"]) / "storage", runtime / "storage"]
    # Storage files may belong to subordinate IDs; delete them from inside podman's namespace.
    podman.run("unshare", "rm", "-rf", *map(str, storage), check=False)
    try:
        pid = int((runtime / "libpod/tmp/pause.pid").read_text())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_rootless(rootless: Engine) -> None:
    """End every container of this private root and delete its storage (as container IDs)."""
    rootless.run("rm", "-a", "-f", check=False)
    data = Path(rootless.env["XDG_DATA_HOME"]) / "rootless"
    if data.exists():
        rootless.run("unshare", "rm", "-rf", str(data), check=False)


@contextlib.contextmanager
def engines(podman_driver: str = "vfs") -> Iterator[tuple[Engine, Engine | None]]:
    """(rootless, podman or None) on private roots, torn down afterwards."""
    require_unprivileged()
    # Podman's roots live in a short directory of their own (see podman_engine).
    short = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    long = Path(tempfile.mkdtemp(prefix="rootless-bench-"))
    rootless = rootless_engine(long / "rootless")
    podman = None
    if shutil.which("podman"):
        podman = podman_engine(short, podman_driver)
    else:
        print("bench: podman not found; measuring without it", file=sys.stderr)
    try:
        yield rootless, podman
    finally:
        stop_rootless(rootless)
        if podman is not None:
            stop_podman(podman)
        shutil.rmtree(short, ignore_errors=True)
        shutil.rmtree(long, ignore_errors=True)


# --- the image and the registry --------------------------------------------------------------


def debian_layout() -> Path:
    """The cached Debian OCI layout (built by helpers/mkimage-debian on first use)."""
    helper = REPO_ROOT / "helpers/mkimage-debian"
    proc = subprocess.run(
        [sys.executable, str(helper)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise BenchError(f"helpers/mkimage-debian failed (exit {proc.returncode})")
    return Path(proc.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def registry() -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1:<free port>, plain HTTP; yields "host:port"."""
    with (
        tempfile.TemporaryDirectory(prefix="rootless-bench-registry-") as tmp,
        run_registry(Path(tmp)) as host,
    ):
        yield host


def push_layout(layout: Path, host: str, tag: str = "bookworm") -> str:
    """Copy the OCI layout to the registry with skopeo; returns the image reference."""
    ref = f"{host}/{DEBIAN_REPO}:{tag}"
    proc = subprocess.run(
        [
            *("skopeo", "copy", "--quiet", "--dest-tls-verify=false"),
            *(f"oci:{layout}:{tag}", f"docker://{ref}"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise BenchError(f"skopeo copy to {ref} failed: {proc.stderr.strip()[-800:]}")
    return ref


@contextlib.contextmanager
def debian_in_registry() -> Iterator[str]:
    """The Debian image pushed to a fresh local registry; yields its reference."""
    layout = debian_layout()
    with registry() as host:
        yield push_layout(layout, host)


# --- timing and reporting ------------------------------------------------------------------


def time_ms(engine: Engine, *args: str) -> float:
    """Milliseconds for one call of the engine; raises BenchError unless it exits 0."""
    start = time.perf_counter()
    engine.run(*args)
    return (time.perf_counter() - start) * 1000


def interleave(
    engines: Sequence[Engine], args: Mapping[str, Sequence[str]], runs: int, warmup: int = 2
) -> list[Result]:
    """Time ``args[name]`` for each engine, interleaved run by run so drift in machine
    load hits all alike; an engine that fails stops being timed and reports the error."""
    samples: dict[str, list[float]] = {e.name: [] for e in engines}
    errors: dict[str, str] = {}
    for i in range(warmup + runs):
        for engine in engines:
            if engine.name in errors:
                continue
            try:
                elapsed = time_ms(engine, *args[engine.name])
            except BenchError as exc:
                errors[engine.name] = str(exc)
                continue
            if i >= warmup:
                samples[engine.name].append(elapsed)
    return [Result(e.name, tuple(samples[e.name]), errors.get(e.name, "")) for e in engines]


def format_table(title: str, results: Sequence[Result], unit: str = "ms") -> str:
    """A table of medians, minima and maxima, the ratio rootless/podman and the target."""
    lines = [title, ""]
    lines.append(f"{'tool':<10} {'median ' + unit:>12} {'min':>9} {'max':>9} {'n':>4}")
    for r in results:
        if r.error:
            lines.append(f"{r.name:<10} failed: {r.error}")
        elif r.samples_ms:
            lines.append(
                f"{r.name:<10} {r.median:>12.1f} {min(r.samples_ms):>9.1f}"
                f" {max(r.samples_ms):>9.1f} {len(r.samples_ms):>4}"
            )
    lines.append(ratio_line({r.name: r.median for r in results if r.samples_ms and not r.error}))
    return "\n".join(lines)


def ratio_line(values: dict[str, float], target: float = TARGET_VS_PODMAN) -> str:
    mine, theirs = values.get("rootless"), values.get("podman")
    if mine is None or not theirs:
        return "rootless/podman: n/a"
    ratio = mine / theirs
    verdict = "met" if ratio <= target else f"NOT met (by {ratio / target:.2f}x)"
    return f"rootless/podman: {ratio:.2f}x   target <= {target}x: {verdict}"
