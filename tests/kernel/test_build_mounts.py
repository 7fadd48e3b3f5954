"""`rootless build`: RUN --mount, secrets, --squash, the copy storage driver, and errors."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

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


def layer_members(rootless, name, tmp_path):
    """{path: content or None} of every layer of image ``name``, via save."""
    out = tmp_path / "saved.tar"
    r = rootless("save", "-o", str(out), name)
    assert r.returncode == 0, r.stderr
    layers = []
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        for path in manifest["Layers"]:
            data = tar.extractfile(path).read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                layers.append(
                    {
                        m.name: layer.extractfile(m).read() if m.isfile() else None
                        for m in layer.getmembers()
                    }
                )
    out.unlink()
    return layers


def test_run_mounts_bind_cache_tmpfs_and_secret(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "conf").mkdir(parents=True)
    (ctx / "conf" / "a.txt").write_text("from the context\n")
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value\n")
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN --mount=type=bind,source=conf,target=/mnt/conf "
        "--mount=type=tmpfs,target=/scratch "
        "--mount=type=secret,id=tok "
        "--mount=type=secret,id=absent "
        "--mount=type=cache,target=/var/cache/c "
        "cat /mnt/conf/a.txt > /bound; "
        "echo x > /scratch/x && grep -q tmpfs /proc/mounts; "
        "stat -c '%a %u' /run/secrets/tok >> /bound; "
        "cut -c1-3 /run/secrets/tok >> /bound; "
        "test -e /run/secrets/absent || echo no-absent >> /bound; "
        "echo run >> /var/cache/c/count; "
        "(touch /mnt/conf/w 2>/dev/null && echo wrote) || echo read-only >> /bound\n"
        "RUN --mount=type=bind,source=conf,target=/rw,rw echo changed > /rw/a.txt; "
        "cat /rw/a.txt > /rw-saw\n"
    )
    r = build(rootless, ctx, "-t", "mnt", "--secret", f"id=tok,src={secret}")
    image_id(r)
    assert "s3cr3t-value" not in r.stdout + r.stderr
    script = "cat /bound /rw-saw; ls -d /mnt /scratch /run/secrets /var/cache/c 2>&1"
    run = rootless("run", "--rm", "mnt", "sh", "-c", script)
    assert run.returncode == 0 or run.stdout, run.stderr
    lines = run.stdout.splitlines()
    assert lines[:6] == [
        "from the context",
        "400 0",
        "s3c",
        "no-absent",
        "read-only",
        "changed",
    ]
    # mount points the image lacked are not in it; the context is untouched
    assert lines[6:] and all("No such file" in line for line in lines[6:])
    assert (ctx / "conf" / "a.txt").read_text() == "from the context\n"
    assert not (ctx / "conf" / "w").exists()
    # no layer carries the secret or a mount point
    for layer in layer_members(rootless, "localhost/mnt", tmp_path):
        for name, content in layer.items():
            assert not name.startswith(("run/secrets", "mnt", "scratch", "var/cache/c")), name
            assert content is None or b"s3cr3t" not in content

    # an unchanged rebuild runs no RUN (the cache mount's counter below says so too)
    r = build(rootless, ctx, "-t", "mnt", "--secret", f"id=tok,src={secret}")
    image_id(r)
    assert r.stdout.count("Using cache") == 2
    # a changed bind source reruns the RUN; the cache mount keeps its content
    (ctx / "conf" / "a.txt").write_text("changed in the context\n")
    r = build(rootless, ctx, "-t", "mnt", "--secret", f"id=tok,src={secret}")
    image_id(r)
    assert r.stdout.count("Using cache") == 0
    (ctx / "Containerfile").write_text(
        f"FROM {base}\nRUN --mount=type=cache,target=/var/cache/c cp /var/cache/c/count /count\n"
    )
    image_id(build(rootless, ctx, "-t", "count"))
    assert rootless("run", "--rm", "count", "cat", "/count").stdout == "run\nrun\n"


def test_required_secret_missing_fails_and_tags_nothing(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(
        f"FROM {base}\nRUN --mount=type=secret,id=key,required=true cat /run/secrets/key\n"
    )
    r = build(rootless, ctx, "-t", "nosecret")
    assert r.returncode != 0
    assert "Containerfile:2" in r.stderr and "secret 'key' is required" in r.stderr
    assert rootless("image", "inspect", "localhost/nosecret").returncode != 0


SQUASHED = """\
FROM {base}
RUN echo one > /one && rm /bin/ls
RUN echo two > /two
ENV STEP=done
RUN rm /one
"""


def test_squash_and_squash_all(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(SQUASHED.format(base=base))
    plain = json.loads(rootless("image", "inspect", base).stdout)[0]
    base_layers = len(plain["RootFS"]["Layers"])
    image_id(build(rootless, ctx, "-t", "sq", "--squash"))
    info = json.loads(rootless("image", "inspect", "localhost/sq").stdout)[0]
    assert info["RootFS"]["Layers"][:base_layers] == plain["RootFS"]["Layers"]
    assert len(info["RootFS"]["Layers"]) == base_layers + 1
    assert "STEP=done" in info["Config"]["Env"]
    script = "cat /two; ls /one /bin/ls 2>&1 | grep -c 'No such file'"
    r = rootless("run", "--rm", "sq", "sh", "-c", script)
    assert r.stdout == "two\n2\n", r.stderr
    # the squashed layer holds the new file and a whiteout for ls, not /one
    top = layer_members(rootless, "localhost/sq", tmp_path)[-1]
    assert "two" in top and "bin/.wh.ls" in top and "one" not in top

    image_id(build(rootless, ctx, "-t", "sqall", "--squash-all"))
    info = json.loads(rootless("image", "inspect", "localhost/sqall").stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 1
    r = rootless("run", "--rm", "sqall", "sh", "-c", script + "; cat /home/app/note")
    assert r.stdout == "two\n2\napp's file\n", r.stderr
    assert "squashed all layers" in rootless("history", "--no-trunc", "localhost/sqall").stdout


COPY_DRIVER = """\
FROM {base} AS build
RUN mkdir /out && echo built > /out/a && echo temp > /out/b
RUN rm /out/b && echo more >> /out/a && rm /etc/passwd
COPY f.txt /out/
FROM {base}
COPY --from=build /out /app
RUN --mount=type=bind,from=build,source=/out,target=/src cat /src/a > /app/seen
RUN rm /app/f.txt
"""


def test_build_on_the_copy_driver(rootless, base, tmp_path):
    rootless.env["ROOTLESS_STORAGE_DRIVER"] = "copy"
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("file\n")
    (ctx / "Containerfile").write_text(COPY_DRIVER.format(base=base))
    r = build(rootless, ctx, "-t", "copied")
    first = image_id(r)
    script = "ls /app; cat /app/a /app/seen; ls /etc/passwd"
    r = rootless("run", "--rm", "copied", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "a\nseen\nbuilt\nmore\nbuilt\nmore\n/etc/passwd\n"
    # each layer holds only its step's change, deletions as whiteouts
    layers = layer_members(rootless, "localhost/copied", tmp_path)
    assert set(layers[-1]) <= {"app", "app/.wh.f.txt"}
    assert "app/seen" in layers[-2] and "etc" not in layers[-2]
    r = build(rootless, ctx, "-t", "copied")
    assert image_id(r) == first and r.stdout.count("Using cache") == 6
    (ctx / "f.txt").write_text("other\n")
    r = build(rootless, ctx, "-t", "copied")
    assert image_id(r) != first and r.stdout.count("Using cache") == 2
    r = build(rootless, ctx, "-t", "copiedsq", "--squash")
    image_id(r)
    r = rootless("run", "--rm", "copiedsq", "sh", "-c", "ls /app")
    assert r.stdout == "a\nseen\n"


@pytest.mark.parametrize(
    ("containerfile", "flags", "message"),
    [
        ("FROM {base}\nFROBNICATE x\n", (), "Containerfile:2"),
        ("FROM {base}\nCOPY missing.txt /\n", (), "missing.txt"),
        ("FROM {base}\nCOPY ../outside /\n", (), "outside"),
        ("FROM {base}\nRUN true\nRUN exit 7\n", (), "Containerfile:3: RUN exit 7"),
        ("FROM {base}\nCOPY --from=Builder /x /x\n", (), "--from=Builder: no stage"),
        ("FROM {base} AS one\nRUN true\n", ("--target", "two"), "target stage 'two'"),
        ("FROM {base}\nRUN --mount=type=bind,source=nothere,target=/x true\n", (), "nothere"),
    ],
)
def test_errors_are_clear_and_tag_nothing(rootless, base, tmp_path, containerfile, flags, message):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "outside").write_text("no\n")
    (ctx / "Containerfile").write_text(containerfile.format(base=base))
    r = build(rootless, ctx, "-t", "failed", *flags)
    assert r.returncode != 0
    assert message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert rootless("image", "inspect", "localhost/failed").returncode != 0
