"""Interop with podman: what rootless pushes, podman pulls (and sees the same digests)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from rootless.image.reference import parse_reference
from rootless.image.store import Store
from rootless.registry import push_image
from tests.registry._images import busybox_layer, make_image, sha256, store_image


async def test_podman_pulls_what_we_pushed(registry: str, store: Store, tmp_path: Path) -> None:
    image = make_image([busybox_layer("for podman")])
    store_image(store, image)
    await push_image(
        parse_reference(f"{registry}/ours/podman:1"),
        store,
        image.manifest,
        image.media_type,
        tls_verify=False,
    )
    # podman refuses a runroot longer than 50 characters, so not under tmp_path.
    short = Path(tempfile.mkdtemp(prefix="rl-podman-"))
    runtime = short / "run"
    runtime.mkdir(mode=0o700)
    (tmp_path / "home").mkdir()
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": str(runtime)}
    podman = ["podman", "--root", str(tmp_path / "root"), "--runroot", str(short / "rr")]
    podman += ["--storage-driver", "vfs"]
    try:
        pulled = subprocess.run(
            [*podman, "pull", "-q", "--tls-verify=false", f"{registry}/ours/podman:1"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.strip() == sha256(image.config).split(":")[1]
        inspected = subprocess.run(
            [*podman, "image", "inspect", f"{registry}/ours/podman:1"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        info = json.loads(inspected.stdout)[0]
        assert info["Digest"] == image.digest
        assert info["RootFS"]["Layers"] == json.loads(image.config)["rootfs"]["diff_ids"]
    finally:
        subprocess.run([*podman, "system", "reset", "-f"], env=env, capture_output=True)
        # Rootless podman may leave a pause process for its user namespace: end ours.
        pause = runtime / "libpod" / "tmp" / "pause.pid"
        if pause.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pause.read_text()), signal.SIGKILL)
        shutil.rmtree(short, ignore_errors=True)
