"""`rootless build` for real, as the unprivileged user, from the local registry's busybox."""

from __future__ import annotations

import json
import os

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


def inspect(rootless, name):
    r = rootless("image", "inspect", name)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


MULTI_STAGE = """\
FROM {base} AS build
WORKDIR /src
COPY hello.txt .
RUN tr a-z A-Z < hello.txt > /out.txt && echo built >> /out.txt
RUN echo scratch-only > /junk

FROM {base}
ENV GREETING=hi
ENV OTHER=${{GREETING}}-there SAME=${{GREETING}}
COPY --from=build /out.txt /app/out.txt
WORKDIR /app
USER 1000
ENTRYPOINT ["sh", "-c", "echo $GREETING $OTHER $SAME; id -u; pwd; cat out.txt; echo args: $0 $1", \\
    "first"]
CMD ["second"]
"""


def test_multi_stage_build_runs_and_combines_entrypoint_and_cmd(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text("hello\n")
    (ctx / "Containerfile").write_text(MULTI_STAGE.format(base=base))
    r = build(rootless, ctx, "-t", "app:1")
    iid = image_id(r)
    assert "[1/2] STEP 1/5: FROM" in r.stdout and "[2/2] STEP 8/8: CMD" in r.stdout
    assert "COMMIT localhost/app:1" in r.stdout
    r = rootless("run", "--rm", "localhost/app:1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "hi hi-there hi",
        "1000",
        "/app",
        "HELLO",
        "built",
        "args: first second",
    ]
    # the slim stage has nothing of the build stage but what it copied
    r = rootless("run", "--rm", "--entrypoint", "sh", "localhost/app:1", "-c", "ls /junk /src")
    assert r.returncode != 0
    cfg = inspect(rootless, "localhost/app:1")
    assert cfg["Id"].endswith(iid) or iid in json.dumps(cfg)


def test_rebuild_uses_the_cache_and_a_changed_file_reruns_from_its_copy(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    counter = tmp_path / "runs"
    counter.mkdir()
    os.chmod(counter, 0o777)
    (ctx / "a.txt").write_text("one\n")
    (ctx / "b.txt").write_text("bee\n")
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN date +%s%N > /first\n"
        "COPY a.txt /a.txt\n"
        "RUN cat /a.txt > /copied; date +%s%N >> /copied\n"
        "COPY b.txt /b.txt\n"
    )
    first = image_id(build(rootless, ctx, "-t", "cached"))
    r = build(rootless, ctx, "-t", "cached")
    assert image_id(r) == first
    assert r.stdout.count("--> Using cache") == 4
    (ctx / "a.txt").write_text("two\n")
    r = build(rootless, ctx, "-t", "cached")
    third = image_id(r)
    assert third != first
    assert r.stdout.count("--> Using cache") == 1  # only the RUN before the changed COPY
    out = rootless("run", "--rm", "localhost/cached", "cat", "/copied").stdout
    assert out.startswith("two\n")
    r = build(rootless, ctx, "--no-cache", "-t", "cached")
    assert "Using cache" not in r.stdout and image_id(r) != third


def test_dockerignore_and_symlinks_stay_in_the_context(rootless, base, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret\n")
    ctx = tmp_path / "ctx"
    (ctx / "keep").mkdir(parents=True)
    (ctx / "keep" / "yes.txt").write_text("yes\n")
    (ctx / "keep" / "no.log").write_text("no\n")
    (ctx / "keep" / "out").symlink_to(secret)  # inside a copied dir: copied as a link
    (ctx / "escape").symlink_to("../secret.txt")  # a top-level source: resolved inside
    (ctx / ".dockerignore").write_text("**/*.log\n")
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY keep /keep/\n")
    assert image_id(build(rootless, ctx, "-t", "ign"))
    r = rootless(
        "run", "--rm", "ign", "sh", "-c", "ls /keep; readlink /keep/out; cat /keep/out || true"
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["out", "yes.txt"] and lines[2] == str(secret)
    assert "host secret" not in r.stdout
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY escape /x\n")
    r = build(rootless, ctx, "-t", "esc")
    assert r.returncode != 0
    assert "escape" in r.stderr and "Dockerfile:2" in r.stderr
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY keep/no.log /x\n")
    r = build(rootless, ctx)
    assert r.returncode != 0 and "no.log" in r.stderr


def test_failing_run_names_the_line_and_tags_nothing(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Containerfile").write_text(f"FROM {base}\nRUN echo before\nRUN exit 3\n")
    r = build(rootless, ctx, "-t", "broken")
    assert r.returncode != 0
    assert "Containerfile:3" in r.stderr and "status 3" in r.stderr
    assert rootless("image", "inspect", "localhost/broken").returncode != 0


def test_deleted_file_is_hidden_and_owners_are_kept(rootless, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x\n")
    (ctx / "Containerfile").write_text(
        f"FROM {base}\n"
        "RUN echo temp > /tmp/gone && mkdir /data && chown 1000:1000 /data\n"
        "COPY --chown=33:44 --chmod=640 f /data/f\n"
        "RUN rm /tmp/gone /bin/ls\n"
    )
    image_id(build(rootless, ctx, "-t", "del", "--network", "none"))
    r = rootless(
        "run",
        "--rm",
        "del",
        "sh",
        "-c",
        "ls /tmp/gone /bin/ls 2>&1; stat -c '%u:%g %a' /data /data/f",
    )
    assert "No such file" in r.stdout and r.stdout.count("No such file") == 2
    assert r.stdout.splitlines()[-2:] == ["1000:1000 755", "33:44 640"]


def test_independent_stages_build_at_the_same_time_and_unneeded_ones_are_skipped(
    rootless, base, tmp_path
):
    import socket

    with socket.socket() as s:  # a free port for the two stages to meet on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # "listen" only finishes once "talk" has connected: both RUNs must be running at once.
    (ctx / "Containerfile").write_text(
        f"FROM {base} AS listen\n"
        # Under load a connection may carry nothing: listen until data came, and keep
        # talking until the listener is gone.
        f"RUN timeout 60 sh -c 'until nc -l -p {port} > /got && test -s /got; do :; done'\n"
        f"FROM {base} AS talk\n"
        "RUN sent=0; for i in $(seq 300); do "
        f"if echo hello | nc -w 2 127.0.0.1 {port}; then sent=1; "
        "elif [ $sent = 1 ]; then break; fi; sleep 0.2; done; true\n"
        f"FROM {base} AS unused\n"
        "RUN exit 9\n"
        "FROM scratch\n"
        "COPY --from=listen /got /got\n"
        "COPY --from=talk /bin/busybox /bin/cat\n"
        'ENTRYPOINT ["/bin/cat", "/got"]\n'
    )
    r = build(rootless, ctx, "-t", "both")
    image_id(r)
    assert "exit 9" not in r.stdout
    r = rootless("run", "--rm", "both")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"


def test_args_heredocs_add_tar_target_and_iidfile(rootless, base, tmp_path):
    import tarfile

    ctx = tmp_path / "ctx"
    (ctx / "tree" / "sub").mkdir(parents=True)
    (ctx / "tree" / "sub" / "f.txt").write_text("in the tar\n")
    with tarfile.open(ctx / "files.tar.gz", "w:gz") as tar:
        tar.add(ctx / "tree", arcname="tree")
    (ctx / "Containerfile").write_text(
        f"FROM {base} AS first\n"
        "ARG WHO=nobody\n"
        'RUN echo "$WHO" > /who\n'
        "RUN <<EOF\n"
        "echo line one > /doc\n"
        "echo line two >> /doc\n"
        "EOF\n"
        "ADD files.tar.gz /unpacked/\n"
        "COPY <<conf.txt /etc/\n"
        "setting=$WHO\n"
        "conf.txt\n"
        "FROM first AS second\n"
        "RUN exit 4\n"
    )
    iid = tmp_path / "iid"
    r = build(rootless, ctx, "--target", "first", "--build-arg", "WHO=me", "--iidfile", str(iid))
    first = image_id(r)
    assert iid.read_text() == f"sha256:{first}"
    script = "cat /who /doc /unpacked/tree/sub/f.txt /etc/conf.txt"
    r = rootless("run", "--rm", first, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "me\nline one\nline two\nin the tar\nsetting=me\n"
    # another ARG value reruns the RUN that sees it
    r = build(rootless, ctx, "--target", "first", "--build-arg", "WHO=you")
    assert image_id(r) != first
    assert "Using cache" not in r.stdout.split("STEP 3/")[1].split("STEP 4/")[0]


def test_context_from_stdin(rootless, base, tmp_path):
    import io
    import subprocess
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f'FROM {base}\nCOPY msg /msg\nCMD ["cat", "/msg"]\n'.encode()
        for name, content in (("Containerfile", data), ("msg", b"from stdin\n")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    r = subprocess.run(
        rootless.command("build", "-q", "-t", "stdin", "-"),
        input=buf.getvalue(),
        capture_output=True,
        env=rootless.env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.decode().split()) == 1  # -q: the image ID only
    assert rootless("run", "--rm", "stdin").stdout == "from stdin\n"
