"""The API runner's held user namespace: its calls' containers join it; the CLI's don't."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from rootless._paths import StoragePaths
from rootless.api import SyncClient

if TYPE_CHECKING:
    from tests.conftest import RootlessCLI

pytestmark = pytest.mark.kernel


@pytest.fixture
def paths(tmp_path: Path) -> StoragePaths:
    base = tmp_path / "roots"
    (base / "runtime").mkdir(parents=True, mode=0o700)
    return StoragePaths(base / "data", base / "runtime", base / "config", base / "cache")


READ_USERNS = ("readlink", "/proc/self/ns/user")


def _userns_argv(rootfs: Path) -> tuple[str, ...]:
    return (
        "run",
        "--rm",
        "--network=none",
        "--rootfs",
        str(rootfs),
        "readlink",
        "/proc/self/ns/user",
    )


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def test_api_containers_share_the_runners_user_namespace(
    paths: StoragePaths, busybox_rootfs: Path, rootless: RootlessCLI
) -> None:
    with SyncClient(paths) as client:
        first = client._call(*_userns_argv(busybox_rootfs)).stdout.strip()
        second = client._call(*_userns_argv(busybox_rootfs)).stdout.strip()
        runner = client._runner
        assert runner is not None
        holders = [
            p for p in _children(runner.pid) if os.readlink(f"/proc/{p}/ns/user") == first.decode()
        ]
        assert first == second and first.startswith(b"user:[")
        assert len(holders) == 1, "the runner's child holding the namespace"
        # The holder's map is the one every container gets: the user's subordinate range.
        assert len(Path(f"/proc/{holders[0]}/uid_map").read_text().splitlines()) >= 2
        # A container of the CLI, run while the holder exists, has a namespace of its own.
        cli = rootless(*_userns_argv(busybox_rootfs), check=True).stdout.strip()
        assert cli.startswith("user:[") and cli != first.decode()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{holders[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{holders[0]}").exists(), "the holder ends with the client"
