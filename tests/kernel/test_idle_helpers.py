"""The C helpers an idle detached container runs as (helpers/rootless-wait.c and
helpers/rootless-logpump.c), built here from this checkout, and the Python fallback
without them: same logs, exit codes, --rm and kill -9 guarantees."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rootless.supervise.logfile import read_log

HELPERS = Path(__file__).resolve().parents[2] / "helpers"


@pytest.fixture(scope="module")
def helper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("libexec")
    for name in ("rootless-wait", "rootless-logpump"):
        source = str(HELPERS / f"{name}.c")
        cmd = ["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(out / name), source]
        subprocess.run(cmd, check=True)
    return out


@pytest.fixture
def with_helpers(rootless, helper_dir):  # type: ignore[no-untyped-def]
    rootless.env["ROOTLESS_HELPER_DIR"] = str(helper_dir)
    yield rootless
    rootless("rm", "-af")


@pytest.fixture
def without_helpers(rootless):  # type: ignore[no-untyped-def]
    rootless.env["ROOTLESS_HELPER_DIR"] = ""
    yield rootless
    rootless("rm", "-af")


def _run_d(rootless, rootfs, *cmd, opts=()):  # type: ignore[no-untyped-def]
    r = rootless("run", "-d", "--network", "none", *opts, "--rootfs", str(rootfs), *cmd)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _monitor(rootless, cid):  # type: ignore[no-untyped-def]
    db = sqlite3.connect(rootless.data_home / "rootless" / "containers" / "containers.db")
    try:
        row = db.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()
    finally:
        db.close()
    return row[0]


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise AssertionError("no Pss")


def _wait_for(predicate, timeout=10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_idle_container_is_two_small_programs(with_helpers, busybox_rootfs):
    rootless = with_helpers
    cid = _run_d(rootless, busybox_rootfs, "sh", "-c", "echo out; echo err >&2; exec sleep 1000")
    monitor = _monitor(rootless, cid)
    _wait_for(lambda: _comm(monitor) == "rootless-logpum")  # comm is 15 characters
    (stage1,) = _children(monitor)
    assert _comm(stage1) == "rootless-wait"
    assert _pss_kb(monitor) + _pss_kb(stage1) < 4096
    _wait_for(lambda: rootless("logs", cid).stdout == "out\n")
    assert rootless("logs", cid).stderr == "err\n"
    assert rootless("stop", "-t", "0", cid).returncode == 0
    _wait_for(lambda: _gone(monitor) and _gone(stage1))
    r = rootless("inspect", "--format", "{{.State.ExitCode}}", cid)
    assert r.stdout.strip() == "137"


@pytest.mark.parametrize("helpers", ["with_helpers", "without_helpers"])
def test_exit_code_logs_and_rm(helpers, busybox_rootfs, request):
    rootless = request.getfixturevalue(helpers)
    script = "printf 'no newline'; sleep 0.2; echo; head -c 40000 /dev/zero | tr '\\0' x; exit 3"
    cid = _run_d(rootless, busybox_rootfs, "sh", "-c", script)
    assert rootless("wait", cid).stdout.strip() == "3"
    log = rootless.data_home / "rootless" / "containers" / cid / "ctr.log"
    assert [r.data for r in read_log(log)] == [b"no newline\n", b"x" * 40000]
    removed = _run_d(rootless, busybox_rootfs, "sh", "-c", "exit 4", opts=("--rm",))
    _wait_for(lambda: rootless("ps", "-aq", "--no-trunc").stdout.split() == [cid])
    assert removed != cid


@pytest.mark.parametrize("helpers", ["with_helpers", "without_helpers"])
def test_kill_9_of_the_monitor_leaves_nothing(
    helpers, busybox_rootfs, request, find_processes_with_token
):
    rootless = request.getfixturevalue(helpers)
    token = f"tok-{uuid.uuid4().hex}"
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000", opts=("-e", f"TOKEN={token}"))
    monitor = _monitor(rootless, cid)
    _wait_for(lambda: find_processes_with_token(token))
    if helpers == "with_helpers":
        _wait_for(lambda: _comm(monitor) == "rootless-logpum")
    (stage1,) = _children(monitor)
    os.kill(monitor, signal.SIGKILL)
    assert find_processes_with_token(token, wait=2.0) == []
    _wait_for(lambda: _gone(stage1))
    r = rootless("inspect", "--format", "{{.State.Status}}", cid)
    assert r.stdout.strip() == "exited"


def test_logpump_rotates_like_the_log_writer(helper_dir, tmp_path):
    """The pump alone (any parent of a writer can run it): records stay whole, files
    stay under max-size, at most max-files old ones, the exit command gets the status."""
    log = tmp_path / "ctr.log"
    status = tmp_path / "status"
    lines = [f"line {i} {'y' * (i % 50)}".encode() for i in range(400)]
    script = f"""
import os, sys
out_r, out_w = os.pipe2(0)  # inheritable: the pump gets them across exec
err_r, err_w = os.pipe2(0)
pid = os.fork()
if pid == 0:
    os.close(out_r); os.close(err_r)
    for line in {lines!r}:
        os.write(out_w, line + b"\\n")
    os.write(err_w, b"to stderr\\n")
    os._exit(7)
os.close(out_w); os.close(err_w)
os.execv({str(helper_dir / "rootless-logpump")!r}, ["rootless-logpump", {str(log)!r}, "4096",
    "2", str(pid), str(out_r), str(err_r), "-1", "-1", "--", "/bin/sh", "-c",
    'echo "$1" > {status}', "sh"])
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    assert os.WEXITSTATUS(int(status.read_text())) == 7
    files = sorted(tmp_path.glob("ctr.log*"))
    assert [f.name for f in files] == ["ctr.log", "ctr.log.1", "ctr.log.2"]
    assert all(f.stat().st_size <= 4096 for f in files)
    kept = [r.data.rstrip(b"\n") for r in read_log(log, streams=("stdout",))]
    assert kept == lines[len(lines) - len(kept) :] and len(kept) > 50
    assert [r.data for r in read_log(log, streams=("stderr",))] == [b"to stderr\n"]


def test_slirp4netns_ends_with_the_pump(with_helpers, busybox_rootfs):
    """The default network's slirp4netns stays up while the pump runs (its --exit-fd
    pipe is the pump's) and ends, with its socket directory, after the container."""
    rootless = with_helpers
    r = rootless("run", "-d", "--rootfs", str(busybox_rootfs), "sleep", "1000")
    assert r.returncode == 0, r.stderr
    monitor = _monitor(rootless, r.stdout.strip())
    _wait_for(lambda: _comm(monitor) == "rootless-logpum")
    time.sleep(0.3)  # a slirp4netns that lost its exit fd would be gone by now
    (slirp,) = [p for p in _children(monitor) if _comm(p) == "slirp4netns"]
    cmdline = Path(f"/proc/{slirp}/cmdline").read_bytes().split(b"\0")
    (api,) = [a for a in cmdline if a.startswith(b"--api-socket=")]
    socket_dir = Path(api.partition(b"=")[2].decode()).parent
    assert socket_dir.is_dir()
    assert rootless("stop", "-t", "0", r.stdout.strip()).returncode == 0
    _wait_for(lambda: _gone(monitor) and _gone(slirp) and not socket_dir.exists())


@pytest.mark.parametrize("helpers", ["with_helpers", "without_helpers"])
def test_restart_policy_goes_on_after_the_hand_over(helpers, busybox_rootfs, request):
    rootless = request.getfixturevalue(helpers)
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c", "echo run; exit 3", opts=("--restart", "on-failure:2")
    )
    monitor = _monitor(rootless, cid)
    assert rootless("wait", cid).stdout.strip() == "3"
    _wait_for(lambda: _gone(monitor))
    r = rootless("inspect", "--format", "{{.RestartCount}} {{.State.Status}}", cid)
    assert r.stdout.split() == ["2", "exited"]
    assert rootless("logs", cid).stdout == "run\n" * 3
    # one supervisor for all the runs (the record names it; exec keeps the PID)
    assert _monitor(rootless, cid) == monitor
