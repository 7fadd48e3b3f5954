"""Fixtures shared by every test: a busybox rootfs, the probe, and a CLI runner.

Kernel tests (marked ``kernel``, everything under tests/kernel/, or any test using
``busybox_rootfs`` or ``rootless``) must run as an unprivileged user with a
subordinate ID range; as root they fail with a message saying so.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
HELPERS = REPO_ROOT / "helpers"
KERNEL_FIXTURES = frozenset({"busybox_rootfs", "rootless"})
ROOT_MESSAGE = (
    "kernel tests must run as an unprivileged user with a subordinate ID range, not as root; "
    "run: runuser -u USER -- tox -e tests (see docs/testing.md)"
)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have succeeded; its output explains a failure."""
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def fetch_until_up(url: str, timeout: float = 10.0) -> bytes:
    """GET ``url``, retrying while the server (a container just started) is not up yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bytes(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def serve_on_host(body: bytes) -> tuple[http.server.HTTPServer, int]:
    """An HTTP server on the host's 127.0.0.1 answering ``body`` to every GET, in a
    daemon thread; its port. Call ``shutdown()`` on it when done."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    kernel_dir = Path(__file__).parent / "kernel"
    for item in items:
        if kernel_dir in item.path.parents:
            item.add_marker(pytest.mark.kernel)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if os.geteuid() != 0:
        return
    uses_kernel = KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("kernel") is not None or uses_kernel:
        # A root run would pass for the wrong reasons, so it must not look green.
        pytest.fail(ROOT_MESSAGE, pytrace=False)


@pytest.fixture(scope="session")
def probe_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """helpers/probe.c compiled statically, so it runs in any rootfs."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc not found; run: sudo helpers/setup-host", pytrace=False)
    out = tmp_path_factory.mktemp("probe") / "probe"
    result = subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(out), str(HELPERS / "probe.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot build the probe:\n{result.stderr}", pytrace=False)
    return out


@pytest.fixture(scope="session")
def _busybox_template(tmp_path_factory: pytest.TempPathFactory, probe_binary: Path) -> Path:
    root = tmp_path_factory.mktemp("busybox-template") / "rootfs"
    subprocess.run(
        [
            sys.executable,
            str(HELPERS / "mkrootfs-busybox"),
            str(root),
            "--probe",
            str(probe_binary),
        ],
        check=True,
    )
    return root


@pytest.fixture
def busybox_rootfs(_busybox_template: Path, tmp_path: Path) -> Path:
    """A fresh, writable busybox rootfs with /probe; see helpers/mkrootfs-busybox."""
    root = tmp_path / "rootfs"
    # cp -a keeps the symlinks and modes and is quicker than building anew.
    subprocess.run(["cp", "-a", str(_busybox_template), str(root)], check=True)
    return root


class RootlessCLI:
    """Runs ``python -m rootless`` from this checkout with private XDG roots."""

    def __init__(self, base: Path) -> None:
        self.data_home = base / "data"
        self.config_home = base / "config"
        self.cache_home = base / "cache"
        self.runtime_dir = base / "runtime"
        for path in (self.data_home, self.config_home, self.cache_home):
            path.mkdir(parents=True)
        self.runtime_dir.mkdir(mode=0o700)
        self.runtime_dir.chmod(0o700)  # mkdir's mode is masked by the umask
        pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        self.env: dict[str, str] = {
            **os.environ,
            "PYTHONPATH": pythonpath,
            "XDG_DATA_HOME": str(self.data_home),
            "XDG_CONFIG_HOME": str(self.config_home),
            "XDG_CACHE_HOME": str(self.cache_home),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "rootless", *args]

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60,
        check: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
        )


@pytest.fixture
def rootless(tmp_path: Path) -> RootlessCLI:
    """Call as ``rootless("run", "--rm", ...)``; ``.env`` and the XDG paths are attributes."""
    return RootlessCLI(tmp_path / "xdg")


def _mentions(path: Path, token: bytes) -> bool:
    for name in ("cmdline", "environ"):
        try:
            if token in (path / name).read_bytes():
                return True
        except OSError:  # gone, or not ours to read
            continue
    return False


def find_processes_with_token(token: str, wait: float = 0.0) -> list[int]:
    """PIDs whose command line or environment contains token, other than this process.

    With wait > 0, polls until none is left or wait seconds pass: a process killed by
    PDEATHSIG or a dying PID namespace vanishes shortly after its parent, not at once.
    """
    needle = token.encode()
    deadline = time.monotonic() + wait
    while True:
        found = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != os.getpid() and _mentions(entry, needle)
        ]
        if not found or time.monotonic() >= deadline:
            return sorted(found)
        time.sleep(0.05)


@pytest.fixture(name="find_processes_with_token")
def _find_processes_with_token() -> Callable[..., list[int]]:
    """The find_processes_with_token function, for tests to call."""
    return find_processes_with_token


@pytest.fixture(scope="session")
def image_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One docker-registry for the session's image tests; yields "127.0.0.1:<port>"."""
    from tests.registry._servers import run_registry

    with run_registry(tmp_path_factory.mktemp("image-registry")) as host:
        yield host


