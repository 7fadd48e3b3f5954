"""The Docker docs' multi-stage pattern, from the local Debian and busybox images: built by
rootless, pushed, pulled and run by Podman; and built by `podman build` into the same files
and config."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import REPO_ROOT, podman_env, stop_podman

pytestmark = pytest.mark.kernel

# A build stage makes the artefact with Debian's tools; a slim stage copies only it.
CONTAINERFILE = """\
# syntax=docker/dockerfile:1
FROM {debian} AS build
WORKDIR /src
COPY greet.sh .
RUN set -e; mkdir -p /out; \\
    sed "s/@DEBIAN@/$(cut -d. -f1 /etc/debian_version)/" greet.sh > /out/greet; \\
    chmod 755 /out/greet; cd /out && sha256sum greet > greet.sha256

FROM {busybox}
ENV APP_HOME=/app GREETING=hello
WORKDIR $APP_HOME
COPY --from=build /out/ ./
ENTRYPOINT ["/app/greet", "from"]
CMD ["the final stage"]
"""

GREET = """\
#!/bin/sh
echo "$GREETING $* (built on Debian @DEBIAN@)"
sha256sum -c /app/greet.sha256 >/dev/null && echo checksum ok
pwd
"""


@pytest.fixture(scope="module")
def debian_image(image_registry: str) -> str:
    """The Debian bookworm image (helpers/mkimage-debian, cached) in image_registry."""
    made = subprocess.run(
        [sys.executable, str(REPO_ROOT / "helpers/mkimage-debian")],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    layout = made.stdout.strip().splitlines()[-1]
    ref = f"{image_registry}/library/debian:bookworm"
    pushed = subprocess.run(
        ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
         f"oci:{layout}:bookworm", f"docker://{ref}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    return ref


def flatten(archive: Path) -> dict[str, tuple[str, int, int, int, bytes]]:
    """The rootfs of the image in a docker-archive: path -> (type, mode, uid, gid, content)."""
    files: dict[str, tuple[str, int, int, int, bytes]] = {}
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]
        for name in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(outer.extractfile(name).read())) as layer:
                for m in layer.getmembers():
                    path = m.name.removeprefix("./").rstrip("/")
                    head, _, base = path.rpartition("/")
                    if base == ".wh..wh..opq":
                        prefix = f"{head}/"
                        files = {k: v for k, v in files.items() if not k.startswith(prefix)}
                    elif base.startswith(".wh."):
                        gone = f"{head}/{base[4:]}".lstrip("/")
                        files = {
                            k: v for k, v in files.items()
                            if k != gone and not k.startswith(gone + "/")
                        }  # fmt: skip
                    else:
                        data = layer.extractfile(m).read() if m.isfile() else m.linkname.encode()
                        files[path] = (m.type.decode(), m.mode & 0o7777, m.uid, m.gid, data)
    return files


def config_of(inspect_json: str) -> dict[str, object]:
    cfg = json.loads(inspect_json)[0]["Config"]
    return {k: cfg.get(k) for k in ("Entrypoint", "Cmd", "Env", "WorkingDir")}


def test_multi_stage_demo_matches_podman(
    rootless, busybox_image, debian_image, image_registry, tmp_path
):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "greet.sh").write_text(GREET)
    (ctx / "Containerfile").write_text(
        CONTAINERFILE.format(debian=debian_image, busybox=busybox_image)
    )
    r = rootless("build", "--tls-verify=false", "-t", "demo", str(ctx), timeout=300)
    assert r.returncode == 0, r.stderr
    ours = rootless("run", "--rm", "--network", "none", "demo")
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout == ("hello from the final stage (built on Debian 12)\nchecksum ok\n/app\n")
    dest = f"{image_registry}/demo/multistage:1"
    r = rootless("push", "-q", "--tls-verify=false", "localhost/demo", dest)
    assert r.returncode == 0, r.stderr
    r = rootless("save", "-o", str(tmp_path / "ours.tar"), "localhost/demo")
    assert r.returncode == 0, r.stderr
    our_config = config_of(rootless("image", "inspect", "localhost/demo").stdout)

    env, short = podman_env(tmp_path)
    env["STORAGE_DRIVER"] = "overlay"  # kernel overlayfs: vfs copies Debian for every step

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args], capture_output=True, text=True, env=env, check=False, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done

    try:
        podman("pull", "-q", "--tls-verify=false", dest)
        theirs = podman("run", "--rm", "--network", "none", dest)
        assert theirs.stdout == ours.stdout
        podman("build", "-q", "--tls-verify=false", "-t", "demo", str(ctx))
        podman("save", "-o", str(tmp_path / "theirs.tar"), "localhost/demo")
        their_config = config_of(podman("image", "inspect", "localhost/demo").stdout)
    finally:
        stop_podman(env, short)
    assert our_config == their_config
    ours_files, theirs_files = flatten(tmp_path / "ours.tar"), flatten(tmp_path / "theirs.tar")
    assert sorted(ours_files) == sorted(theirs_files)
    assert ours_files == theirs_files
