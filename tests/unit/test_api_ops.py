"""The API's shared core: operations (argv and result reading), the link's messages and
bookkeeping, and what the runner imports ahead."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rootless.api import _link, _ops, _runner
from rootless.api._types import CompletedRun, Image, Logs
from rootless.container.records import NoSuchContainer
from rootless.errors import CommandNotFound, RootlessError
from rootless.network.ports import PortMapping


def done(argv: tuple[str, ...], code: int, out: bytes = b"", err: bytes = b"") -> _ops.Done:
    return subprocess.CompletedProcess(argv, code, out, err)


def test_each_operation_reads_its_output() -> None:
    pull = _ops.pull("reg/x:1", tls_verify=False)
    assert pull.argv == ("pull", "--quiet", "--tls-verify=false", "reg/x:1")
    assert _ops.finish(pull, done(pull.argv, 0, b"abc\n")) == Image("abc", "reg/x:1")

    build = _ops.build("ctx", tag="t", file=None, build_args=None, tls_verify=None)
    assert build.argv == ("build", "--quiet", "--tag=t", "ctx")
    assert _ops.finish(build, done(build.argv, 0, b"step output\nf00d\n")) == Image("f00d", "t")

    detached = _ops.run_detached("img", ["sleep", "9"], {"name": "n"})
    assert detached.argv == ("run", "--detach", "--name=n", "--", "img", "sleep", "9")
    assert _ops.finish(detached, done(detached.argv, 0, b"c1d\n")) == "c1d"

    assert _ops.finish(_ops.wait("c"), done(("wait", "c"), 0, b"3\n")) == 3
    assert _ops.finish(_ops.logs("c"), done(("logs", "c"), 0, b"o", b"e")) == Logs(b"o", b"e")
    inspect = _ops.inspect("c")
    assert _ops.finish(inspect, done(inspect.argv, 0, json.dumps([{"Id": "c"}]).encode())) == {
        "Id": "c"
    }
    ports = _ops.ports("c")
    assert _ops.finish(ports, done(ports.argv, 0, b"80/tcp -> 0.0.0.0:8080\n")) == [
        PortMapping("0.0.0.0", 8080, 80, "tcp")
    ]
    assert _ops.stop("c", 2).argv == ("stop", "--time=2", "c")
    assert _ops.remove("c", True).argv == ("rm", "--force", "c")
    assert _ops.follow_argv("c") == ("logs", "--follow", "c")
    up = _ops.compose_up(["f.yaml"], "p", ["web"])
    assert up.argv == ("compose", "--file=f.yaml", "--project-name=p", "up", "--detach", "web")
    assert _ops.finish(up, done(up.argv, 0)) is None


def test_a_failed_call_raises_the_clis_error() -> None:
    stop = _ops.stop("c", None)
    with pytest.raises(NoSuchContainer) as info:
        _ops.finish(stop, done(stop.argv, 125, b"", b'Error: no container with name or ID "c"\n'))
    assert info.value.exit_code == 125


def test_container_commands_pass_their_exit_codes_through() -> None:
    run = _ops.run_foreground("img", ["sh"], {})
    assert not run.check
    own = _ops.finish(run, done(run.argv, 127, b"out", b"sh: x: not found\n"))
    assert own == CompletedRun(127, b"out", b"sh: x: not found\n")
    with pytest.raises(CommandNotFound):
        _ops.finish(run, done(run.argv, 127, b"", b"Error: executable file `x` not found\n"))
    exec_ = _ops.exec_("c", ["ls"], {"K": "v"}, None, "/w")
    assert exec_.argv == ("exec", "--env=K=v", "--workdir=/w", "c", "--", "ls")
    assert _ops.finish(exec_, done(exec_.argv, 4)) == CompletedRun(4, b"", b"")


def test_messages_and_replies() -> None:
    start = json.loads(_link.start_message(7, ("run", "x"), "/w"))
    assert start == {"id": 7, "argv": ["run", "x"], "cwd": "/w"}
    assert json.loads(_link.signal_message(7, 15)) == {"id": 7, "signal": 15}
    replies = _link.Replies()
    first, second = replies.new_id(), replies.new_id()
    assert first != second
    replies.file(_link.reply_message(second, 3))
    assert not replies.has(first) and replies.has(second)
    assert replies.take(first) is None
    assert replies.take(second) == 3 and replies.take(second) is None
    with pytest.raises(_link.RunnerGone, match="runner process exited"):
        replies.file(b"")


def test_a_capture_returns_what_was_written() -> None:
    import os

    capture = _link.Capture()
    try:
        os.write(capture.stdout, b"x" * 70000)
        os.write(capture.stderr, b"err")
        result = capture.done(("v",), 2)
    finally:
        capture.close()
    assert (result.returncode, len(result.stdout), result.stderr) == (2, 70000, b"err")


def test_end_of_stream_yields_held_lines_then_the_error() -> None:
    from rootless.api._cli import LineHolder

    ok = LineHolder()
    ok.feed(b"a\nb")
    assert _link.end_of_stream(ok, ("logs",), 0) == ([b"b"], None)
    failed = LineHolder()
    failed.feed(b"a\nError: no such container: c\n")
    lines, error = _link.end_of_stream(failed, ("logs",), 125)
    assert lines == [] and isinstance(error, RootlessError)
    assert str(error) == "no such container: c"


def test_warm_imports_the_engine_and_the_standard_library_only() -> None:
    code = (
        "import sys; from rootless.api._runner import warm; "
        "warm(['json.tool', 'rootless.volumes.parse', 'pytest', 'rootless.no_such_module']); "
        "print(sorted(m for m in ('json.tool', 'rootless.volumes.parse', 'pytest') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['json.tool', 'rootless.volumes.parse']"
    assert _runner.WARM_MODULES[0] == "rootless.cli"


def test_the_run_path_opens_nothing_at_import() -> None:
    """The runner forks every call from what it imported: an import that opened a file
    (a database, a socket) or started a thread would be shared by every call."""
    code = (
        "import os, threading; before = set(os.listdir('/proc/self/fd')); "
        "from rootless.api._runner import WARM_MODULES, warm; "
        "warm([*WARM_MODULES, 'rootless.runtime.launch', 'rootless.runtime.init', "
        "'rootless.engine.images', 'rootless.engine.network', 'rootless.container.records', "
        "'rootless.image.store', 'rootless.volumes']); "
        "print(sorted(set(os.listdir('/proc/self/fd')) - before), threading.active_count())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "1"], out.stdout + out.stderr