@pytest.fixture(scope="session")
def busybox_image(
    image_registry: str, _busybox_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """A busybox image (the busybox rootfs plus /probe) in image_registry; its reference.

    Config: Cmd ["sh"], Env PATH and IMAGE_VAR=from-image, WorkingDir /home, and a second
    layer that deletes /etc/motd (a whiteout) and adds /home/app owned by app (1000).
    """
    from tests.testimages import push_layout, tar_rootfs, write_layout

    base = tmp_path_factory.mktemp("busybox-image")
    rootfs = base / "rootfs"
    subprocess.run(["cp", "-a", str(_busybox_template), str(rootfs)], check=True)
    (rootfs / "etc" / "motd").write_text("hello\n")
    top = base / "top"
    (top / "home" / "app").mkdir(parents=True)
    (top / "home" / "app" / "note").write_text("app's file\n")
    (top / "etc").mkdir()
    (top / "etc" / ".wh.motd").write_text("")
    layers = [
        tar_rootfs(rootfs),
        tar_rootfs(top, owners={"home/app": (1000, 1000), "home/app/note": (1000, 1000)}),
    ]
    config = {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_VAR=from-image"],
        "WorkingDir": "/home",
    }
    layout = write_layout(base / "layout", layers, config)
    ref = f"{image_registry}/library/busybox:latest"
    push_layout(layout, ref)
    return ref


@pytest.fixture
def image(rootless: RootlessCLI, busybox_image: str) -> str:
    """busybox_image, pulled into this test's store; its reference. A module that must
    clean up after it overrides this fixture, requesting ``image`` itself."""
    ok(rootless("pull", "-q", "--tls-verify=false", busybox_image))
    return busybox_image


def podman_env(base: Path) -> tuple[dict[str, str], Path]:
    """An environment in which podman runs as this user with private storage (vfs) under
    ``base``, and the short directory holding its runroot (remove it when done).

    podman refuses a runroot longer than 50 characters, so that one is not under ``base``;
    crun refuses this kernel's hybrid cgroups and there is no systemd (docs/testing.md).
    """
    if shutil.which("podman") is None:
        pytest.fail("podman not found; run: sudo helpers/setup-host", pytrace=False)
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="rl-podman-"))
    runtime = short / "run"
    runtime.mkdir(mode=0o700)
    config = base / "pconfig"
    (config / "containers").mkdir(parents=True)
    (config / "containers" / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\nrunroot = "{short / "rr"}"\ngraphroot = "{base / "proot"}"\n'
    )
    (config / "containers" / "containers.conf").write_text(
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
    )
    (base / "phome").mkdir()
    env = {
        **os.environ,
        "HOME": str(base / "phome"),
        "XDG_RUNTIME_DIR": str(runtime),
        "XDG_CONFIG_HOME": str(config),
        "XDG_DATA_HOME": str(base / "pdata"),
    }
    return env, short


def run_in_pty(argv: list[str], env: Mapping[str, str]) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as its stdio; (exit code, all it wrote)."""
    import pty

    pid, master = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, dict(env))
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out


def stop_podman(env: Mapping[str, str], short: Path) -> None:
    """Undo podman_env: podman's storage, its rootless pause process, the runroot dir."""
    import contextlib
    import signal

    subprocess.run(["podman", "system", "reset", "-f"], env=dict(env), capture_output=True)
    pause = Path(env["XDG_RUNTIME_DIR"]) / "libpod" / "tmp" / "pause.pid"
    if pause.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pause.read_text()), signal.SIGKILL)
    shutil.rmtree(short, ignore_errors=True)
