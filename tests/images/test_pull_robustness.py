"""Pulls that are killed, pulls that race, and images with two platforms, through the CLI
as the unprivileged user against a real docker-registry."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.registry._images import (
    busybox_layer,
    make_image,
    make_index,
    sha256,
    small_layer,
    write_oci_layout,
)
from tests.testimages import push_layout, tar_rootfs, write_layout

pytestmark = pytest.mark.kernel

BIG = 12 << 20  # random bytes: gzip cannot shrink them, so the download takes a while
SLOW_RATE = 3 << 20  # bytes per second through the slow proxy


def storage(rootless) -> Path:
    return rootless.data_home / "rootless" / "storage"


@contextmanager
def slow_proxy(upstream: str, rate: dict[str, int]) -> Iterator[str]:
    """An HTTP proxy to ``upstream`` that sends blob bodies at ``rate["bps"]`` bytes/s
    (0: full speed). Yields "127.0.0.1:<port>"."""
    host, _, port = upstream.partition(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def forward(self) -> None:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
            }
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "date", "server"):
                    self.send_header(k, v)
            data = resp.read()
            if resp.getheader("Content-Length") is None:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            conn.close()
            if self.command == "HEAD":
                return
            slow = "/blobs/" in self.path
            for start in range(0, len(data), 64 << 10):
                if slow and rate["bps"]:
                    time.sleep((64 << 10) / rate["bps"])
                try:
                    self.wfile.write(data[start : start + (64 << 10)])
                except (BrokenPipeError, ConnectionResetError):
                    return

        do_GET = do_HEAD = forward

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def big_image(image_registry: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """busybox plus a layer of random data and one of 2,000 small files."""
    base = tmp_path_factory.mktemp("big-image")
    (base / "bb" / "bin").mkdir(parents=True)
    (base / "bb" / "bin" / "busybox").write_bytes(Path("/bin/busybox").read_bytes())
    (base / "bb" / "bin" / "busybox").chmod(0o755)
    (base / "bb" / "bin" / "sh").symlink_to("busybox")
    (base / "big").mkdir()
    (base / "big" / "random").write_bytes(os.urandom(BIG))
    many = base / "many" / "files"
    many.mkdir(parents=True)
    for i in range(2000):
        (many / f"f{i:04}").write_text(f"file {i}\n")
    layers = [tar_rootfs(base / d) for d in ("bb", "big", "many")]
    layout = write_layout(base / "layout", layers, {"Cmd": ["sh"]})
    ref = f"{image_registry}/robust/big:1"
    push_layout(layout, ref)
    return "robust/big:1"


def image_blobs(rootless, ref: str) -> set[str]:
    """The blob hex names an image needs: manifest, config, layers (and index, if any)."""
    (info,) = json.loads(rootless("image", "inspect", ref).stdout)
    raw = storage(rootless) / "blobs" / "sha256" / info["Digest"].split(":")[1]
    manifest = json.loads(raw.read_bytes())
    digests = [info["Digest"], *(layer["digest"] for layer in manifest["layers"])]
    return {info["Id"], *(d.split(":")[1] for d in digests)}


def assert_store_is_exactly(rootless, ref: str) -> None:
    (info,) = json.loads(rootless("image", "inspect", ref).stdout)
    blobs = {p.name for p in (storage(rootless) / "blobs" / "sha256").iterdir()}
    assert blobs == image_blobs(rootless, ref)
    layers = storage(rootless) / "layers"
    assert {p.name for p in layers.iterdir()} == {d.split(":")[1] for d in info["RootFS"]["Layers"]}
    for layer in layers.iterdir():  # complete: the unpack's record is there
        assert (layer / "layer.json").is_file() and (layer / "diff").is_dir()


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _partial_blob(tmp: Path) -> bool:
    try:
        return any(p.name.startswith("blob-") and p.stat().st_size > 1 << 20 for p in tmp.iterdir())
    except FileNotFoundError:  # a temp file went away while we looked
        return False


def _unpacking(tmp: Path) -> bool:
    return any(p.name.startswith("layer-") for p in tmp.iterdir())


@pytest.mark.parametrize("moment", ["download", "unpack"])
def test_sigkill_during_a_pull_then_pull_again(
    rootless, big_image, image_registry, find_processes_with_token, moment
):
    rate = {"bps": SLOW_RATE if moment == "download" else 0}
    with slow_proxy(image_registry, rate) as proxy:
        ref = f"{proxy}/{big_image}"
        token = f"rl-kill-{uuid.uuid4().hex}"
        proc = subprocess.Popen(
            rootless.command("pull", "--tls-verify=false", ref),
            env={**rootless.env, "RL_TEST_TOKEN": token},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        tmp = storage(rootless) / "tmp"
        try:
            wait_for(tmp.exists)
            wait_for(lambda: _partial_blob(tmp) if moment == "download" else _unpacking(tmp))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        # The pull's child in the user namespace dies with it.
        assert find_processes_with_token(token, wait=5) == []
        assert rootless("images", "-q").stdout == ""
        # Nothing half-done is visible: no layer without its record, no unverified blob.
        for layer in (storage(rootless) / "layers").iterdir():
            assert (layer / "layer.json").is_file()
        assert list(tmp.iterdir()), "the pull was killed before it wrote anything"

        rate["bps"] = 0
        r = rootless("pull", "-q", "--tls-verify=false", ref, timeout=120)
        assert r.returncode == 0, r.stderr
    assert_store_is_exactly(rootless, ref)
    # The killed pull's temp files are garbage the next collection removes.
    assert rootless("image", "prune", "-f").returncode == 0
    assert list(tmp.iterdir()) == []
    assert_store_is_exactly(rootless, ref)
    r = rootless("run", "--rm", "--network", "none", ref, "sh", "-c", "ls /files | wc -l")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2000"


def test_ten_concurrent_pulls_store_one_copy(rootless, big_image, image_registry):
    ref = f"{image_registry}/{big_image}"
    procs = [
        subprocess.Popen(
            rootless.command("pull", "-q", "--tls-verify=false", ref),
            env=rootless.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    assert len({out.split()[-1] for out, _ in results}) == 1
    (listed,) = json.loads(rootless("images", "--format", "json").stdout)
    assert listed["RepoTags"] == [ref]
    assert_store_is_exactly(rootless, ref)
    assert list((storage(rootless) / "tmp").iterdir()) == []


# -- a manifest list with two platforms, pushed by skopeo ------------------------------------------


@pytest.fixture(scope="module")
def two_platforms(image_registry: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    amd = make_image([busybox_layer("amd64")], arch="amd64")
    arm = make_image([small_layer("arm64")], arch="arm64", variant="v8")
    index = make_index([(amd, "linux", "amd64", ""), (arm, "linux", "arm64", "v8")])
    layout = write_oci_layout(tmp_path_factory.mktemp("multi") / "layout", amd, "unused")
    blobs = layout / "blobs" / "sha256"
    for blob in (arm.config, *arm.layers, arm.manifest, index):
        (blobs / sha256(blob).split(":")[1]).write_bytes(blob)
    entry = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": sha256(index),
        "size": len(index),
        "annotations": {"org.opencontainers.image.ref.name": "multi"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    ref = f"{image_registry}/robust/multi:1"
    subprocess.run(
        ["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
         f"oci:{layout}:multi", f"docker://{ref}"],
        check=True,
    )  # fmt: skip
    return ref


def test_platform_choice_from_a_skopeo_manifest_list(rootless, two_platforms, tmp_path):
    r = rootless("pull", "-q", "--tls-verify=false", "--platform", "linux/arm64", two_platforms)
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(rootless("image", "inspect", two_platforms).stdout)
    assert (info["Architecture"], info.get("Variant")) == ("arm64", "v8")

    from tests.conftest import RootlessCLI

    other = RootlessCLI(tmp_path / "other")
    r = other("pull", "-q", "--tls-verify=false", two_platforms)
    assert r.returncode == 0, r.stderr
    (info,) = json.loads(other("image", "inspect", two_platforms).stdout)
    assert info["Architecture"] == "amd64"
    r = other("run", "--rm", "--network", "none", two_platforms, "sh", "-c", "cat /marker")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "amd64"
