"""`rootless build`: COPY/ADD --parents and --exclude, ADD --checksum, git sources, and
RUN --mount=type=cache sharing= and from= (concurrent builds on one store)."""

from __future__ import annotations

import hashlib
import subprocess
import time

import pytest

from tests.conftest import serve_on_host

pytestmark = pytest.mark.kernel


@pytest.fixture
def base(rootless, busybox_image):
    r = rootless("pull", "-q", "--tls-verify=false", busybox_image)
    assert r.returncode == 0, r.stderr
    return busybox_image


def build(rootless, context, *args, timeout=120):
    return rootless("build", "--tls-verify=false", *args, str(context), timeout=timeout)


def image_id(result):
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout.strip().splitlines()[-1]


def run_sh(rootless, image, script):
    r = rootless("run", "--rm", image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    return r.stdout


def write_tree(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_copy_parents_and_exclude(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    write_tree(
        ctx,
        {
            "apps/web/package.json": "web\n",
            "apps/web/src/main.js": "main\n",
            "apps/api/package.json": "api\n",
            "apps/api/notes.md": "notes\n",
            "conf/a.conf": "a\n",
            "conf/b.md": "b\n",
            "conf/tmp/x": "x\n",
        },
    )
    (ctx / "Containerfile").write_text(
        f"FROM {base} AS build\n"
        "RUN mkdir -p /out/keep /out/skip && echo k > /out/keep/k && echo s > /out/skip/s\n"
        f"FROM {base}\n"
        "COPY --parents apps/*/package.json /app/\n"
        "COPY --parents ./apps/./web/src /pivot/\n"
        "COPY --exclude=*.md --exclude=tmp conf /etc/conf/\n"
        "ADD --exclude=**/*.md apps /added/\n"
        "COPY --from=build --parents --exclude=out/skip /out /from/\n"
    )
    first = image_id(build(rootless, ctx, "-t", "flags"))
    listing = run_sh(
        rootless, "flags", "cd / && find app pivot etc/conf added from -type f | sort"
    ).split()
    assert listing == [
        "added/api/package.json",
        "added/web/package.json",
        "added/web/src/main.js",
        "app/apps/api/package.json",
        "app/apps/web/package.json",
        "etc/conf/a.conf",
        "from/out/keep/k",
        "pivot/web/src/main.js",
    ]
    # An excluded file is not part of any COPY's key: editing it keeps the cache.
    (ctx / "conf" / "b.md").write_text("edited\n")
    (ctx / "apps" / "api" / "notes.md").write_text("edited\n")
    again = build(rootless, ctx, "-t", "flags")
    assert image_id(again) == first and again.stdout.count("Using cache") == 6, again.stdout


def test_add_checksum_of_a_file_and_a_url(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    data = b"pinned content\n"
    good = hashlib.sha256(data).hexdigest()
    (ctx / "data.bin").write_bytes(data)
    server, port = serve_on_host(b"from the web\n")
    web = hashlib.sha256(b"from the web\n").hexdigest()
    url = f"http://127.0.0.1:{port}/file.txt"
    try:
        (ctx / "Containerfile").write_text(
            f"FROM {base}\n"
            f"ADD --checksum=sha256:{good} data.bin /pinned\n"
            f"ADD --checksum=sha256:{web} {url} /web.txt\n"
        )
        image_id(build(rootless, ctx, "-t", "sum"))
        assert run_sh(rootless, "sum", "cat /pinned /web.txt") == "pinned content\nfrom the web\n"

        (ctx / "data.bin").write_bytes(b"tampered\n")
        bad = hashlib.sha256(b"tampered\n").hexdigest()
        r = build(rootless, ctx, "-t", "sum2")
        assert r.returncode == 125
        assert "Containerfile:2:" in r.stderr and "data.bin" in r.stderr, r.stderr
        assert f"expected sha256:{good}" in r.stderr and f"got sha256:{bad}" in r.stderr

        (ctx / "data.bin").write_bytes(data)
        wrong = "0" * 64
        (ctx / "Containerfile").write_text(
            f"FROM {base}\nADD --checksum=sha256:{wrong} {url} /web.txt\n"
        )
        r = build(rootless, ctx, "-t", "sum2")
        assert r.returncode == 125 and url in r.stderr, r.stderr
        assert f"expected sha256:{wrong}" in r.stderr and f"got sha256:{web}" in r.stderr
    finally:
        server.shutdown()
    assert rootless("image", "inspect", "localhost/sum2").returncode != 0


def test_git_sources_are_clear_errors(rootless, base, tmp_path):
    r = rootless("build", "https://github.com/containers/buildah.git#main")
    assert r.returncode == 125
    assert "git sources are not supported" in r.stderr
    assert "git clone --branch main https://github.com/containers/buildah.git DIR" in r.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {base}\nADD git@github.com:containers/buildah.git /src\n"
    )
    r = build(rootless, ctx)
    assert r.returncode == 125 and "Containerfile:2:" in r.stderr, r.stderr
    assert "git sources are not supported" in r.stderr and "COPY DIR" in r.stderr


def wait_for(predicate, what, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cache_sharing_locked_waits_and_private_does_not(rootless, base, tmp_path):
    """Build 1 holds a locked cache until the test releases it; build 2 (locked, same id)
    must wait for it, and build 3 (private) must run meanwhile in a directory of its own."""
    mount = "--mount=type=cache,id=pkgs,target=/c"
    holder, waiter, private = (tmp_path / n for n in ("holder", "waiter", "private"))
    (holder / "ctl").mkdir(parents=True)
    (holder / "Containerfile").write_text(
        f"FROM {base}\n"
        f"RUN {mount},sharing=locked --mount=type=bind,source=ctl,target=/ctl "
        "touch /c/busy; i=0; while [ ! -e /ctl/release ] && [ $i -lt 900 ]; do "
        "sleep 0.1; i=$((i+1)); done; rm /c/busy; echo one >> /c/log\n"
    )
    waiter.mkdir()
    (waiter / "Containerfile").write_text(
        f"FROM {base}\nRUN {mount},sharing=locked test ! -e /c/busy && echo two >> /c/log\n"
    )
    private.mkdir()
    (private / "Containerfile").write_text(
        f"FROM {base}\nRUN {mount},sharing=private test ! -e /c/busy && echo three >> /c/log\n"
    )
    mounts = rootless.data_home / "rootless" / "storage" / "build-mounts"

    def cache_file(name):
        return list(mounts.glob(f"*/{name}"))

    def start(ctx, log):
        return subprocess.Popen(
            rootless.command("build", "--tls-verify=false", str(ctx)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=rootless.env,
        )

    out1, out2 = tmp_path / "out1", tmp_path / "out2"
    with open(out1, "w") as log1, open(out2, "w") as log2:
        p1 = start(holder, log1)
        p2 = None
        try:
            wait_for(lambda: cache_file("busy"), "build 1 to hold the cache")
            p2 = start(waiter, log2)
            waiting = "waiting for the cache mount pkgs"
            wait_for(lambda: waiting in out2.read_text() or p2.poll() is not None, "build 2")
            assert p2.poll() is None, out2.read_text()
            r = build(rootless, private)  # runs while build 1 still holds the cache
            assert r.returncode == 0, r.stdout + r.stderr
            assert p1.poll() is None and p2.poll() is None
            (holder / "ctl" / "release").touch()
            assert p1.wait(timeout=120) == 0, out1.read_text()
            assert p2.wait(timeout=120) == 0, out2.read_text()
        finally:
            for p in (p1, p2):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
    logs = {p.parent.name: p.read_text() for p in cache_file("log")}
    assert sorted(logs.values()) == ["one\ntwo\n", "three\n"], logs


def test_cache_mount_from_a_stage_seeds_a_new_cache(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {base} AS deps\n"
        "RUN mkdir -p /deps && echo seeded > /deps/lib.txt && chown 1000:1000 /deps/lib.txt\n"
        f"FROM {base}\n"
        "RUN --mount=type=cache,target=/c,from=deps,source=/deps "
        "cat /c/lib.txt > /out && stat -c %u /c/lib.txt >> /out && echo again >> /c/lib.txt\n"
    )
    image_id(build(rootless, ctx, "-t", "seeded"))
    assert run_sh(rootless, "seeded", "cat /out") == "seeded\n1000\n"
    image_id(build(rootless, ctx, "--no-cache", "-t", "seeded"))  # the cache is kept
    assert run_sh(rootless, "seeded", "cat /out") == "seeded\nagain\n1000\n"
