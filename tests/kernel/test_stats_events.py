"""stats, pause/unpause and events, for real: /proc counters, SIGSTOP/SIGCONT, the log."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest


def _ok(r):  # type: ignore[no-untyped-def]
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def _wait_for(predicate, timeout=20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def _run_d(rootless, rootfs, name, script):  # type: ignore[no-untyped-def]
    cmd = ("run", "-d", "--name", name, "--rootfs", str(rootfs), "sh", "-c", script)
    return _ok(rootless(*cmd)).stdout.strip()


@pytest.fixture
def cleanup(rootless):  # type: ignore[no-untyped-def]
    yield
    rootless("rm", "-af")


def _pids_of(rootless, name):  # type: ignore[no-untyped-def]
    """Host PIDs in the PID namespace of the container's PID 1."""
    pid1 = json.loads(_ok(rootless("inspect", name)).stdout)[0]["State"]["Pid"]
    want = os.stat(f"/proc/{pid1}/ns/pid")
    found = []
    for p in Path("/proc").iterdir():
        try:
            st = os.stat(p / "ns" / "pid")
        except OSError:
            continue
        if p.name.isdigit() and (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
            found.append(int(p.name))
    return found


def test_stats_shows_cpu_memory_and_pids(rootless, busybox_rootfs, cleanup):
    # A busy loop that keeps ~8 MB in a shell variable and forks dd again and again.
    script = (
        "x=$(dd if=/dev/zero bs=1M count=8 2>/dev/null | tr '\\0' a); "
        "sleep 1000 & sleep 1000 & "
        "while :; do dd if=/dev/zero of=/dev/null bs=64k count=200 2>/dev/null; done"
    )
    _run_d(rootless, busybox_rootfs, "busy", script)
    _run_d(rootless, busybox_rootfs, "idle", "exec sleep 1000")

    def busy_row():  # type: ignore[no-untyped-def]
        rows = json.loads(_ok(rootless("stats", "--no-stream", "--format", "json")).stdout)
        row = {r["Name"]: r for r in rows}.get("busy")
        return row if row and row["CPU"] > 5 and row["MemUsageBytes"] > 8_000_000 else None

    row = _wait_for(busy_row)
    assert row["PIDs"] >= 3  # sh and two sleeps (and dd, most of the time)
    assert row["MemUsage"].endswith("B") and " / " in row["MemUsage"]

    out = _ok(rootless("stats", "--no-stream", "idle")).stdout.splitlines()
    assert out[0].split() == ["ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
                              "NET", "IO", "BLOCK", "IO", "PIDS"]  # fmt: skip
    assert len(out) == 2 and out[1].split()[1] == "idle"
    assert out[1].split()[-1] == "1"  # PIDs: only sleep
    fields = _ok(rootless("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "idle"))
    assert fields.stdout == "idle 1\n"

    _ok(rootless("stop", "-t", "0", "idle"))
    names = [r["Name"] for r in json.loads(_ok(rootless("stats", "--no-stream", "--format",
                                                         "json")).stdout)]  # fmt: skip
    assert names == ["busy"]
    rows = json.loads(_ok(rootless("stats", "-a", "--no-stream", "--format", "json")).stdout)
    assert {r["Name"]: r["PIDs"] for r in rows}["idle"] == "--"


def test_stats_streams_until_interrupted(rootless, busybox_rootfs, cleanup):
    _run_d(rootless, busybox_rootfs, "s", "exec sleep 1000")
    proc = subprocess.Popen(
        rootless.command("stats", "--interval", "0.2", "--format", "{{.Name}}"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = _collect(proc)
    try:
        _wait_for(lambda: len(lines) >= 3)
        assert lines[:3] == ["s"] * 3
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=20) == 0


def _collect(proc: subprocess.Popen[str]) -> list[str]:
    """Lines of ``proc``'s output as they come (a thread reads them: no read blocks the test)."""
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def _output_size(rootless, name):  # type: ignore[no-untyped-def]
    return len(_ok(rootless("logs", name)).stdout)


def test_pause_stops_and_unpause_resumes(rootless, busybox_rootfs, cleanup):
    # A counting loop whose children (sleep) come and go: the scan must catch new ones.
    cid = _run_d(rootless, busybox_rootfs, "count", "i=0; while :; do i=$((i+1)); echo $i; "
                 "sleep 0.05; done")  # fmt: skip
    _wait_for(lambda: _output_size(rootless, "count") > 10)
    _ok(rootless("pause", "count"))
    state = json.loads(_ok(rootless("inspect", "count")).stdout)[0]["State"]
    assert state["Status"] == "paused" and state["Paused"] is True
    ps = _ok(rootless("ps", "--format", "{{.Names}} {{.State}} {{.Status}}")).stdout
    assert ps == "count paused Paused\n"
    size = _output_size(rootless, "count")
    time.sleep(1.0)
    assert _output_size(rootless, "count") == size
    top = _ok(rootless("top", "count", "state")).stdout.split()[1:]
    assert top and set(top) <= {"T"}

    r = rootless("exec", "count", "true")
    assert r.returncode != 0 and "it is paused" in r.stderr and "unpause" in r.stderr
    r = rootless("pause", "count")
    assert r.returncode == 125 and "already paused" in r.stderr

    _ok(rootless("unpause", "count"))
    _wait_for(lambda: _output_size(rootless, "count") > size + 5)
    assert json.loads(_ok(rootless("inspect", cid)).stdout)[0]["State"]["Status"] == "running"
    r = rootless("unpause", "count")
    assert r.returncode == 125 and "not paused" in r.stderr


def test_stop_and_rm_of_a_paused_container(rootless, busybox_rootfs, cleanup):
    _run_d(rootless, busybox_rootfs, "p", "sleep 1000 & exec sleep 999")
    _wait_for(lambda: len(_ok(rootless("top", "p")).stdout.splitlines()) == 3)
    pids = _pids_of(rootless, "p")
    assert len(pids) == 2
    _ok(rootless("pause", "p"))
    r = _ok(rootless("stop", "-t", "2", "p"))
    assert r.stdout == "p\n"
    state = json.loads(_ok(rootless("inspect", "p")).stdout)[0]["State"]
    assert state["Status"] == "exited"
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]

    _run_d(rootless, busybox_rootfs, "q", "exec sleep 1000")
    pids = _pids_of(rootless, "q")
    _ok(rootless("pause", "q"))
    _ok(rootless("rm", "-f", "q"))
    assert rootless("inspect", "q").returncode != 0
    assert pids and not [p for p in pids if Path(f"/proc/{p}").exists()]


def _events(rootless, *args):  # type: ignore[no-untyped-def]
    out = _ok(rootless("events", "--no-stream", "--format", "json", *args)).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_events_of_run_rm_and_filters(rootless, busybox_rootfs, cleanup):
    before = time.time()
    _ok(rootless("run", "--rm", "--name", "once", "--rootfs", str(busybox_rootfs), "true"))
    r = rootless("run", "--name", "fails", "--rootfs", str(busybox_rootfs), "sh", "-c", "exit 3")
    assert r.returncode == 3
    events = _events(rootless)
    once = [(e["Status"], e["Name"]) for e in events if e["Name"] == "once"]
    assert once == [("create", "once"), ("start", "once"), ("died", "once"), ("remove", "once")]
    for e in events:
        assert e["Type"] == "container" and before - 1 < e["TimeNano"] / 1e9 < time.time() + 1
    died = [e for e in events if e["Status"] == "died" and e["Name"] == "fails"]
    assert died[0]["Attributes"]["containerExitCode"] == "3"

    only = _events(rootless, "--filter", "container=fails", "--filter", "event=died")
    assert [(e["Name"], e["Status"]) for e in only] == [("fails", "died")]
    either = _events(rootless, "--filter", "event=create", "--filter", "event=remove")
    assert [(e["Name"], e["Status"]) for e in either] == [
        ("once", "create"), ("once", "remove"), ("fails", "create")
    ]  # fmt: skip
    assert _events(rootless, "--filter", "type=image") == []

    cut = events[-1]["TimeNano"] + 1
    _ok(rootless("rm", "fails"))
    later = _events(rootless, "--since", f"{cut // 10**9}.{cut % 10**9:09d}")
    assert [(e["Name"], e["Status"]) for e in later] == [("fails", "remove")]
    text = _ok(rootless("events", "--stream=false", "--filter", "event=remove")).stdout
    assert " container remove " in text and "name=fails" in text

    r = rootless("events", "--no-stream", "--filter", "bogus=1")
    assert r.returncode == 125 and "invalid filter" in r.stderr

    # a container's labels go with its events: --filter label=
    _ok(rootless("run", "--rm", "--label", "tier=web", "--rootfs", str(busybox_rootfs), "true"))
    labelled = _events(rootless, "--filter", "label=tier=web", "--filter", "event=died")
    assert len(labelled) == 1 and labelled[0]["Attributes"]["tier"] == "web"
    assert _events(rootless, "--filter", "label=tier=db") == []


def test_events_stream_follows_new_events(rootless, busybox_rootfs, cleanup):
    proc = subprocess.Popen(
        rootless.command("events", "--format", "{{.Status}} {{.Name}}"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = _collect(proc)
    try:  # events written before the stream started are printed too: no race
        _run_d(rootless, busybox_rootfs, "w", "exec sleep 1000")
        _ok(rootless("pause", "w"))
        _ok(rootless("unpause", "w"))
        _ok(rootless("kill", "w"))
        _wait_for(lambda: len(seen) >= 6)
        assert seen == ["create w", "start w", "pause w", "unpause w", "kill w", "died w"]
    finally:
        proc.send_signal(2)
        assert proc.wait(timeout=20) == 0


def test_image_events(rootless, busybox_image, cleanup):
    _ok(rootless("pull", "-q", "--tls-verify=false", busybox_image))
    _ok(rootless("tag", busybox_image, "localhost/other:1"))
    _ok(rootless("rmi", "localhost/other:1"))
    events = _events(rootless, "--filter", "type=image")
    assert [(e["Status"], e["Name"]) for e in events] == [
        ("pull", busybox_image),
        ("tag", "localhost/other:1"),
        ("untag", "localhost/other:1"),
    ]
    assert len({e["ID"] for e in events}) == 1


def test_volume_and_network_events(rootless, cleanup):
    _ok(rootless("volume", "create", "data"))
    _ok(rootless("volume", "rm", "data"))
    _ok(rootless("network", "create", "net1"))
    _ok(rootless("network", "rm", "net1"))
    volumes = _events(rootless, "--filter", "type=volume")
    assert [(e["Status"], e["Name"]) for e in volumes] == [("create", "data"), ("remove", "data")]
    nets = _events(rootless, "--filter", "network=net1")
    assert [(e["Type"], e["Status"]) for e in nets] == [
        ("network", "create"),
        ("network", "remove"),
    ]
    assert nets[0]["ID"] == nets[1]["ID"] and len(nets[0]["ID"]) == 64
    assert _events(rootless, "--filter", "volume=other") == []
