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


# -- diff, top, rename, restart, attach, prune -----------------------------------


def test_diff_lists_added_changed_and_deleted(rootless, image, cleanup):
    _ok(
        rootless(
            "run",
            "--name",
            "d",
            image,
            "sh",
            "-c",
            "echo new > /etc/added; echo more >> /home/app/note; rm /bin/true; mkdir /newdir;"
            " touch /newdir/f",
        )
    )
    lines = _ok(rootless("diff", "d")).stdout.splitlines()
    for want in (
        "C /etc",
        "A /etc/added",
        "C /home",
        "C /home/app",
        "C /home/app/note",
        "C /bin",
        "D /bin/true",
        "A /newdir",
        "A /newdir/f",
    ):
        assert want in lines, lines
    assert lines == sorted(lines, key=lambda line: line[2:])
    data = json.loads(_ok(rootless("diff", "--format", "json", "d")).stdout)
    assert "/etc/added" in data["added"] and "/bin/true" in data["deleted"]
    assert "/home/app/note" in data["changed"]
    assert not any(p.startswith("/etc/motd") for p in data.get("deleted", []))  # in a layer


def test_top_shows_the_container_processes(rootless, image, cleanup):
    cid = _run_d(rootless, "--name", "t", image, "sh", "-c", "sleep 1000 & exec sleep 999")
    _wait_for(lambda: len(_ok(rootless("top", "t")).stdout.splitlines()) == 3)
    lines = _ok(rootless("top", cid)).stdout.splitlines()
    assert lines[0].split() == ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
    rows = sorted(line.split() for line in lines[1:])
    assert [(r[0], r[1], r[2], r[-1]) for r in rows] == [
        ("root", "1", "0", "sleep"),
        ("root", "2", "1", "sleep"),
    ]
    lines = _ok(rootless("top", "t", "pid,args", "huser")).stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND", "HUSER"]
    assert ["1", "sleep", "999", str(os.getuid())] in [line.split() for line in lines[1:]]
    r = rootless("top", "t", "bogus")
    assert r.returncode == 125 and "unknown top descriptor" in r.stderr


def test_top_maps_users_and_sees_exec(rootless, image, cleanup):
    _run_d(rootless, "--name", "u", "-u", "app", image, "sleep", "1000")
    proc = subprocess.Popen(
        rootless.command("exec", "u", "sleep", "777"), env=rootless.env, stdout=subprocess.DEVNULL
    )
    try:

        def with_exec() -> list[list[str]] | None:
            # until the exec'd command runs (before, its joining process may show)
            out = _ok(rootless("top", "u", "user", "uid", "args")).stdout
            rows = [line.split() for line in out.splitlines()[1:]]
            return rows if ["app", "1000", "sleep", "777"] in rows else None

        rows = _wait_for(with_exec)
        assert ["app", "1000", "sleep", "1000"] in rows
    finally:
        proc.kill()
        proc.wait()


