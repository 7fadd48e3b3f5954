"""cp, diff, top, rename, restart, attach, container prune and system df/prune/reset, for real."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time

import pytest


def _ok(r):  # type: ignore[no-untyped-def]
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def _run_d(rootless, *args):  # type: ignore[no-untyped-def]
    cid = _ok(rootless("run", "-d", *args)).stdout.strip()
    assert len(cid) == 64
    return cid


def _wait_for(predicate, timeout=10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _state(rootless, ref):  # type: ignore[no-untyped-def]
    return json.loads(_ok(rootless("inspect", ref)).stdout)[0]["State"]


@pytest.fixture
def cleanup(rootless):  # type: ignore[no-untyped-def]
    yield
    rootless("rm", "-af")


@pytest.fixture
def image(rootless, busybox_image):  # type: ignore[no-untyped-def]
    _ok(rootless("pull", "-q", "--tls-verify=false", busybox_image))
    return busybox_image


@pytest.fixture
def sentinel(tmp_path):  # type: ignore[no-untyped-def]
    """A host directory the container must never read or write through a symlink."""
    d = tmp_path / "sentinel"
    d.mkdir()
    (d / "secret").write_text("host secret\n")
    return d


def _sentinel_untouched(d) -> None:  # type: ignore[no-untyped-def]
    assert sorted(p.name for p in d.iterdir()) == ["secret"]
    assert (d / "secret").read_text() == "host secret\n"


# -- cp ----------------------------------------------------------------------------


def test_cp_in_and_out_of_a_running_image_container(rootless, image, tmp_path, cleanup):
    cid = _run_d(rootless, "--name", "box", image, "sleep", "1000")
    src = tmp_path / "in.txt"
    src.write_text("from the host\n")
    _ok(rootless("cp", str(src), "box:/tmp/in.txt"))
    r = _ok(rootless("exec", cid, "sh", "-c", "cat /tmp/in.txt; stat -c %u:%g /tmp/in.txt"))
    assert r.stdout == "from the host\n0:0\n"
    # a directory in, then into an existing directory (lands below it)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    os.symlink("sub/f", tree / "link")
    _ok(rootless("cp", str(tree), "box:/tmp"))
    r = _ok(rootless("exec", cid, "sh", "-c", "cat /tmp/tree/sub/f; readlink /tmp/tree/link"))
    assert r.stdout == "deep\nsub/f\n"
    _ok(rootless("cp", str(tree), "box:/opt"))  # a missing destination: the copy is named so
    assert _ok(rootless("exec", cid, "cat", "/opt/sub/f")).stdout == "deep\n"
    # out: a file written inside, the image's file owned by 1000, and a directory
    _ok(rootless("exec", cid, "sh", "-c", "echo made inside > /made"))
    _ok(rootless("cp", "box:/made", str(tmp_path / "made")))
    assert (tmp_path / "made").read_text() == "made inside\n"
    out = tmp_path / "out"
    out.mkdir()
    _ok(rootless("cp", f"{cid[:12]}:/home/app", str(out)))
    assert (out / "app" / "note").read_text() == "app's file\n"
    assert (out / "app" / "note").stat().st_uid == os.getuid()
    _ok(rootless("cp", "box:/tmp/tree/.", str(out / "contents")))
    assert sorted(p.name for p in (out / "contents").iterdir()) == ["link", "sub"]
    assert os.readlink(out / "contents" / "link") == "sub/f"


def test_cp_into_a_subordinate_owned_directory_with_archive_owner(
    rootless, image, tmp_path, cleanup
):
    _run_d(rootless, "--name", "app", "-u", "app", image, "sleep", "1000")
    src = tmp_path / "f"
    src.write_text("x\n")
    _ok(rootless("cp", str(src), "app:/home/app/f"))
    r = _ok(rootless("exec", "app", "stat", "-c", "%u:%g", "/home/app/f"))
    assert r.stdout.strip() == "1000:1000"
    _ok(rootless("cp", "--archive=false", str(src), "app:/home/app/g"))
    r = _ok(rootless("exec", "app", "stat", "-c", "%u", "/home/app/g"))
    assert r.stdout.strip() == "0"


def test_cp_with_a_stopped_image_container(rootless, image, tmp_path, cleanup):
    _ok(rootless("run", "--name", "done", image, "sh", "-c", "echo kept > /kept"))
    _ok(rootless("cp", "done:/kept", str(tmp_path / "kept")))
    assert (tmp_path / "kept").read_text() == "kept\n"
    (tmp_path / "new").write_text("new file\n")
    _ok(rootless("cp", str(tmp_path / "new"), "done:/etc/"))
    _ok(rootless("start", "done"))  # runs the command again: still sees what cp put there
    _ok(rootless("wait", "done"))
    _ok(rootless("cp", "done:/etc/new", str(tmp_path / "back")))
    assert (tmp_path / "back").read_text() == "new file\n"
    # the writable layer holds it, the image's layers do not
    r = _ok(rootless("diff", "done"))
    assert "A /etc/new" in r.stdout.splitlines()


def test_cp_rootfs_container_and_tar_streams(rootless, busybox_rootfs, tmp_path, cleanup):
    cid = _run_d(rootless, "--rootfs", str(busybox_rootfs), "sleep", "1000")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"streamed\n"
        info = tarfile.TarInfo("d/streamed")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    r = subprocess.run(
        rootless.command("cp", "-", f"{cid}:/tmp"),
        input=buf.getvalue(),
        env=rootless.env,
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert _ok(rootless("exec", cid, "cat", "/tmp/d/streamed")).stdout == "streamed\n"
    r = subprocess.run(
        rootless.command("cp", f"{cid}:/tmp/d", "-"),
        env=rootless.env,
        capture_output=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        assert tar.getnames() == ["d", "d/streamed"]


def test_cp_errors(rootless, image, tmp_path, cleanup):
    _run_d(rootless, "--name", "e", image, "sleep", "1000")
    r = rootless("cp", "e:/nonexistent", str(tmp_path / "x"))
    assert r.returncode == 125
    assert '"/nonexistent" could not be found on container e' in r.stderr
    assert not (tmp_path / "x").exists()
    r = rootless("cp", str(tmp_path / "nothing"), "e:/tmp")
    assert r.returncode == 125 and "could not be found on the host" in r.stderr
    r = rootless("cp", str(tmp_path), str(tmp_path / "y"))
    assert r.returncode == 125 and "CONTAINER:PATH" in r.stderr


@pytest.mark.parametrize("running", [True, False])
def test_cp_never_leaves_the_container_through_symlinks(
    rootless, image, tmp_path, sentinel, cleanup, running
):
    """The container swaps paths for links to /, to ../../.. and to the host's sentinel
    directory (which it also has a copy of, with its own secret)."""
    hostile = (
        f"mkdir -p {sentinel} /d; echo container secret > {sentinel}/secret;"
        f" ln -s / /rootlink; ln -s ../../../../../../../../{sentinel} /uplink;"
        f" ln -s {sentinel}/secret /secretlink; ln -s {sentinel} /d/abs"
    )
    if running:
        _run_d(rootless, "--name", "evil", image, "sh", "-c", hostile + "; sleep 1000")
        _wait_for(lambda: rootless("exec", "evil", "test", "-L", "/d/abs").returncode == 0)
    else:
        _ok(rootless("run", "--name", "evil", image, "sh", "-c", hostile))
    payload = tmp_path / "payload"
    payload.write_text("payload\n")
    # reads: the links resolve inside the container, never to the host's secret
    for i, src in enumerate(
        ("/secretlink", "/uplink/secret", "/d/abs/secret", f"/rootlink{sentinel}/secret")
    ):
        out = tmp_path / f"read{i}"
        _ok(rootless("cp", f"evil:{src}", str(out)))
        text = out.read_text() if not out.is_symlink() else ""
        assert "host secret" not in text
        if src != "/secretlink":  # that one is copied as the link it is
            assert text == "container secret\n"
    _ok(rootless("cp", f"evil:/rootlink{sentinel}/", str(tmp_path / "dir")))
    assert (tmp_path / "dir" / "secret").read_text() == "container secret\n"
    # writes: each lands in the container's copy of the directory, none on the host
    for i, dest in enumerate((f"/rootlink{sentinel}/", "/uplink/", "/d/abs/")):
        payload.write_text(f"payload {i}\n")
        _ok(rootless("cp", str(payload), f"evil:{dest}p{i}"))
        _sentinel_untouched(sentinel)
        _ok(rootless("cp", f"evil:{sentinel}/p{i}", str(tmp_path / f"back{i}")))
        assert (tmp_path / f"back{i}").read_text() == f"payload {i}\n"
    # the top-level link is followed inside the container for a destination that exists
    _ok(rootless("cp", str(payload), "evil:/secretlink"))
    _sentinel_untouched(sentinel)
    _ok(rootless("cp", f"evil:{sentinel}/secret", str(tmp_path / "overwritten")))
    assert (tmp_path / "overwritten").read_text() == "payload 2\n"


def test_cp_out_never_writes_through_host_symlinks_it_made(rootless, image, tmp_path, cleanup):
    """A directory copied out that holds a link to / and a file beside it stays in DEST."""
    sentinel = tmp_path / "victim"
    sentinel.mkdir()
    _run_d(
        rootless,
        "--name",
        "c",
        image,
        "sh",
        "-c",
        f"mkdir /x; ln -s {sentinel} /x/link; echo hi > /x/file; sleep 1000",
    )
    _wait_for(lambda: rootless("exec", "c", "test", "-f", "/x/file").returncode == 0)
    out = tmp_path / "out"
    _ok(rootless("cp", "c:/x", str(out)))
    assert os.readlink(out / "link") == str(sentinel)
    assert (out / "file").read_text() == "hi\n"
    assert list(sentinel.iterdir()) == []
