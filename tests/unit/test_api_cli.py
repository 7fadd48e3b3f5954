"""The API's pure helpers: command lines, environments, error and output parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless._paths import StoragePaths
from rootless.api import _cli
from rootless.container.records import NoSuchContainer
from rootless.errors import CommandNotFound, RootlessError
from rootless.network.ports import PortMapping


def test_run_argv_maps_each_option_to_its_flag() -> None:
    argv = _cli.run_argv(
        "busybox",
        ["sh", "-c", "echo hi"],
        True,
        {
            "name": "web",
            "env": {"A": "1=2"},
            "ports": ["8080:80"],
            "volumes": ["/data:/data:ro"],
            "network": "none",
            "rm": True,
            "workdir": "/w",
            "user": "1000",
            "entrypoint": "/bin/sh",
            "tls_verify": False,
            "extra_args": ["--read-only"],
        },
    )
    assert argv == [
        "run", "--detach", "--rm", "--name=web", "--network=none", "--workdir=/w",
        "--user=1000", "--entrypoint=/bin/sh", "--env=A=1=2", "--publish=8080:80",
        "--volume=/data:/data:ro", "--tls-verify=false", "--read-only",
        "--", "busybox", "sh", "-c", "echo hi",
    ]  # fmt: skip
    assert _cli.run_argv("img", (), False, {}) == ["run", "--", "img"]


def test_other_argvs() -> None:
    assert _cli.exec_argv("c", ["ls", "-l"], env={"K": "v"}, user="0", workdir=None) == [
        "exec", "--env=K=v", "--user=0", "c", "--", "ls", "-l",
    ]  # fmt: skip
    assert _cli.stop_argv("c", None) == ["stop", "c"]
    assert _cli.stop_argv("c", 2.5) == ["stop", "--time=2.5", "c"]
    assert _cli.rm_argv("c", True) == ["rm", "--force", "c"]
    assert _cli.build_argv(
        "ctx", tag="t:1", file="F", build_args={"X": "y"}, tls_verify=True
    ) == [
        "build", "--quiet", "--tag=t:1", "--file=F", "--build-arg=X=y", "--tls-verify=true",
        "ctx",
    ]  # fmt: skip


def test_compose_argv() -> None:
    up = _cli.compose_argv(["a.yaml", Path("b.yaml")], "proj", _cli.compose_up_verb(["web"]))
    assert up == [
        "compose", "--file=a.yaml", "--file=b.yaml", "--project-name=proj", "up", "--detach",
        "web",
    ]  # fmt: skip
    assert _cli.compose_argv([], None, _cli.compose_down_verb(True, 3)) == [
        "compose", "down", "--volumes", "--timeout=3",
    ]  # fmt: skip


def test_cli_env_sets_roots_and_finds_this_package() -> None:
    paths = StoragePaths(Path("/d"), Path("/r"), Path("/c"), Path("/k"))
    env = _cli.cli_env(paths, {"EXTRA": "1"}, {"PYTHONPATH": "/other", "HOME": "/h"})
    assert env["ROOTLESS_DATA_DIR"] == "/d" and env["ROOTLESS_RUNTIME_DIR"] == "/r"
    assert env["ROOTLESS_CONFIG_DIR"] == "/c" and env["ROOTLESS_CACHE_DIR"] == "/k"
    assert env["EXTRA"] == "1" and env["HOME"] == "/h"
    first, rest = env["PYTHONPATH"].split(":", 1)
    assert (Path(first) / "rootless" / "api" / "_cli.py").is_file() and rest == "/other"
    assert "ROOTLESS_DATA_DIR" not in _cli.cli_env(None, None, {})


def test_cli_error_keeps_message_class_and_code() -> None:
    err = _cli.cli_error(["pull", "x"], 125, b"progress\nError: cannot pull x: 404; check it\n")
    assert type(err) is RootlessError and err.exit_code == 125
    assert str(err) == "cannot pull x: 404; check it"
    missing = _cli.cli_error(["stop", "c"], 125, b'Error: no container with name or ID "c" found')
    assert isinstance(missing, NoSuchContainer)
    assert isinstance(_cli.cli_error(["run"], 127, b"Error: x: not found\n"), CommandNotFound)
    bare = _cli.cli_error(["wait", "c"], 1, b"Traceback...\nKeyError: 'x'\n")
    assert str(bare) == "rootless wait failed with exit code 1: KeyError: 'x'"


@pytest.mark.parametrize(
    ("code", "stderr", "engine"),
    [
        (125, b"Error: cannot mount\n", True),
        (127, b"some output\nError: x not found\n", True),
        (127, b"sh: x: not found\n", False),  # the container's shell, not the engine
        (125, b"Error: early\nlater output\n", False),
        (1, b"Error: x\n", False),  # only 125-127 are the engine's
        (0, b"", False),
    ],
)
def test_engine_failed(code: int, stderr: bytes, engine: bool) -> None:
    assert _cli.engine_failed(code, stderr) is engine


def test_parse_ports() -> None:
    text = "80/tcp -> 0.0.0.0:8080\n53/udp -> 127.0.0.1:5353\n443/tcp -> [::1]:8443\n"
    assert _cli.parse_ports(text) == [
        PortMapping("0.0.0.0", 8080, 80, "tcp"),
        PortMapping("127.0.0.1", 5353, 53, "udp"),
        PortMapping("::1", 8443, 443, "tcp"),
    ]
    assert _cli.parse_ports("") == []


def test_line_holder_releases_error_lines_unless_last_of_a_failure() -> None:
    h = _cli.LineHolder()
    assert h.feed(b"a\nb") == [b"a\n"]
    assert h.feed(b"c\nError: mine\n") == [b"bc\n"]
    assert h.feed(b"d\n") == [b"Error: mine\n", b"d\n"]
    assert h.feed(b"Error: engine\n") == []
    assert h.finish(False) == ([], b"Error: engine\n")

    ok = _cli.LineHolder()
    ok.feed(b"Error: from the container\ntail")
    assert ok.finish(True) == ([b"Error: from the container\n", b"tail"], b"")
