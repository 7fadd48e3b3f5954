"""The compose demo of issue #7: a three-service data pipeline on the project network.

ingestion (busybox) writes raw readings into a bind-mounted directory and exits;
processor (a Debian image: Debian's dynamically linked mawk and glibc on busybox)
starts once ingestion completed, summarises the readings with mawk and serves the
summary; api (busybox) answers on a published port with what it fetches from
``processor`` by name, through a CGI script.
"""

from __future__ import annotations

import shutil
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ok

from tests.docker_registry import free_port

COMPOSE = """
services:
  ingestion:
    image: {busybox}
    command: ["sh", "/scripts/ingest.sh"]
    environment:
      READINGS: "21 19 23 18"
    volumes: ["./data:/data", "./scripts:/scripts:ro"]
  processor:
    image: {debian}
    command: ["sh", "/scripts/process.sh"]
    init: true  # httpd as PID 1 would ignore SIGTERM
    environment: {{UNIT: celsius}}
    volumes: ["./data:/data:ro", "./scripts:/scripts:ro"]
    depends_on:
      ingestion: {{condition: service_completed_successfully}}
  api:
    image: {busybox}
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    init: true
    environment:
      UPSTREAM: http://processor:8080/summary
    volumes: ["./www:/www:ro"]
    ports: ["127.0.0.1:{port}:80"]
    depends_on: [processor]
"""

INGEST = """\
for reading in $READINGS; do echo "$reading"; done > /data/raw.csv
"""

PROCESS = """\
mkdir -p /srv
mawk -v unit="$UNIT" '{ s += $1; n++ }
    END { printf "count=%d mean=%.2f unit=%s\\n", n, s / n, unit }' /data/raw.csv > /srv/summary
exec httpd -f -p 8080 -h /srv
"""

REPORT = """\
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "api: $(wget -qO- "$UPSTREAM")"
"""

# Debian's own binaries for the processor's image: a dynamically linked mawk and the
# glibc it loads.
DEBIAN_FILES = (
    "/usr/bin/mawk",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/libm.so.6",
    "/lib64/ld-linux-x86-64.so.2",
)


@pytest.fixture(scope="module")
def debian_image(
    image_registry: str, _busybox_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """busybox plus Debian's mawk and glibc, in image_registry; its reference."""
    from tests.testimages import push_layout, tar_rootfs, write_layout

    base = tmp_path_factory.mktemp("debian-image")
    top = base / "top"
    for name in DEBIAN_FILES:
        dest = top / name.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(name).resolve(), dest)
    config = {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
    layout = write_layout(base / "layout", [tar_rootfs(_busybox_template), tar_rootfs(top)],
                          config)  # fmt: skip
    ref = f"{image_registry}/pipeline/debian-mawk"
    push_layout(layout, ref)
    return f"{ref}:latest"


def _fetch(url: str, timeout: float = 20.0) -> str:
    """The body once the api answers (the services start in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_pipeline_api_answers_with_data_from_the_processor(
    rootless, busybox_image, debian_image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    for ref in (busybox_image, debian_image):
        ok(rootless("pull", "-q", "--tls-verify=false", ref))
    port = free_port()
    proj = tmp_path / "pipeline"
    for sub, name, text, mode in (
        ("scripts", "ingest.sh", INGEST, 0o644),
        ("scripts", "process.sh", PROCESS, 0o644),
        ("www/cgi-bin", "report", REPORT, 0o755),
    ):
        (proj / sub).mkdir(parents=True, exist_ok=True)
        (proj / sub / name).write_text(text)
        (proj / sub / name).chmod(mode)
    file = proj / "compose.yaml"
    file.write_text(COMPOSE.format(busybox=busybox_image, debian=debian_image, port=port))

    def compose(*args: str, **kw: Any) -> Any:
        return rootless("compose", "-f", str(file), "-p", "pipe", *args, **kw)

    try:
        r = compose("up", "-d")
        ok(r)
        assert "warning" not in r.stderr
        body = _fetch(f"http://127.0.0.1:{port}/cgi-bin/report")
        # mean of 21 19 23 18, computed by the processor, fetched by the api by name
        assert body.strip() == "api: count=4 mean=20.25 unit=celsius"
        assert (proj / "data" / "raw.csv").read_text().split() == ["21", "19", "23", "18"]
        ps = ok(compose("ps", "-a"))
        assert f"127.0.0.1:{port}->80/tcp" in ps
        # All three share the project network: the api's address is on its subnet.
        out = ok(compose("exec", "-T", "api", "nslookup", "processor"))
        assert "10.89." in out
    finally:
        r = compose("down", "-v", "-t", "1", timeout=60)
    ok(r)
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert "pipe_default" not in ok(rootless("network", "ls", "-q"))
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []
    # The bind-mounted directory stays on the host (down -v removes named volumes only).
    assert (proj / "data" / "raw.csv").exists()
