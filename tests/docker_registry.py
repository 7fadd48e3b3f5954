"""Debian's docker-registry on a free local port, for the registry tests and the benchmarks.

Plain Python, no pytest: the benchmarks run as scripts (tests/bench/_common.py puts the
checkout on sys.path and imports this as ``tests.docker_registry``, the name pytest uses).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REGISTRY_BIN = "/usr/bin/docker-registry"


class RegistryStartError(Exception):
    """docker-registry is missing, exited, or did not answer; the message has its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_v2(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RegistryStartError(f"docker-registry exited:\n{log.read_text()}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # 401: up, and asking for credentials
        except OSError:
            time.sleep(0.05)
    raise RegistryStartError(f"docker-registry did not answer on {url}:\n{log.read_text()}")


@contextmanager
def run_registry(root: Path, auth_yaml: str = "") -> Iterator[str]:
    """docker-registry on 127.0.0.1:<free port>, plain HTTP, storing under *root*;
    *auth_yaml* is its ``auth:`` section, if any. Yields "127.0.0.1:<port>"."""
    if not Path(REGISTRY_BIN).exists():
        raise RegistryStartError("docker-registry not found; run: sudo helpers/setup-host")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth_yaml
    )
    log = root / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=out, stderr=out)
    try:
        _wait_for_v2(f"http://127.0.0.1:{port}/v2/", proc, log)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
