"""The Python API (rootless.Client, rootless.SyncClient) and the pytest plugin, for real."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

import rootless
from rootless._paths import StoragePaths
from rootless.container.records import NoSuchContainer
from rootless.errors import CommandNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]


def _paths(base: Path) -> StoragePaths:
    runtime = base / "runtime"
    runtime.mkdir(parents=True, mode=0o700)
    return StoragePaths(base / "data", runtime, base / "config", base / "cache")


@pytest.fixture
def paths(tmp_path: Path) -> StoragePaths:
    return _paths(tmp_path / "roots")


async def test_async_lifecycle(paths: StoragePaths, busybox_image: str) -> None:
    client = rootless.Client(paths)
    image = await client.pull(busybox_image, tls_verify=False)
    assert len(image.id) == 64 and image.name == busybox_image

    ctr = await client.run(
        busybox_image,
        [
            "sh",
            "-c",
            "echo started; echo warn >&2; trap 'echo bye; exit 3' TERM; "
            "while :; do sleep 0.1; done",
        ],
        detach=True,
        env={"GREETING": "hi there"},
        network="none",
    )
    try:
        state = await ctr.inspect()
        assert state["Id"] == ctr.id and state["State"]["Running"] is True

        done = await ctr.exec(["sh", "-c", 'echo "$GREETING"; echo oops >&2; exit 4'])
        assert (done.exit_code, done.stdout, done.stderr) == (4, b"hi there\n", b"oops\n")

        with trio.fail_after(10):
            while not (await ctr.logs()).stdout:
                await trio.sleep(0.05)
        logs = await ctr.logs()
        assert (logs.stdout, logs.stderr) == (b"started\n", b"warn\n")

        await ctr.stop(timeout=5)
        assert await ctr.wait() == 3
        assert b"bye\n" in (await ctr.logs()).stdout
    finally:
        await ctr.remove(force=True)
    with pytest.raises(NoSuchContainer, match="no such container") as info:
        await ctr.inspect()
    assert info.value.exit_code == 125


async def test_async_foreground_run_and_follow(paths: StoragePaths, busybox_image: str) -> None:
    client = rootless.Client(paths)
    await client.pull(busybox_image, tls_verify=False)  # else stderr starts with its progress
    done = await client.run(
        busybox_image, ["sh", "-c", "echo out; echo err >&2; exit 7"], rm=True, network="none"
    )
    assert (done.exit_code, done.stdout, done.stderr) == (7, b"out\n", b"err\n")

    ctr = await client.run(
        busybox_image,
        ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.1; done"],
        detach=True,
        network="none",
    )
    try:
        with trio.fail_after(20):
            lines = [line async for line in ctr.logs(follow=True)]
        assert lines == [b"line 1\n", b"line 2\n", b"line 3\n"]
        assert await ctr.wait() == 0
    finally:
        await ctr.remove(force=True)


async def test_async_errors_keep_message_and_code(paths: StoragePaths, busybox_image: str) -> None:
    client = rootless.Client(paths)
    with pytest.raises(CommandNotFound) as info:
        await client.run(busybox_image, ["/no/such/cmd"], network="none", tls_verify=False)
    assert info.value.exit_code == 127
    assert "/no/such/cmd" in str(info.value) and not str(info.value).startswith("Error")
    with pytest.raises(NoSuchContainer, match='no container with name or ID "nope"'):
        await client.container("nope").stop()


def test_sync_lifecycle(paths: StoragePaths, busybox_image: str) -> None:
    client = rootless.SyncClient(paths)
    client.pull(busybox_image, tls_verify=False)
    ctr = client.run(
        busybox_image,
        ["sh", "-c", "echo ready; sleep 60"],
        detach=True,
        name="api-sync",
        network="none",
    )
    try:
        assert client.container("api-sync").inspect()["Id"] == ctr.id
        done = ctr.exec(["cat", "/etc/hostname"])
        assert done.exit_code == 0 and done.stdout.strip()
        ctr.stop(timeout=1)
        assert ctr.wait() == 137  # sleep ignores SIGTERM as PID 1; killed after 1 s
        assert ctr.logs().stdout == b"ready\n"
        assert list(ctr.logs(follow=True)) == [b"ready\n"]  # ends: the container exited
    finally:
        ctr.remove(force=True)
    listed = subprocess.run(
        [sys.executable, "-m", "rootless", "ps", "-a", "-q"],
        capture_output=True,
        text=True,
        check=True,
        env=client._env,
    )
    assert listed.stdout == ""


def test_sync_ports(paths: StoragePaths, busybox_image: str) -> None:
    client = rootless.SyncClient(paths)
    ctr = client.run(
        busybox_image, ["sleep", "60"], detach=True, ports=["127.0.0.1::80"], tls_verify=False
    )
    try:
        (port,) = ctr.ports()
        assert (port.host_ip, port.container_port, port.protocol) == ("127.0.0.1", 80, "tcp")
        assert port.host_port > 0
    finally:
        ctr.remove(force=True)


def test_build(paths: StoragePaths, busybox_image: str, tmp_path: Path) -> None:
    client = rootless.SyncClient(paths)
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Containerfile").write_text(
        f"FROM {busybox_image}\nARG WHO\nRUN echo hello $WHO > /greeting\n"
    )
    image = client.build(
        context, tag="localhost/api-built:1", build_args={"WHO": "api"}, tls_verify=False
    )
    assert len(image.id) == 64
    done = client.run("localhost/api-built:1", ["cat", "/greeting"], rm=True, network="none")
    assert done.stdout == b"hello api\n"


def _plugin_args() -> list[str]:
    """``-p rootless.pytest_plugin`` unless the entry point already loads it."""
    installed = any(
        ep.value == "rootless.pytest_plugin"
        for ep in importlib.metadata.entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "rootless.pytest_plugin"]


def test_plugin_removes_containers_of_a_failing_test(
    busybox_image: str, tmp_path: Path, find_processes_with_token: Callable[..., list[int]]
) -> None:
    token = f"api-plugin-{os.getpid()}-{tmp_path.name}"
    (tmp_path / "test_inner.py").write_text(
        textwrap.dedent(
            f"""
            import pytest

            def test_uses_containers(rootless_client, rootless_container):
                rootless_client.pull({busybox_image!r}, tls_verify=False)
                a = rootless_container({busybox_image!r}, ["sleep", "60"], network="none",
                                       env={{"TOKEN": {token!r}}})
                b = rootless_container({busybox_image!r}, ["sleep", "60"], name="inner-b",
                                       network="none", env={{"TOKEN": {token!r}}})
                assert a.inspect()["State"]["Running"]
                assert b.exec(["true"]).exit_code == 0
                assert False, "the test fails on purpose"

            @pytest.mark.trio
            async def test_async_client(rootless_async_client):
                done = await rootless_async_client.run({busybox_image!r}, ["true"], network="none",
                                                      rm=True)
                assert done.exit_code == 0
                with open("runner.pid", "w") as f:
                    f.write(str(rootless_async_client._runner.pid))
            """
        )
    )
    # The async client's runner ends with the session, before the interpreter exits.
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import os

            def pytest_sessionfinish(session):
                pid = int(open("runner.pid").read())
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    open("runner.state", "w").write("gone")
                else:
                    open("runner.state", "w").write("running")
            """
        )
    )
    root = tmp_path / "roots"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            *_plugin_args(),
            f"--rootless-root={root}",
            "test_inner.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "the test fails on purpose" in inner.stdout
    assert "1 failed, 1 passed" in inner.stdout
    assert (tmp_path / "runner.state").read_text() == "gone"
    left = rootless.SyncClient(
        StoragePaths(root / "data", root / "runtime", root / "config", root / "cache")
    )
    listed = left._call("ps", "--all", "--quiet")
    assert listed.stdout == b""
    assert find_processes_with_token(token, wait=5) == []


def test_sync_compose_up_and_down(paths: StoragePaths, busybox_image: str, tmp_path: Path) -> None:
    client = rootless.SyncClient(paths)
    client.pull(busybox_image, tls_verify=False)
    compose = tmp_path / "compose.yaml"
    compose.write_text(
        f"services:\n  app:\n    image: {busybox_image}\n    command: [sleep, '60']\n"
        "    network_mode: none\n"
    )
    client.compose_up([compose], project="apiproj")
    try:
        state = client.container("apiproj-app-1").inspect()["State"]
        assert state["Running"] is True
    finally:
        client.compose_down([compose], project="apiproj", timeout=1)
    assert client._call("ps", "--all", "--quiet").stdout == b""
