"""The project supervisor of compose up -d: one process owns every service's container."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from _compose import compose
from conftest import ok

STACK = """
services:
  db:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; echo db up; while true; do sleep 0.1; done'
    healthcheck: {{test: ["CMD", "true"], interval: 200ms}}
  worker:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    environment: {{MODE: "{mode}"}}
    depends_on:
      db: {{condition: service_healthy}}
  flaky:
    image: {image}
    command: sh -c 'echo run; exit 1'
    restart: on-failure:2
"""


def supervisors(runtime_dir: Path, find) -> list[int]:  # type: ignore[no-untyped-def]
    """Session leaders running a supervise module for this test's roots (the
    containers' stage-1 processes are forks of the supervisor, not session leaders)."""
    out = []
    for pid in find(str(runtime_dir)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            session = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, ValueError):
            continue
        if b"rootless.supervise." in cmdline and session == pid:
            out.append(pid)
    return out


def state(rootless, name):  # type: ignore[no-untyped-def]
    return json.loads(ok(rootless("inspect", name)))[0]["State"]


def kill_and_await_restart(rootless, name: str) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL the container's PID 1; return once its restart policy runs it again."""
    pid = state(rootless, name)["Pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = state(rootless, name)
        if now["Status"] == "running" and now["Pid"] not in (0, pid):
            return
        assert time.monotonic() < deadline, f"not restarted: {now}"
        time.sleep(0.1)


def test_one_supervisor_per_project_and_sigkill_of_it_leaves_nothing(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    (tmp_path / "proj").mkdir()
    file = tmp_path / "proj" / "compose.yaml"
    file.write_text(STACK.format(image=image, mode="one"))
    try:
        r = compose(rootless, file, "up", "-d")
        ok(r)
        assert r.stderr.index("demo-db-1  Healthy") < r.stderr.index("demo-worker-1  Started")
        [sup] = supervisors(rootless.runtime_dir, find_processes_with_token)
        assert b"rootless.supervise.project" in Path(f"/proc/{sup}/cmdline").read_bytes()
        # single-container commands see the project's containers as any other
        assert state(rootless, "demo-worker-1")["Status"] == "running"
        assert "db up" in ok(rootless("logs", "demo-db-1"))
        # the restart policy runs in the supervisor: 1 run + 2 restarts, then it is done
        for _ in range(100):
            if state(rootless, "demo-flaky-1")["Status"] == "exited":
                break
            time.sleep(0.1)
        assert ok(rootless("logs", "demo-flaky-1")).count("run") == 3

        # a changed service is recreated under the same supervisor
        file.write_text(STACK.format(image=image, mode="two"))
        r = compose(rootless, file, "up", "-d")
        ok(r)
        assert "demo-worker-1  Recreated" in r.stderr
        assert supervisors(rootless.runtime_dir, find_processes_with_token) == [sup]
        assert ok(rootless("exec", "demo-worker-1", "sh", "-c", "echo $MODE")).strip() == "two"

        os.kill(sup, signal.SIGKILL)
        assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []
        assert state(rootless, "demo-db-1")["Status"] == "exited"
        assert state(rootless, "demo-db-1")["ExitCode"] == 137

        # start again: a new supervisor; down ends it with its containers
        ok(compose(rootless, file, "start"))
        [again] = supervisors(rootless.runtime_dir, find_processes_with_token)
        assert again != sup
        assert state(rootless, "demo-worker-1")["Status"] == "running"
    finally:
        r = compose(rootless, file, "down")
    ok(r)
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


ORDERED = """
services:
  db:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; sleep 1; touch /tmp/ready; while true; do sleep 0.1; done'
    healthcheck: {{test: ["CMD", "test", "-e", "/tmp/ready"], interval: 200ms, retries: 50}}
  web:
    image: {image}
    command: sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done'
    depends_on:
      db: {{condition: service_healthy}}
    networks: [default, back]
    restart: on-failure
  keeper:
    image: {image}
    command: sh -c 'echo started; trap "exit 0" TERM; while true; do sleep 0.1; done'
    restart: always
    networks: [back]
networks:
  back:
"""


def test_start_after_stop_is_supervised_and_ordered(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = tmp_path / "compose.yaml"
    file.write_text(ORDERED.format(image=image))
    try:
        ok(compose(rootless, file, "up", "-d"))
        ok(compose(rootless, file, "stop"))
        # nothing runs: the project supervisor has gone
        deadline = time.monotonic() + 20
        while supervisors(rootless.runtime_dir, find_processes_with_token):
            assert time.monotonic() < deadline, "the supervisor did not exit"
            time.sleep(0.1)

        # naming web starts db first, and waits for it to be healthy
        r = compose(rootless, file, "start", "web")
        ok(r)
        assert r.stderr.index("demo-db-1  Healthy") < r.stderr.index("demo-web-1  Started")
        assert state(rootless, "demo-keeper-1")["Status"] == "exited"
        [sup] = supervisors(rootless.runtime_dir, find_processes_with_token)

        # the rest joins the same supervisor, which restarts a killed keeper
        r = compose(rootless, file, "start")
        ok(r)
        assert "demo-keeper-1  Started" in r.stderr
        assert supervisors(rootless.runtime_dir, find_processes_with_token) == [sup]
        kill_and_await_restart(rootless, "demo-keeper-1")
        assert ok(rootless("logs", "demo-keeper-1")).count("started") == 3
        # web is on its second network again: keeper (only there) finds it by name
        ok(rootless("exec", "demo-keeper-1", "nslookup", "web"))
        # and so it is after its restart policy started it again
        kill_and_await_restart(rootless, "demo-web-1")
        ok(rootless("exec", "demo-keeper-1", "nslookup", "web"))
        assert "eth1" in ok(rootless("exec", "demo-web-1", "ip", "-o", "-4", "addr"))
    finally:
        r = compose(rootless, file, "down")
    ok(r)
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []
