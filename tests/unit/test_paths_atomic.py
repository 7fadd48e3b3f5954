import multiprocessing
import os
import time
from pathlib import Path

import pytest

from rootless._atomic import atomic_write, flock
from rootless._paths import StoragePaths
from rootless.errors import ConfigError


def test_xdg_defaults() -> None:
    p = StoragePaths.from_env({"HOME": "/h", "XDG_RUNTIME_DIR": "/run/user/7"})
    assert p.data == Path("/h/.local/share/rootless")
    assert p.config == Path("/h/.config/rootless")
    assert p.cache == Path("/h/.cache/rootless")
    assert p.runtime == Path("/run/user/7/rootless")
    assert p.images == Path("/h/.local/share/rootless/storage")


def test_overrides() -> None:
    env = {
        "HOME": "/h",
        "XDG_DATA_HOME": "/x/data",
        "ROOTLESS_DATA_DIR": "/d",
        "ROOTLESS_RUNTIME_DIR": "/r",
        "ROOTLESS_CONFIG_DIR": "/c",
    }
    p = StoragePaths.from_env(env)
    assert (p.data, p.runtime, p.config) == (Path("/d"), Path("/r"), Path("/c"))
    assert StoragePaths.from_env({"HOME": "/h", "XDG_DATA_HOME": "/x"}).data == Path("/x/rootless")


def test_errors() -> None:
    with pytest.raises(ConfigError, match="HOME is not set"):
        StoragePaths.from_env({})
    with pytest.raises(ConfigError, match="must be absolute"):
        StoragePaths.from_env({"HOME": "/h", "ROOTLESS_DATA_DIR": "rel"})


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"one")
    atomic_write(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["f"]


def _hold(path: str, started: "multiprocessing.synchronize.Event") -> None:
    with flock(Path(path)):
        started.set()
        time.sleep(0.5)


def test_flock_excludes_other_process(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    started = multiprocessing.get_context("fork").Event()
    proc = multiprocessing.get_context("fork").Process(target=_hold, args=(str(lock), started))
    proc.start()
    started.wait(5)
    t0 = time.monotonic()
    with flock(lock):
        waited = time.monotonic() - t0
    proc.join()
    assert waited > 0.3
    with flock(lock, shared=True), flock(lock, shared=True):
        pass  # shared holders do not exclude each other


def test_as_env_round_trips_through_from_env(tmp_path: Path) -> None:
    roots = StoragePaths(tmp_path / "d", tmp_path / "r", tmp_path / "c", tmp_path / "k")
    assert StoragePaths.from_env({"HOME": "/nowhere", **roots.as_env()}) == roots
    assert roots.child_env()["ROOTLESS_RUNTIME_DIR"] == str(tmp_path / "r")
