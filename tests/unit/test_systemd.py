"""systemd unit text, `.container` parsing, sd_notify messages (pure), and
`systemd-analyze verify` on what is generated."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rootless.errors import ConfigError
from rootless.systemd import generate as gen
from rootless.systemd import notify, quadlet

REPO = Path(__file__).resolve().parent.parent.parent
INVOCATION = gen.Invocation((sys.executable, "-m", "rootless"), (("PYTHONPATH", str(REPO)),))


def unit_entries(text: str, section: str) -> list[tuple[str, str]]:
    unit = quadlet.parse_unit(text, "x")
    return [(e.key, e.value) for e in unit.entries(section)]


def unquote(line: str) -> list[str]:
    """A systemd command line (no specifiers used) split back into words."""
    return shlex.split(line.replace("$$", "$").replace("%%", "%"))


# -- quoting and rendering ----------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("plain", "plain"),
        ("a b", '"a b"'),
        ("100%", "100%%"),
        ("$HOME", '"$$HOME"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("", '""'),
    ],
)
def test_quote_word(word, quoted):
    assert gen.quote_word(word) == quoted


def test_quote_word_expand_keeps_specifiers():
    assert gen.quote_word("systemd-%N", expand=True) == "systemd-%N"


def test_new_run_argv_drops_detach_name_rm_and_sets_timeout():
    stored = ["run", "-dit", "--name", "old", "--rm", "-e", "A=1", "--stop-timeout=3",
              "--rootfs", "/r", "sh", "-c", "x"]  # fmt: skip
    argv = gen.new_run_argv(stored, "web", 7)
    assert argv == ("run", "--rm", "--name", "web", "--stop-timeout", "7",
                    "-it", "-e", "A=1", "--rootfs", "/r", "sh", "-c", "x")  # fmt: skip


def test_new_run_argv_keeps_command_words_that_look_like_flags():
    argv = gen.new_run_argv(["create", "-d", "img", "prog", "-d", "--rm"], "c", 10)
    assert argv[-4:] == ("img", "prog", "-d", "--rm")
    assert argv.count("-d") == 1


def test_new_run_argv_needs_a_create_command():
    with pytest.raises(ConfigError, match="create command is not known"):
        gen.new_run_argv([], "c", 10)


def _new_unit(options, **kw):
    service = gen.container_service(
        name="web", options=options, invocation=INVOCATION, new=True, **kw
    )
    return gen.render(service, header="container-web.service")


def test_new_unit_runs_in_the_foreground_and_stops_within_grace():
    options = {"create_command": ["run", "-d", "--name", "web", "--rootfs", "/r", "sleep", "9"],
               "stop_timeout": 4, "stop_signal": "SIGQUIT"}  # fmt: skip
    text = _new_unit(options, restart_policy="always")
    service = dict(unit_entries(text, "Service"))
    assert unquote(service["ExecStart"]) == [
        sys.executable, "-m", "rootless", "run", "--rm", "--name", "web",
        "--stop-timeout", "4", "--rootfs", "/r", "sleep", "9",
    ]  # fmt: skip
    assert unquote(service["ExecStartPre"].lstrip("-"))[-3:] == ["rm", "-f", "web"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "all"
    assert service["Restart"] == "always"
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGQUIT"
    assert service["TimeoutStopSec"] == "14"  # grace + slack for SIGKILL and --rm
    assert service["Environment"] == f"PYTHONPATH={REPO}"
    assert "ExecStop" not in service
    assert unit_entries(text, "Install") == [("WantedBy", "default.target")]
    assert text.startswith("# container-web.service\n")


def test_time_overrides_the_stored_stop_timeout_and_ignore_means_simple():
    options = {"create_command": ["run", "--sdnotify=ignore", "--rootfs", "/r", "true"],
               "stop_timeout": 4, "sdnotify": "ignore"}  # fmt: skip
    service = dict(unit_entries(_new_unit(options, stop_timeout=1.5), "Service"))
    assert "--stop-timeout 1.5" in service["ExecStart"]
    assert service["TimeoutStopSec"] == "11.5"
    assert service["Type"] == "simple"


def test_existing_container_unit_starts_attached_and_stops_with_stop():
    service = gen.container_service(
        name="abc", options={}, invocation=INVOCATION, new=False, restart_policy="no"
    )
    entries = dict(unit_entries(gen.render(service), "Service"))
    assert unquote(entries["ExecStart"])[-3:] == ["start", "-a", "abc"]
    assert unquote(entries["ExecStop"])[-4:] == ["stop", "-t", "10", "abc"]
    assert entries["Type"] == "simple" and entries["Restart"] == "no"


def test_bad_restart_policy_refused():
    with pytest.raises(ConfigError, match="restart-policy"):
        gen.container_service(
            name="x", options={}, invocation=INVOCATION, new=False, restart_policy="sometimes"
        )


# -- .container files -----------------------------------------------------------------

CONTAINER = """\
# a comment
[Unit]
Description=web server
After=network-online.target

[Container]
Image=registry.example/web:1
ContainerName=web
Exec=httpd -f \\
  -p 8080
Environment=A=1 "B=two words"
PublishPort=8080:80
Volume=/srv:/srv:ro
Network=slirp4netns
HealthCmd=wget -q -O- localhost
HealthInterval=5s
User=app
WorkingDir=/srv
RootlessArgs=--read-only --cap-drop ALL
Notify=true
StopTimeout=3
Frobnicate=yes

[Service]
Restart=always

[Install]
WantedBy=default.target multi-user.target
"""


def test_container_file_becomes_a_service():
    name, text, warnings = quadlet.convert(CONTAINER, "/d/web.container", INVOCATION)
    assert name == "web.service"
    unit = dict(unit_entries(text, "Unit"))
    assert unit == {
        "SourcePath": "/d/web.container",
        "Description": "web server",
        "After": "network-online.target",
    }
    service = dict(unit_entries(text, "Service"))
    assert unquote(service["ExecStart"])[3:] == [
        "run", "--rm", "--name", "web", "--sdnotify=container",
        "--env", "A=1", "--env", "B=two words", "--publish", "8080:80",
        "--volume", "/srv:/srv:ro", "--network", "slirp4netns",
        "--health-cmd", "wget -q -O- localhost", "--health-interval", "5s",
        "--user", "app", "--workdir", "/srv", "--read-only", "--cap-drop", "ALL",
        "--stop-timeout", "3", "registry.example/web:1", "httpd", "-f", "-p", "8080",
    ]  # fmt: skip
    assert service["Restart"] == "always"  # [Service] wins over our default
    assert service["TimeoutStopSec"] == "13"
    assert unit_entries(text, "Install") == [("WantedBy", "default.target multi-user.target")]
    assert warnings == ["/d/web.container:22: unknown key Frobnicate= in [Container] ignored"]
    assert quadlet.install_targets(text) == [
        ("wants", "default.target"),
        ("wants", "multi-user.target"),
    ]


def test_default_name_keeps_the_unit_specifier_free_of_escaping():
    _, text, _ = quadlet.convert("[Container]\nImage=img\n", "/d/db.container", INVOCATION)
    service = dict(unit_entries(text, "Service"))
    assert "--name systemd-db " in service["ExecStart"]
    assert unit_entries(text, "Install") == []  # nothing to pass through


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Container]\nExec=true\n", "exactly one of Image= and Rootfs="),
        ("[Container]\nImage=a\nRootfs=/r\n", "exactly one of Image= and Rootfs="),
        ("[Container]\nRootfs=/r\n", "Rootfs= needs Exec="),
        ("Image=a\n", "outside any"),
        ("[Container]\nImage\n", r"x.container:2: expected Key=Value"),
        ("[Container]\nImage=a\nNotify=ready\n", "Notify=ready is not supported"),
        ("[Container]\nImage=a\nStopTimeout=soon\n", "not a number"),
    ],
)
def test_bad_container_files(text, message):
    with pytest.raises(ConfigError, match=message):
        quadlet.convert(text, "/d/x.container", INVOCATION)


def test_unknown_section_is_a_warning():
    _, _, warnings = quadlet.convert(
        "[Container]\nImage=a\n[Pod]\nX=1\n", "/d/x.container", INVOCATION
    )
    assert warnings == ["/d/x.container: unknown section [Pod] ignored (near line 3)"]


# -- sd_notify ------------------------------------------------------------------------


def test_notify_message_and_abstract_address():
    assert notify.message({"READY": 1, "MAINPID": 42}) == b"READY=1\nMAINPID=42\n"
    assert notify.socket_address("@sd/notify") == b"\0sd/notify"
    assert notify.socket_address("/run/x") == "/run/x"
    with pytest.raises(ValueError):
        notify.message({"A=B": 1})


def test_notify_over_a_real_datagram_socket(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n"))
        assert notify.notify({"STATUS": "x\ny"}, str(tmp_path / "n"))
        assert sock.recv(100) == b"STATUS=x y\n"
    assert notify.notify({"READY": 1}, "") is False
    with pytest.raises(notify.NotifyError, match="cannot notify systemd"):
        notify.notify({"READY": 1}, str(tmp_path / "absent"))


def _received(sock: socket.socket) -> list[bytes]:
    sock.setblocking(False)
    out = []
    with contextlib.suppress(BlockingIOError):
        while True:
            out.append(sock.recv(200))
    return out


@pytest.mark.parametrize(
    ("mode", "on_start", "on_healthy"),
    [
        ("conmon", b"MAINPID=7\nREADY=1\nSTATUS=container running\n", None),
        ("container", b"MAINPID=7\n", None),
        (
            "healthy",
            b"MAINPID=7\nSTATUS=container running, waiting for its healthcheck to pass\n",
            b"MAINPID=7\nREADY=1\nSTATUS=container healthy\n",
        ),
        ("ignore", None, None),
        (None, None, None),
    ],
)
def test_notifier_modes_send_each_message_once(tmp_path, mode, on_start, on_healthy):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n"))
        notifier = notify.Notifier(mode, mainpid=7, notify_socket=str(tmp_path / "n"))
        notifier.started()
        notifier.started()  # a restart under the same supervisor
        assert _received(sock) == ([on_start] if on_start else [])
        notifier.healthy()
        notifier.healthy()  # every later passing check
        assert _received(sock) == ([on_healthy] if on_healthy else [])


def test_notify_healthy_container_file():
    _, text, _ = quadlet.convert(
        "[Container]\nImage=a\nHealthCmd=true\nNotify=healthy\n", "/d/x.container", INVOCATION
    )
    assert "--sdnotify=healthy" in dict(unit_entries(text, "Service"))["ExecStart"]


def test_container_socket_mounts_the_directory():
    assert notify.container_socket("/run/user/1/systemd/notify", "slirp4netns") == (
        "/run/user/1/systemd:/run/rootless-notify",
        "/run/rootless-notify/notify",
    )
    assert notify.container_socket("@abc", "host") == ("", "@abc")
    with pytest.raises(notify.NotifyError, match="abstract"):
        notify.container_socket("@abc", "slirp4netns")
    with pytest.raises(notify.NotifyError, match="NOTIFY_SOCKET"):
        notify.container_socket(None, "none")


# -- systemd-analyze verify -----------------------------------------------------------


def _verify(unit: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze not found; run: sudo apt-get install systemd")
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", unit.name],
        cwd=unit.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0 and unit.name not in r.stderr, r.stderr


def test_generated_units_pass_systemd_analyze_verify(tmp_path):
    options = {"create_command": ["run", "-d", "-e", "X=a b$c%d", "--rootfs", "/r",
                                  "sh", "-c", 'echo "$X"']}  # fmt: skip
    for new in (True, False):
        service = gen.container_service(name="web", options=options, invocation=INVOCATION, new=new)
        path = tmp_path / f"container-web-{new}.service"
        path.write_text(gen.render(service, header=path.name))
        _verify(path)


def test_generator_output_passes_systemd_analyze_verify(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "web.container").write_text(CONTAINER)
    (src / "broken.container").write_text("[Container]\nExec=true\n")
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, str(REPO / "helpers" / "rootless-generator"), str(out), "e", "l"],
        env={"ROOTLESS_QUADLET_DIRS": f"{src}:{tmp_path / 'absent'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1  # broken.container failed; web.container was still written
    assert "broken.container: [Container] needs exactly one of" in r.stderr
    assert "web.container:22: unknown key Frobnicate=" in r.stderr
    assert (out / "default.target.wants" / "web.service").resolve() == out / "web.service"
    assert (out / "multi-user.target.wants" / "web.service").is_symlink()
    assert not (out / "broken.service").exists()
    _verify(out / "web.service")
