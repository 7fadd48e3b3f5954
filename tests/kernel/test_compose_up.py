"""compose up/down/ps/logs/exec/run for real: detached services on the project network."""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
import time

from _compose import compose, project
from conftest import ok


def inspect(rootless, name):  # type: ignore[no-untyped-def]
    return json.loads(ok(rootless("inspect", name)))[0]


def when(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


WEB_AND_CLIENT = """
services:
  client:
    image: {image}
    command: sleep 1000
    environment: {{MODE: "{mode}"}}
    volumes: ["data:/data"]
    depends_on: [web]
  web:
    image: {image}
    command: httpd -f -p 80 -h /srv
    volumes: ["./html:/srv:ro"]
volumes:
  data:
"""


def test_up_reaches_services_by_name_reuses_unchanged_and_down_removes_all(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = project(tmp_path, WEB_AND_CLIENT.format(image=image, mode="one"))
    (file.parent / "html").mkdir()
    (file.parent / "html" / "index.html").write_text("hello from web\n")
    try:
        r = compose(rootless, file, "up", "-d")
        ok(r)
        # dependency first
        assert r.stderr.index("demo-web-1  Started") < r.stderr.index("demo-client-1  Started")
        ps = ok(compose(rootless, file, "ps"))
        assert "demo-web-1" in ps and "demo-client-1" in ps and ps.count("running") == 2
        got = ok(
            compose(rootless, file, "exec", "-T", "client", "sh", "-c",
                    'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc web 80')
        )  # fmt: skip
        assert "hello from web" in got
        rows = [line.split() for line in ps.splitlines()[1:]]
        assert sorted(row[:3] for row in rows) == [
            ["demo-client-1", "client", "running"],
            ["demo-web-1", "web", "running"],
        ]
        web_id = inspect(rootless, "demo-web-1")["Id"]
        client_id = inspect(rootless, "demo-client-1")["Id"]

        r = ok(compose(rootless, file, "up", "-d"))
        assert inspect(rootless, "demo-web-1")["Id"] == web_id
        assert inspect(rootless, "demo-client-1")["Id"] == client_id

        file.write_text(WEB_AND_CLIENT.format(image=image, mode="two"))
        r = compose(rootless, file, "up", "-d")
        ok(r)
        assert "demo-client-1  Recreated" in r.stderr
        assert inspect(rootless, "demo-web-1")["Id"] == web_id
        assert inspect(rootless, "demo-client-1")["Id"] != client_id
        got = ok(compose(rootless, file, "exec", "-T", "client", "sh", "-c", "echo $MODE"))
        assert got.strip() == "two"

        assert "demo_default" in ok(rootless("network", "ls", "-q"))
        assert "demo_data" in ok(rootless("volume", "ls", "-q"))
    finally:
        r = compose(rootless, file, "down", "-v", timeout=60)
    ok(r)
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert "demo_default" not in ok(rootless("network", "ls", "-q"))
    assert "demo_data" not in ok(rootless("volume", "ls", "-q"))
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


HEALTHY = """
services:
  app:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    depends_on:
      db: {{condition: service_healthy}}
  db:
    image: {image}
    command: sh -c "sleep 2; touch /tmp/ready; exec sleep 1000"
    stop_grace_period: 1s
    healthcheck: {{test: "test -f /tmp/ready", interval: 300ms, retries: 50}}
"""


def test_service_healthy_waits_for_the_healthcheck(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, HEALTHY.format(image=image))
    try:
        ok(compose(rootless, file, "up", "-d"))
        db = inspect(rootless, "demo-db-1")["State"]
        app = inspect(rootless, "demo-app-1")["State"]
        passed = [e for e in db["Health"]["Log"] if e["ExitCode"] == 0]
        assert passed, db["Health"]
        assert when(db["StartedAt"]) + 2 <= when(app["StartedAt"])
        assert when(passed[0]["End"]) <= when(app["StartedAt"])
    finally:
        ok(compose(rootless, file, "down", timeout=60))


MIGRATION = """
services:
  migrate:
    image: {image}
    command: sh -c "echo migrating; exit {code}"
  app:
    image: {image}
    command: sleep 1000
    depends_on:
      migrate: {{condition: service_completed_successfully}}
"""


def test_service_completed_successfully(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, MIGRATION.format(image=image, code=3))
    try:
        r = compose(rootless, file, "up", "-d")
        assert r.returncode != 0
        assert "service migrate didn't complete successfully" in r.stderr
        assert "exited with code 3" in r.stderr
        # created with the others (as Compose does), never started
        assert inspect(rootless, "demo-app-1")["State"]["Status"] == "created"

        file.write_text(MIGRATION.format(image=image, code=0))
        ok(compose(rootless, file, "up", "-d"))
        assert inspect(rootless, "demo-app-1")["State"]["Status"] == "running"
        logs = ok(compose(rootless, file, "logs", "migrate"))
        assert "migrate-1  | migrating" in logs
        run = ok(compose(rootless, file, "run", "--rm", "-T", "--no-deps", "app", "echo", "once"))
        assert run.strip() == "once"
    finally:
        ok(compose(rootless, file, "down", "-t", "1", timeout=60))
    assert ok(rootless("ps", "-aq")).strip() == ""


FOREGROUND = """
services:
  ticker:
    image: {image}
    command: sh -c 'trap "echo bye; exit 0" TERM; while true; do echo tick; sleep 0.2; done'
  idle:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
"""


def test_foreground_up_follows_logs_and_stops_on_sigint(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = project(tmp_path, FOREGROUND.format(image=image))
    proc = subprocess.Popen(
        rootless.command("compose", "-f", str(file), "-p", "demo", "up", "--no-color"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while "tick" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert line.startswith("ticker-1  | tick"), line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            compose(rootless, file, "down", "-t", "0", timeout=60)  # what it left running
    assert proc.returncode == 130, err
    assert "ticker-1  | bye" in out
    states = {n: inspect(rootless, n)["State"]["Status"] for n in ("demo-ticker-1", "demo-idle-1")}
    assert states == {"demo-ticker-1": "exited", "demo-idle-1": "exited"}
    ok(compose(rootless, file, "down", timeout=60))
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


STUBBORN = """
services:
  stubborn:
    image: {image}
    command: sh -c 'trap "" TERM; echo ready; while true; do sleep 1; done'
    environment: {{MARK: "{mark}"}}
    stop_grace_period: 120s
  after:
    image: {image}
    command: sh -c 'trap "" TERM; while true; do sleep 1; done'
    environment: {{MARK: "{mark}"}}
    stop_grace_period: 120s
    depends_on: [stubborn]
"""


def test_second_sigint_kills_what_the_graceful_stop_waits_for(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    mark = f"fgkill-{tmp_path.name}"
    file = project(tmp_path, STUBBORN.format(image=image, mark=mark))
    proc = subprocess.Popen(
        rootless.command("compose", "-f", str(file), "-p", "demo", "up", "--no-color"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while "ready" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        assert line.startswith("stubborn-1  | ready"), line
        proc.send_signal(signal.SIGINT)
        err = ""
        while "Gracefully stopping" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            err += line
        assert "(press Ctrl+C again to force)" in line, err
        time.sleep(0.5)  # the graceful stop now waits out "after"'s 120 s
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        forced = time.monotonic()
        _, rest = proc.communicate(timeout=60)
        took = time.monotonic() - forced
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.returncode != 130:
            compose(rootless, file, "down", "-t", "0", timeout=60)  # what it left running
    err += rest
    assert proc.returncode == 130, err
    assert took < 30, err  # not the 120 s grace period
    assert "Killing the containers..." in err
    assert "Container demo-stubborn-1  Killed" in err and "Container demo-after-1  Killed" in err
    assert find_processes_with_token(mark, wait=10) == []
    states = {n: inspect(rootless, n)["State"] for n in ("demo-stubborn-1", "demo-after-1")}
    assert {n: (s["Status"], s["ExitCode"]) for n, s in states.items()} == {
        "demo-stubborn-1": ("exited", 137),
        "demo-after-1": ("exited", 137),
    }
    ok(compose(rootless, file, "down", timeout=60))
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


NEVER_HEALTHY = """
services:
  db:
    image: {image}
    command: sleep 1000
    environment: {{MARK: "{mark}"}}
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "false"], interval: 1s, retries: 1000}}
  app:
    image: {image}
    command: sleep 1000
    depends_on: {{db: {{condition: service_healthy}}}}
"""


def test_sigterm_while_foreground_up_starts_stops_what_it_started(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    # A systemd unit's stop can come while up still waits for a dependency.
    mark = f"fgterm-{tmp_path.name}"
    file = project(tmp_path, NEVER_HEALTHY.format(image=image, mark=mark))
    proc = subprocess.Popen(
        rootless.command("compose", "-f", str(file), "-p", "demo", "up", "--no-color"),
        env=rootless.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not find_processes_with_token(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    try:
        assert proc.returncode == 143, err
        assert "Gracefully stopping" in err
        assert inspect(rootless, "demo-db-1")["State"]["Status"] == "exited"
        assert find_processes_with_token(mark, wait=10) == []
    finally:
        ok(compose(rootless, file, "down", "-t", "0", timeout=60))


ONE_EXITS = """
services:
  job:
    image: {image}
    command: sh -c "sleep 1; echo done; exit 4"
  server:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
"""


def test_abort_on_container_exit_stops_the_rest_with_its_code(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, ONE_EXITS.format(image=image))
    try:
        r = compose(rootless, file, "up", "--abort-on-container-exit", timeout=60)
        assert r.returncode == 4, r.stderr
        assert "job-1     | done" in r.stdout
        assert inspect(rootless, "demo-server-1")["State"]["Status"] == "exited"
    finally:
        ok(compose(rootless, file, "down", timeout=60))


PUBLISHED = """
services:
  web:
    image: {image}
    command: httpd -f -p 80 -h /srv
    ports: ["127.0.0.1:{port}:80"]
    volumes: ["./html:/srv:ro"]
"""


def test_a_service_with_ports_answers_on_the_host(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    file = project(tmp_path, PUBLISHED.format(image=image, port=port))
    (file.parent / "html").mkdir()
    (file.parent / "html" / "index.html").write_text("published\n")
    try:
        r = compose(rootless, file, "up", "-d")
        ok(r)
        assert "warning" not in r.stderr  # it stays on the project network
        body = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not body:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
            except OSError:
                time.sleep(0.1)
        assert body == b"published\n"
        assert f"127.0.0.1:{port}->80/tcp" in ok(compose(rootless, file, "ps"))
    finally:
        ok(compose(rootless, file, "down", timeout=60))


def test_up_builds_a_missing_image_once(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(
        tmp_path,
        "services:\n  app:\n    build: ./app\n    command: sh -c 'cat /made; exec sleep 1000'\n",
    )
    (file.parent / "app").mkdir()
    (file.parent / "app" / "Containerfile").write_text(f"FROM {image}\nRUN echo built > /made\n")
    try:
        ok(compose(rootless, file, "up", "-d"))  # no --build: the image is missing
        assert "demo-app" in ok(rootless("images", "--format", "{{.Repository}}"))
        deadline = time.monotonic() + 10
        while "built" not in ok(rootless("logs", "demo-app-1")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "built" in ok(rootless("logs", "demo-app-1"))
        images = ok(rootless("images", "--format", "{{.ID}} {{.Repository}}"))
        (file.parent / "app" / "Containerfile").write_text(f"FROM {image}\nRUN false\n")
        r = compose(rootless, file, "up", "-d")  # present: not built again
        ok(r)
        assert "demo-app-1  Running" in r.stderr
        assert ok(rootless("images", "--format", "{{.ID}} {{.Repository}}")) == images
    finally:
        ok(compose(rootless, file, "down", "--rmi", "local"))


def test_a_failed_build_of_a_missing_image_stops_up(rootless, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, "services:\n  app:\n    build: {context: ./app, target: run}\n")
    r = compose(rootless, file, "up", "-d")  # ./app does not exist
    assert r.returncode != 0
    assert 'cannot build the image demo-app of service "app"' in r.stderr
    assert ok(rootless("ps", "-aq")).strip() == ""
    ok(compose(rootless, file, "down"))
    assert "demo_default" not in ok(rootless("network", "ls", "-q"))


RESTART_TRUE = """
services:
  db:
    image: {image}
    command: sleep 1000
    environment: {{VERSION: "{version}"}}
    stop_grace_period: 1s
  app:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    depends_on:
      db: {{condition: service_started, restart: true}}
      tools: {{condition: service_started, required: false}}
  other:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
    depends_on: [db]
  tools:
    image: {image}
    command: sleep 1000
    profiles: [tools]
"""


def test_restart_true_restarts_the_dependent_of_a_recreated_or_restarted_service(
    rootless, image, tmp_path
):  # type: ignore[no-untyped-def]
    file = project(tmp_path, RESTART_TRUE.format(image=image, version="1"))

    def state() -> dict[str, tuple[str, int]]:
        return {
            s: (
                inspect(rootless, f"demo-{s}-1")["Id"],
                inspect(rootless, f"demo-{s}-1")["State"]["Pid"],
            )
            for s in ("db", "app", "other")
        }

    try:
        r = compose(rootless, file, "up", "-d")
        ok(r)
        assert (
            'WARN: service "app" depends on "tools", whose profile is not enabled: '
            "starting without it (required: false)"
        ) in r.stderr
        assert "demo-tools" not in ok(rootless("ps", "-a"))
        before = state()

        file.write_text(RESTART_TRUE.format(image=image, version="2"))
        r = compose(rootless, file, "up", "-d")
        ok(r)
        after = state()
        assert after["db"][0] != before["db"][0]  # recreated
        assert after["app"][0] == before["app"][0]  # the same container ...
        assert after["app"][1] != before["app"][1]  # ... started again
        assert after["other"] == before["other"]  # no restart: true, left alone
        assert "Container demo-app-1  Restarting" in r.stderr
        assert r.stderr.index("demo-db-1  Started") < r.stderr.index("demo-app-1  Started")

        r = compose(rootless, file, "restart", "db")
        ok(r)
        again = state()
        assert again["db"][0] == after["db"][0] and again["db"][1] != after["db"][1]
        assert again["app"][0] == after["app"][0] and again["app"][1] != after["app"][1]
        assert again["other"] == after["other"]
    finally:
        ok(compose(rootless, file, "down", "-t", "0", timeout=60))
