"""Detached containers under their monitor: run -d, ps, logs, exec, stop, kill, wait, rm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest
from conftest import run_in_pty


def _run_d(rootless, rootfs, *cmd, opts=()):  # type: ignore[no-untyped-def]
    r = rootless("run", "-d", *opts, "--rootfs", str(rootfs), *cmd)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    return cid


def _ps(rootless, *args):  # type: ignore[no-untyped-def]
    r = rootless("ps", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _wait_for(predicate, timeout=10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.fixture
def cleanup(rootless):  # type: ignore[no-untyped-def]
    yield
    rootless("rm", "-af")


def test_detached_survives_the_cli_and_shows_in_ps(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000", opts=("--name", "sleeper"))
    rows = _ps(rootless)
    assert [(r["ID"], r["Names"], r["State"]) for r in rows] == [(cid[:12], "sleeper", "running")]
    assert rows[0]["Status"].startswith("Up")
    assert rootless("ps", "-q").stdout.split() == [cid[:12]]
    assert rootless("ps", "-q", "--no-trunc").stdout.split() == [cid]


def test_logs_and_follow(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "echo out; echo err >&2; sleep 0.5; echo later; sleep 1000",
    )
    _wait_for(lambda: "later" in rootless("logs", cid).stdout)
    r = rootless("logs", cid)
    assert r.stdout.splitlines() == ["out", "later"]
    assert r.stderr.splitlines() == ["err"]
    r = rootless("logs", "--tail", "1", cid)
    assert r.stdout.splitlines() == ["later"]
    r = rootless("logs", "-t", cid)
    assert r.stdout.splitlines()[0].endswith(" out") and r.stdout[:2] == "20"
    follow = subprocess.Popen(
        rootless.command("logs", "-f", cid),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert rootless("exec", cid, "sh", "-c", "echo appended > /proc/1/fd/1").returncode == 0
        lines = []
        while "appended" not in lines:
            lines.append(follow.stdout.readline().strip())  # type: ignore[union-attr]
        assert lines[:2] == ["out", "later"]
    finally:
        follow.kill()
        follow.wait()


def test_exec_shares_pid_namespace_and_filesystem(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sh", "-c", "echo hi > /tmp/mark; sleep 1000")
    _wait_for(lambda: rootless("exec", cid, "cat", "/tmp/mark").stdout == "hi\n")
    r = rootless("exec", cid, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo; id -u; echo $HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sleep 1000 ", "0", "/root"]  # sh exec'd its last command
    r = rootless(
        "exec", "-u", "app", "-w", "/tmp", "-e", "X=1", cid, "sh", "-c", "id -u; pwd; echo $X"
    )
    assert r.stdout.split() == ["1000", "/tmp", "1"], r.stderr
    assert rootless("exec", cid, "sh", "-c", "exit 7").returncode == 7
    assert rootless("exec", cid, "nope").returncode == 127
    assert rootless("exec", "-i", cid, "cat", input="piped").stdout == "piped"


def test_stop_of_a_process_that_traps_sigterm_is_prompt(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c",
        "trap 'exit 0' TERM; echo trapped; while :; do sleep 0.1; done",
    )  # fmt: skip
    _wait_for(lambda: "trapped" in rootless("logs", cid).stdout)  # PID 1 ignores it before
    began = time.monotonic()
    r = rootless("stop", cid)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - began < 5
    row = _ps(rootless, "-a")[0]
    assert row["State"] == "exited" and row["ExitCode"] == 0


def test_stop_of_a_process_that_ignores_sigterm_waits_then_kills(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000")
    began = time.monotonic()
    r = rootless("stop", "-t", "1", cid)
    took = time.monotonic() - began
    assert r.returncode == 0, r.stderr
    assert 1 <= took < 6
    row = _ps(rootless, "-a")[0]
    assert row["State"] == "exited" and row["ExitCode"] == 137


def test_kill_delivers_the_signal(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; echo trapped; while :; do sleep 0.1; done",
    )
    _wait_for(lambda: "trapped" in rootless("logs", cid).stdout)
    assert rootless("kill", "-s", "USR1", cid).returncode == 0
    _wait_for(lambda: "got-usr1" in rootless("logs", cid).stdout)


def test_wait_returns_the_exit_code(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sh", "-c", "sleep 0.3; exit 5")
    r = rootless("wait", cid)
    assert r.returncode == 0 and r.stdout.strip() == "5"


def test_monitor_sigkill_leaves_nothing(
    rootless, busybox_rootfs, find_processes_with_token, cleanup
):
    token = f"tok-{uuid.uuid4().hex}"
    cid = _run_d(
        rootless,
        busybox_rootfs,
        "sh",
        "-c",
        "sleep 1000 & sleep 1001",
        opts=("-e", f"TOKEN={token}"),
    )
    _wait_for(lambda: len(find_processes_with_token(token)) >= 2)  # both sleeps
    cdir = rootless.data_home / "rootless" / "containers"
    import sqlite3

    db = sqlite3.connect(cdir / "containers.db")
    (monitor,) = db.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()
    db.close()
    os.kill(monitor, signal.SIGKILL)
    assert find_processes_with_token(token, wait=1.0) == []
    row = _ps(rootless, "-a")[0]
    assert row["State"] == "exited"
    assert rootless("rm", cid).returncode == 0
    assert _ps(rootless, "-a") == []


def test_rm_of_running_needs_force(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000")
    r = rootless("rm", cid)
    assert r.returncode == 125 and "is running" in r.stderr and "rm -f" in r.stderr
    r = rootless("rm", "-f", cid[:8])
    assert r.returncode == 0, r.stderr
    assert _ps(rootless, "-a") == []
    assert not (rootless.data_home / "rootless" / "containers" / cid).exists()


def test_create_then_start_and_restart_after_exit(rootless, busybox_rootfs, cleanup):
    r = rootless(
        "create", "--name", "later", "--rootfs", str(busybox_rootfs), "sh", "-c", "echo run"
    )
    assert r.returncode == 0, r.stderr
    assert _ps(rootless, "-a")[0]["State"] == "created"
    assert rootless("start", "later").returncode == 0
    assert rootless("wait", "later").stdout.strip() == "0"
    assert rootless("start", "-a", "later").stdout.splitlines() == ["run", "run"]


def test_unknown_container_is_a_clear_error(rootless):
    r = rootless("stop", "nothing-here")
    assert r.returncode == 125
    assert 'no container with name or ID "nothing-here"' in r.stderr


def test_restart_on_failure_three_times(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c", "echo try; exit 1", opts=("--restart", "on-failure:3")
    )
    _wait_for(
        lambda: (
            _ps(rootless, "-a")[0]["State"] == "exited" and _ps(rootless, "-a")[0]["Restarts"] == 3
        ),
        timeout=20,
    )
    time.sleep(1)
    row = _ps(rootless, "-a")[0]
    assert row["State"] == "exited" and row["Restarts"] == 3 and row["ExitCode"] == 1
    assert rootless("logs", cid).stdout.splitlines() == ["try"] * 4


def test_restart_always_then_stop_stays_stopped(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c", "sleep 0.2; exit 0", opts=("--restart", "always")
    )
    _wait_for(lambda: _ps(rootless, "-a")[0]["Restarts"] >= 1)
    assert rootless("stop", "-t", "1", cid).returncode == 0
    time.sleep(1.5)
    row = _ps(rootless, "-a")[0]
    assert row["State"] == "exited"
    restarts = row["Restarts"]
    time.sleep(1)
    assert _ps(rootless, "-a")[0]["Restarts"] == restarts


def test_concurrent_runs_with_the_same_name_give_one_container(rootless, busybox_rootfs, cleanup):
    procs = [
        subprocess.Popen(
            rootless.command(
                "run", "-d", "--name", "same", "--rootfs", str(busybox_rootfs), "sleep", "1000"
            ),
            env=rootless.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(20)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    for p in procs:
        p.stdout.close()  # type: ignore[union-attr]
        p.stderr.close()  # type: ignore[union-attr]
    assert codes.count(0) == 1, codes
    assert len(_ps(rootless, "-a")) == 1


def test_init_lets_stop_end_a_shell_without_handlers(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c", "while :; do sleep 0.1; done", opts=("--init",)
    )
    r = rootless("exec", cid, "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.stdout.startswith("/run/rootless-init -- sh"), r.stdout + r.stderr
    began = time.monotonic()
    assert rootless("stop", "-t", "10", cid).returncode == 0
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("flag", [("--memory", "64m"), ("--pids-limit", "10"), ("--cpus", "1")])
def test_resource_limits_are_refused_with_the_reason(rootless, busybox_rootfs, flag):
    r = rootless("run", "--rm", *flag, "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125
    assert f"cannot apply {flag[0]}" in r.stderr
    assert "cgroup" in r.stderr and "Delegate" in r.stderr


def _rss_kb(pid: int) -> int:
    from pathlib import Path

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_log_flood_stays_within_the_cap_and_bounded_memory(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless,
        busybox_rootfs,
        "yes",
        "a fairly long line of output for the flood",
        opts=("--log-opt", "max-size=1m"),
    )
    import sqlite3

    db = sqlite3.connect(rootless.data_home / "rootless" / "containers" / "containers.db")
    (monitor,) = db.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()
    db.close()
    peak = 0
    for _ in range(30):
        time.sleep(0.1)
        peak = max(peak, _rss_kb(monitor))
    assert rootless("stop", "-t", "0", cid).returncode == 0
    cdir = rootless.data_home / "rootless" / "containers" / cid
    logs = list(cdir.glob("ctr.log*"))
    total = sum(p.stat().st_size for p in logs)
    assert 0 < total <= 2 * 1024 * 1024 + 64 * 1024, (total, logs)
    assert peak < 80 * 1024, f"monitor RSS peaked at {peak} kB"


def test_exec_of_a_big_output_streams(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000")
    size = 300 * 1024 * 1024
    # The container writes straight to our pipe: nothing in rootless buffers it.
    proc = subprocess.Popen(
        rootless.command("exec", cid, "head", "-c", str(size), "/dev/zero"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    got = 0
    assert proc.stdout is not None
    while chunk := proc.stdout.read(1 << 20):
        got += len(chunk)
    proc.wait(timeout=120)
    assert got == size
    assert proc.returncode == 0


def test_healthcheck_healthy_and_unhealthy(rootless, busybox_rootfs, cleanup):
    ok = _run_d(
        rootless,
        busybox_rootfs,
        "sleep",
        "1000",
        opts=("--health-cmd", "test -e /tmp", "--health-interval", "0.2s"),
    )
    bad = _run_d(
        rootless,
        busybox_rootfs,
        "sleep",
        "1000",
        opts=(
            "--health-cmd",
            "echo failing; exit 1",
            "--health-interval",
            "0.2s",
            "--health-retries",
            "2",
        ),
    )

    def health(cid: str) -> dict:  # type: ignore[type-arg]
        r = rootless("inspect", "--format", "json", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)[0]["State"]["Health"] or {}

    _wait_for(lambda: health(ok).get("Status") == "healthy")
    _wait_for(lambda: health(bad).get("Status") == "unhealthy")
    state = health(bad)
    assert state["FailingStreak"] >= 2
    assert state["Log"][-1]["ExitCode"] == 1 and "failing" in state["Log"][-1]["Output"]
    rows = {r["ID"]: r["Status"] for r in _ps(rootless)}
    assert rows[ok[:12]].endswith("(healthy)") and rows[bad[:12]].endswith("(unhealthy)")
    assert rootless("healthcheck", "run", ok).returncode == 0
    r = rootless("healthcheck", "run", bad)
    assert r.returncode == 1 and r.stdout.strip() == "unhealthy"


def test_health_on_failure_kill_restart_and_stop(rootless, busybox_rootfs, cleanup):
    # healthy while /tmp/ok exists; each run makes it again (a fresh tmpfs)
    health = ("--health-cmd", "test -e /tmp/ok", "--health-interval", "0.2s",
              "--health-retries", "1", "--tmpfs", "/tmp")  # fmt: skip
    cmd = ("sh", "-c", "trap 'exit 0' TERM; touch /tmp/ok; while true; do sleep 0.1; done")

    def start(action: str, restart: str) -> str:
        opts = (*health, "--health-on-failure", action, "--restart", restart)
        return _run_d(rootless, busybox_rootfs, *cmd, opts=opts)  # type: ignore[no-any-return]

    def state(cid: str) -> dict:  # type: ignore[type-arg]
        return json.loads(rootless("inspect", cid).stdout)[0]  # type: ignore[no-any-return]

    def healthy(cid: str) -> bool:
        return (state(cid)["State"]["Health"] or {}).get("Status") == "healthy"

    kill, restart, stop = start("kill", "no"), start("restart", "no"), start("stop", "always")
    first_pid = {}
    for cid in (kill, restart, stop):
        _wait_for(lambda cid=cid: healthy(cid))
        first_pid[cid] = state(cid)["State"]["Pid"]
        assert rootless("exec", cid, "rm", "/tmp/ok").returncode == 0
    # kill: SIGKILL, and --restart no leaves it exited
    _wait_for(lambda: state(kill)["State"]["Status"] == "exited")
    assert state(kill)["State"]["ExitCode"] == 137
    # restart: started again whatever the policy, and healthy again
    _wait_for(lambda: state(restart)["RestartCount"] == 1 and state(restart)["State"]["Running"])
    assert state(restart)["State"]["Pid"] != first_pid[restart]
    _wait_for(lambda: healthy(restart))
    # stop: the stop signal (the trap exits 0), and --restart always does not bring it back
    _wait_for(lambda: state(stop)["State"]["Status"] == "exited")
    assert state(stop)["State"]["ExitCode"] == 0 and state(stop)["RestartCount"] == 0
    r = rootless(
        "run", "--rm", "--health-on-failure", "kill", "--rootfs", str(busybox_rootfs), "true"
    )
    assert r.returncode == 125 and "--health-on-failure needs a healthcheck" in r.stderr


def test_rm_all_during_ps_does_not_deadlock(rootless, busybox_rootfs, cleanup):
    for _ in range(3):
        _run_d(rootless, busybox_rootfs, "sleep", "1000")
    lister = [
        subprocess.Popen(
            rootless.command("ps", "-a"),
            env=rootless.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(5)
    ]
    r = rootless("rm", "-af", timeout=60)
    for p in lister:
        assert p.wait(timeout=60) == 0
    assert r.returncode == 0, r.stderr
    assert _ps(rootless, "-a") == []


def test_exec_with_a_tty_and_detached(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000")
    code, out = run_in_pty(rootless.command("exec", "-t", cid, "/probe", "tty"), rootless.env)
    assert code == 0, out
    assert b"isatty0=1" in out and b"ttyname=/dev/pts/" in out
    r = rootless("exec", "-d", cid, "sh", "-c", "sleep 0.2; echo done > /tmp/detached")
    assert r.returncode == 0, r.stderr
    _wait_for(lambda: rootless("exec", cid, "cat", "/tmp/detached").stdout == "done\n")


def test_logs_since_and_until(rootless, busybox_rootfs, cleanup):
    cid = _run_d(
        rootless, busybox_rootfs, "sh", "-c", "echo early; sleep 1.5; echo late; sleep 1000"
    )
    _wait_for(lambda: "late" in rootless("logs", cid).stdout)
    stamped = rootless("logs", "-t", cid).stdout.splitlines()
    late_time = stamped[1].split(" ", 1)[0]
    assert rootless("logs", "--since", late_time, cid).stdout.splitlines() == ["late"]
    assert rootless("logs", "--until", late_time, cid).stdout.splitlines() == ["early", "late"]
    assert rootless("logs", "--since", "1h", cid).stdout.splitlines() == ["early", "late"]
    r = rootless("logs", "--since", "yesterday-ish", cid)
    assert r.returncode == 125 and "--since" in r.stderr


def test_labels_are_kept_and_filtered_on(rootless, busybox_rootfs, cleanup):
    cid = _run_d(rootless, busybox_rootfs, "sleep", "1000", opts=("-l", "tier=web", "--label", "x"))
    _run_d(rootless, busybox_rootfs, "sleep", "1000", opts=("-l", "tier=db"))
    [row] = _ps(rootless, "--filter", "label=tier=web")
    assert cid.startswith(row["ID"]) and row["Labels"] == {"tier": "web", "x": ""}
    assert len(_ps(rootless, "--filter", "label=tier")) == 2
    r = rootless("run", "--rm", "-l", "=v", "--rootfs", str(busybox_rootfs), "true")
    assert r.returncode == 125 and "invalid --label" in r.stderr
