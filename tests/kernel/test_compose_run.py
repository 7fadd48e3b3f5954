"""compose run for real: one-off containers of a service with the options of Compose."""

from __future__ import annotations

import json
import re
import socket

from _compose import compose, project
from conftest import fetch_until_up, ok
from docker_registry import free_port


def containers(rootless) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    """Every container by name, as ``ps -a --format json`` shows it."""
    return {c["Names"]: c for c in json.loads(ok(rootless("ps", "-a", "--format", "json")))}


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


APP_AND_DB = """
services:
  app:
    image: {image}
    command: sleep 1000
    environment: {{A: "1"}}
    stop_grace_period: 1s
    depends_on: [db]
  db:
    image: {image}
    command: sleep 1000
    stop_grace_period: 1s
"""


def test_options_change_what_runs_and_the_exit_code_is_the_commands(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, APP_AND_DB.format(image=image))
    try:
        out = ok(compose(rootless, file, "run", "--rm", "-i", "-T", "--no-deps", "-e", "A=3", "-e",
                         "B=2", "-w", "/tmp", "-u", "1000:1000", "app",
                         "sh", "-c", 'echo "$A $B"; pwd; id -u; id -g'))  # fmt: skip
        assert out.split("\n")[:4] == ["3 2", "/tmp", "1000", "1000"]
        out = ok(compose(rootless, file, "run", "--rm", "-T", "--no-deps",
                         "--entrypoint", "echo from entrypoint", "app", "and", "args"))  # fmt: skip
        assert out.strip() == "from entrypoint and args"
        # -v: relative to the project directory, made when missing, written through
        r = compose(rootless, file, "run", "--rm", "-T", "--no-deps", "-v", "./out:/out", "app",
                    "sh", "-c", "echo written inside > /out/file; exit 7")  # fmt: skip
        assert r.returncode == 7, r.stderr
        assert (file.parent / "out" / "file").read_text() == "written inside\n"
        # --no-deps: db was never made, and every --rm container is gone
        assert containers(rootless) == {}
    finally:
        ok(compose(rootless, file, "down", "-t", "1", timeout=60))


def test_dependencies_start_first_and_down_removes_a_detached_one_off(
    rootless, image, tmp_path, find_processes_with_token
):  # type: ignore[no-untyped-def]
    file = project(tmp_path, APP_AND_DB.format(image=image))
    try:
        r = compose(rootless, file, "run", "-T", "app", "true")
        ok(r)
        assert "demo-db-1  Started" in r.stderr
        found = containers(rootless)
        assert found["demo-db-1"]["State"] == "running"
        [name] = [n for n in found if n.startswith("demo-app-run-")]
        assert re.fullmatch(r"demo-app-run-[0-9a-f]{12}", name)
        assert found[name]["State"] == "exited"  # kept without --rm
        labels = found[name]["Labels"]
        assert labels["com.docker.compose.oneoff"] == "True"
        assert found["demo-db-1"]["Labels"]["com.docker.compose.oneoff"] == "False"

        cid = ok(compose(rootless, file, "run", "-d", "--name", "job", "-l", "purpose=test",
                         "app", "sleep", "1000")).strip()  # fmt: skip
        found = containers(rootless)
        assert cid.startswith(found["job"]["ID"]) and found["job"]["State"] == "running"
        assert found["job"]["Labels"]["purpose"] == "test"
        # the one-offs are no replicas: up makes app's own container, stop leaves them
        ok(compose(rootless, file, "up", "-d"))
        ok(compose(rootless, file, "stop"))
        found = containers(rootless)
        assert found["demo-app-1"]["State"] == "exited"
        assert found["job"]["State"] == "running"
        assert "job" in ok(compose(rootless, file, "ps"))
    finally:
        r = compose(rootless, file, "down", "-t", "1", timeout=60)
    ok(r)
    assert "Container job  Removed" in r.stderr
    assert containers(rootless) == {}
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


WEB = """
services:
  web:
    image: {image}
    command: httpd -f -p 80 -h /srv
    volumes: ["./html:/srv:ro"]
    ports: ["127.0.0.1:{port}:80"]
    stop_grace_period: 1s
"""


def test_publish_and_service_ports(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    service_port, port = free_port(), free_port()
    file = project(tmp_path, WEB.format(image=image, port=service_port))
    (file.parent / "html").mkdir()
    (file.parent / "html" / "index.html").write_text("one-off\n")
    try:
        ok(compose(rootless, file, "run", "-d", "-p", f"127.0.0.1:{port}:80", "web"))
        assert fetch_until_up(f"http://127.0.0.1:{port}/", timeout=20) == b"one-off\n"
        assert refused(service_port)  # without --service-ports, the service's are not
        ok(compose(rootless, file, "run", "-d", "--service-ports", "web"))
        assert fetch_until_up(f"http://127.0.0.1:{service_port}/", timeout=20) == b"one-off\n"
    finally:
        ok(compose(rootless, file, "down", "-t", "1", timeout=60))
    assert containers(rootless) == {}


def test_bad_input_fails_before_anything_starts(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(tmp_path, APP_AND_DB.format(image=image))
    r = compose(rootless, file, "run", "nope")
    assert r.returncode == 125
    assert 'no such service: "nope"' in r.stderr and "services: app, db" in r.stderr
    r = compose(rootless, file, "run", "-p", "80:http", "app")
    assert r.returncode == 125
    assert 'invalid port "80:http"' in r.stderr and "-p 8080:80" in r.stderr
    r = compose(rootless, file, "run", "-v", "cache:/cache", "app")
    assert r.returncode == 125
    assert 'volume "cache" is not declared' in r.stderr
    assert containers(rootless) == {}  # not even the dependency


def test_a_one_off_is_on_every_network_of_its_service(rootless, image, tmp_path):  # type: ignore[no-untyped-def]
    file = project(
        tmp_path,
        f"""
services:
  app:
    image: {image}
    networks: [default, back]
networks:
  back:
""",
    )
    try:
        for detach in (False, True):
            args = ["sh", "-c", "ip -o -4 addr; sleep 300" if detach else "ip -o -4 addr"]
            r = compose(
                rootless, file, "run", *(["-d"] if detach else ["--rm", "-T"]), "app", *args
            )
            out = ok(r)
            if detach:
                out = ok(rootless("exec", out.strip().splitlines()[-1], "ip", "-o", "-4", "addr"))
            assert "eth0" in out and "eth1" in out, out
    finally:
        ok(compose(rootless, file, "down", "-t", "1", timeout=60))
