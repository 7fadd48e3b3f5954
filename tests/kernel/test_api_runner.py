"""The API's runner process, for real: one per client, the caller's working directory,
concurrent and cancelled calls, and nothing left behind when the client goes away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import rootless
from rootless._paths import StoragePaths

REPO_ROOT = Path(__file__).resolve().parents[2]
# A container that ends at SIGTERM (a plain `sleep` as PID 1 would ignore it).
STOPPABLE = "trap 'exit 0' TERM; sleep 60 & wait"


@pytest.fixture
def paths(tmp_path: Path) -> StoragePaths:
    base = tmp_path / "roots"
    (base / "runtime").mkdir(parents=True, mode=0o700)
    return StoragePaths(base / "data", base / "runtime", base / "config", base / "cache")


def _run_rootfs(rootfs: str | Path, *command: str, env: str = "X=1") -> tuple[str, ...]:
    return ("run", "--rm", "--network=none", f"--env={env}", "--rootfs", str(rootfs), *command)


def _gone(pid: int, wait: float = 10) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_one_runner_serves_the_calls_in_the_callers_directory(
    paths: StoragePaths, busybox_rootfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(busybox_rootfs.parent)
    with rootless.SyncClient(paths) as client:
        first = client._call(
            *_run_rootfs("rootfs", "/bin/sh", "-c", "echo one; exit 3"), check=False
        )
        assert (first.returncode, first.stdout) == (3, b"one\n")
        runner = client._runner
        assert runner is not None and runner.poll() is None
        (busybox_rootfs / "marker").write_text("here")
        second = client._call(*_run_rootfs("rootfs", "/bin/cat", "/marker"))
        assert second.stdout == b"here" and client._runner is runner
        # The CLI's own behaviour: its usage errors, as exit code 125 and a message.
        bad = client._call("run", "--no-such-flag", check=False)
        assert bad.returncode == 125 and b"--no-such-flag" in bad.stderr
    assert runner.returncode == 0  # close() waited for it
    assert client._call("ps", "-a", "-q").stdout == b""  # a new runner, on demand
    client.close()


async def test_concurrent_and_cancelled_calls(
    paths: StoragePaths,
    busybox_rootfs: Path,
    find_processes_with_token: Callable[..., list[int]],
) -> None:
    token = f"api-cancel-{os.getpid()}"
    async with rootless.Client(paths) as client:
        outputs: dict[int, bytes] = {}

        async def echo(n: int) -> None:
            done = await client._call(*_run_rootfs(busybox_rootfs, "/bin/echo", str(n)))
            outputs[n] = done.stdout

        async with trio.open_nursery() as nursery:
            for n in range(3):
                nursery.start_soon(echo, n)
        assert outputs == {n: f"{n}\n".encode() for n in range(3)}

        with trio.move_on_after(1.5) as scope:
            await client._call(
                *_run_rootfs(busybox_rootfs, "/bin/sh", "-c", STOPPABLE, env=f"T={token}")
            )
        assert scope.cancelled_caught
        # The cancelled run got SIGTERM, passed it on and removed its container (--rm).
        assert find_processes_with_token(token, wait=5) == []
        assert (await client._call("ps", "-a", "-q")).stdout == b""


def test_the_runner_and_its_calls_end_with_the_client(
    paths: StoragePaths,
    busybox_rootfs: Path,
    tmp_path: Path,
    find_processes_with_token: Callable[..., list[int]],
) -> None:
    token = f"api-orphan-{os.getpid()}"
    script = tmp_path / "client.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, rootless
            from pathlib import Path
            from rootless._paths import StoragePaths
            from rootless.api import _link
            roots, argv = json.loads(sys.argv[1])
            client = rootless.SyncClient(StoragePaths(*map(Path, roots)))
            client._start(tuple(argv), _link.Capture().fds())
            print(client._runner.pid, flush=True)
            sys.stdin.read()
            """
        )
    )
    roots = [str(p) for p in (paths.data, paths.runtime, paths.config, paths.cache)]
    argv = _run_rootfs(busybox_rootfs, "/bin/sh", "-c", STOPPABLE, env=f"T={token}")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with subprocess.Popen(
        [sys.executable, str(script), json.dumps([roots, argv])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as program:
        assert program.stdout is not None
        runner = int(program.stdout.readline())
        deadline = time.monotonic() + 20
        while not find_processes_with_token(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert find_processes_with_token(token), "the container never started"
        program.kill()  # no close(), no clean-up of its own
        program.wait()
    assert _gone(runner), "the runner outlived its client"
    assert find_processes_with_token(token, wait=5) == []
    with rootless.SyncClient(paths) as client:
        assert client._call("ps", "-a", "-q").stdout == b""  # the run ended as at SIGTERM


def test_a_dead_runner_fails_its_calls_and_is_replaced(
    paths: StoragePaths,
    busybox_rootfs: Path,
    find_processes_with_token: Callable[..., list[int]],
) -> None:
    from rootless.api import _link

    token = f"api-dead-runner-{os.getpid()}"
    with rootless.SyncClient(paths) as client:
        capture = _link.Capture()
        try:
            argv = _run_rootfs(busybox_rootfs, "/bin/sleep", "60", env=f"T={token}")
            call = client._start(argv, capture.fds())
            deadline = time.monotonic() + 20
            while not find_processes_with_token(token) and time.monotonic() < deadline:
                time.sleep(0.05)
            old = client._runner
            assert old is not None
            os.kill(old.pid, signal.SIGKILL)
            with pytest.raises(_link.RunnerGone, match="runner process exited") as info:
                client._await(call)
            assert info.value.exit_code == 125
        finally:
            capture.close()
        # Its call died with it (PR_SET_PDEATHSIG), and the container with the call.
        assert find_processes_with_token(token, wait=5) == []
        assert client._call("ps", "-a", "-q").returncode == 0
        assert client._runner is not old