def test_rename(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, "--name", "old", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    _run_d(rootless, "--name", "other", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    _ok(rootless("rename", "old", "new"))
    assert json.loads(_ok(rootless("inspect", cid)).stdout)[0]["Name"] == "new"
    assert rootless("inspect", "old").returncode != 0
    r = rootless("rename", "new", "other")
    assert r.returncode == 125 and 'the container name "other" is already in use' in r.stderr
    r = rootless("rename", "new", "bad/name")
    assert r.returncode == 125 and "invalid container name" in r.stderr
    _ok(rootless("container", "rename", "new", "newer"))
    assert _ok(rootless("exec", "newer", "true"))  # still running, under its new name


def test_restart_stops_and_starts(rootless, busybox_rootfs, cleanup):
    _run_d(rootless, "--name", "r", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    pid_before = _state(rootless, "r")["Pid"]
    r = _ok(rootless("restart", "-t", "0", "r"))
    assert r.stdout.split() == ["r"]
    state = _state(rootless, "r")
    assert state["Status"] == "running" and state["Pid"] != pid_before
    _ok(rootless("stop", "-t", "0", "r"))
    _ok(rootless("container", "restart", "r"))  # a stopped container just starts
    assert _state(rootless, "r")["Status"] == "running"


def test_attach_follows_output_and_returns_the_exit_code(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless,
        "--rootfs",
        str(busybox_rootfs),
        "sh",
        "-c",
        "echo before; while [ ! -e /tmp/go ]; do echo tick; sleep 0.05; done;"
        " echo after; echo err >&2; exit 3",
    )
    _wait_for(lambda: "before" in rootless("logs", cid).stdout)
    proc = subprocess.Popen(
        rootless.command("attach", "--no-stdin", cid),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "tick\n"  # attached: what follows reaches it
    _ok(rootless("exec", cid, "touch", "/tmp/go"))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 3
    lines = out.splitlines()
    assert lines[-1] == "after" and set(lines[:-1]) <= {"tick"} and err == "err\n"
    r = rootless("attach", cid)
    assert r.returncode == 125 and "not running" in r.stderr


def test_container_prune_removes_only_exited(rootless, busybox_rootfs, cleanup):
    done = _ok(rootless("create", "--rootfs", str(busybox_rootfs), "true")).stdout.strip()
    _ok(rootless("start", "-a", done))
    created = _ok(rootless("create", "--rootfs", str(busybox_rootfs), "true")).stdout.strip()
    running = _run_d(rootless, "--rootfs", str(busybox_rootfs), "sleep", "1000")
    r = _ok(rootless("container", "prune", "-f"))
    assert r.stdout.split() == [done]
    left = {c["ID"] for c in json.loads(_ok(rootless("ps", "-a", "--format", "json")).stdout)}
    assert left == {created[:12], running[:12]}
    r = rootless("container", "prune", input="n\n")  # asks first; "n" keeps everything
    assert r.returncode == 0 and "Are you sure" in r.stderr and r.stdout == ""


def test_container_group_dispatches(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, "--name", "g", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    assert _ok(rootless("container", "ls", "-q")).stdout.split() == [cid[:12]]
    assert json.loads(_ok(rootless("container", "inspect", "g")).stdout)[0]["Id"] == cid
    assert _ok(rootless("container", "exec", "g", "echo", "hi")).stdout == "hi\n"
    _ok(rootless("container", "rm", "-f", "g"))
    assert _ok(rootless("container", "ps", "-aq")).stdout == ""


# -- system --------------------------------------------------------------------------


def test_system_df_prune_and_reset(rootless, image, busybox_rootfs, cleanup):
    _ok(rootless("run", "--name", "big", image, "sh", "-c", "head -c 300000 /dev/zero > /blob"))
    _run_d(rootless, "--name", "up", image, "sleep", "1000")
    rows = {
        r["Type"]: r for r in json.loads(_ok(rootless("system", "df", "--format", "json")).stdout)
    }
    assert (rows["Images"]["Total"], rows["Images"]["Active"]) == (1, 1)
    assert rows["Images"]["RawSize"] > 1_000_000  # busybox itself
    assert (rows["Containers"]["Total"], rows["Containers"]["Active"]) == (2, 1)
    assert rows["Containers"]["RawReclaimable"] >= 300_000  # the exited one's /blob
    table = _ok(rootless("system", "df")).stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert [line.split()[0] for line in table[1:]] == ["Images", "Containers", "Local"]
    r = _ok(rootless("system", "prune", "-f"))
    assert r.stdout.splitlines()[:2] == ["Deleted Containers", _state_id(rootless, "up", r)]
    # reset: everything goes, running containers included, with no process left
    _ok(rootless("system", "reset", "-f"))
    assert not (rootless.data_home / "rootless").exists()
    assert _ok(rootless("ps", "-aq")).stdout == ""
    assert _ok(rootless("images", "-q")).stdout == ""
    assert find_sleepers(rootless) == []


def _state_id(rootless, keep, r):  # type: ignore[no-untyped-def]
    """The one exited container's ID, found as the one that is not ``keep``."""
    assert rootless("inspect", "big").returncode != 0
    ids = r.stdout.splitlines()[1]
    assert len(ids) == 64
    return ids


def find_sleepers(rootless):  # type: ignore[no-untyped-def]
    from tests.conftest import find_processes_with_token

    return find_processes_with_token(str(rootless.data_home), wait=2)
