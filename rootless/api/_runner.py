"""The API's runner: one warm process per client that forks a process per call.

``python -m rootless.api._runner FD``, started by a client (``_link.start_runner``)
with its end of the link as FD. Each call's process is a fork of this one running
``rootless.cli.entry`` on the call's argv: the very code path of the ``rootless``
command, with the call's stdio, working directory and ``sys.argv``, so behaviour,
messages and exit codes are the CLI's. What a fresh ``rootless`` process pays on every call (the
interpreter, the imports, the argument parser) is paid here once.

Why a process of its own: the engine forks and runs Python in the child, which is
only safe in a process with one thread, and a client program (trio, above all) has
several. This process never starts a thread (it checks after every import) and opens
nothing that must not cross a fork (no SQLite, no event loop): it only imports
modules, builds parsers and forks.

It warms itself: each call's process reports the modules it imported, and the runner
imports them so the next call finds them loaded. So the engine's modules must keep
importing cleanly: no file, database or socket opened and no thread started at import
(tests/unit/test_api_ops.py checks the run path), and no module-level cache of what
may change between calls (configuration files, the environment) unless it is checked
on use. It ends when the client's end of the
link closes (the client closed it or died): calls still running get SIGTERM, as from
a terminal, and are waited for. A call's process dies with the runner
(PR_SET_PDEATHSIG), and the container with it, as a killed ``rootless run`` does.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from typing import NoReturn

import attrs

from rootless.api._link import MAX_MESSAGE, reply_message

# Stop the runner; blocked while forking so that no call's process inherits a pending one.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# What a ``rootless run`` imports before its first fork; the rest is learnt from calls.
WARM_MODULES = ("rootless.cli", "rootless.cli.run", "rootless.engine.containers")
# Bytes of module names a call's process reports: less than a pipe holds, so its
# non-blocking write never waits for the runner.
_REPORT_LIMIT = 60_000


class _Stop(Exception):
    """SIGTERM, SIGINT or SIGHUP to the runner: end like at the end of the link."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop


@attrs.define
class _Call:
    call_id: int
    pid: int
    report_r: int
    argv: list[str]


class Runner:
    """The serving loop: messages from the link, and the ends of the calls' processes
    (their pidfds), in one poll; one process per call, any number at once."""

    def __init__(self, link: socket.socket) -> None:
        self.link = link
        self.calls: dict[int, _Call] = {}  # by pidfd
        self.parsers: dict[str | None, argparse.ArgumentParser] = {}
        self.parsed: set[str | None] = set()  # verbs whose parser has parsed here
        self.poll = select.poll()
        self.poll.register(link, select.POLLIN)

    def serve(self) -> None:
        try:
            while True:
                for fd, _ in self.poll.poll():
                    if fd == self.link.fileno():
                        if not self._receive():
                            return
                    else:
                        self._reap(fd)
        except (_Stop, OSError):  # OSError: the client's end is gone mid-send
            return
        finally:
            self._end_calls()

    def _receive(self) -> bool:
        """Handle one message; False at the end of the link."""
        data, fds, _, _ = socket.recv_fds(self.link, MAX_MESSAGE, 3)
        try:
            if not data:
                return False
            message = json.loads(data)
            if "argv" in message:
                self._start(int(message["id"]), message["argv"], message["cwd"], fds)
            else:
                self._signal(int(message["id"]), int(message["signal"]))
        finally:
            for fd in fds:
                os.close(fd)
        return True

    def _parser(self, argv: list[str]) -> argparse.ArgumentParser:
        from rootless.cli import build_parser, first_verb

        verb = first_verb(argv)
        if verb not in self.parsers:
            self.parsers[verb] = build_parser(verb)
        return self.parsers[verb]

    def _start(self, call_id: int, argv: list[str], cwd: str, stdio: list[int]) -> None:
        from rootless.runtime.userns import fork_tied

        parser = self._parser(argv)
        report_r, report_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = fork_tied()
            if pid == 0:
                ours = [self.link.fileno(), report_r, *self._fds()]
                _call(argv, cwd, stdio, parser, report_w, ours, mask)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(report_w)
        pidfd = os.pidfd_open(pid)
        self.calls[pidfd] = _Call(call_id, pid, report_r, argv)
        self.poll.register(pidfd, select.POLLIN)

    def _fds(self) -> list[int]:
        return [fd for pidfd, call in self.calls.items() for fd in (pidfd, call.report_r)]

    def _signal(self, call_id: int, signum: int) -> None:
        for pidfd, call in self.calls.items():
            if call.call_id == call_id:
                with contextlib.suppress(ProcessLookupError):  # it is ending anyway
                    signal.pidfd_send_signal(pidfd, signum)

    def _reap(self, pidfd: int) -> None:
        call = self.calls.pop(pidfd)
        self.poll.unregister(pidfd)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(os.waitpid(call.pid, 0)[1])
        report = _read_report(call.report_r)
        self.link.send(reply_message(call.call_id, 128 - code if code < 0 else code))
        warm(report.split())
        self._warm_parser(call.argv)

    def _warm_parser(self, argv: list[str]) -> None:
        """Parse a verb's command line once here too: argparse matches with regular
        expressions it compiles on first use, ~1.5 ms a call if every call compiles them.
        Parsing has no side effects (the CLI's types are pure); its output is dropped."""
        from rootless.cli import first_verb

        verb = first_verb(argv)
        if verb in self.parsed:
            return
        self.parsed.add(verb)
        sink = io.StringIO()
        with (
            contextlib.redirect_stdout(sink),
            contextlib.redirect_stderr(sink),
            contextlib.suppress(Exception, SystemExit),
        ):
            self._parser(argv).parse_known_args(argv)
        gc.freeze()

    def _end_calls(self) -> None:
        for pidfd in self.calls:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        for pidfd, call in self.calls.items():
            os.waitpid(call.pid, 0)
            os.close(pidfd)
            os.close(call.report_r)
        self.calls.clear()


def _read_report(fd: int) -> str:
    try:
        return os.read(fd, _REPORT_LIMIT * 2).decode()
    except BlockingIOError:  # the process reported nothing (it died first)
        return ""
    finally:
        os.close(fd)


def _call(
    argv: list[str],
    cwd: str,
    stdio: list[int],
    parser: argparse.ArgumentParser,
    report_w: int,
    ours: list[int],
    mask: Iterable[int],
) -> NoReturn:
    """A call's process: ``rootless ARGV`` as the ``rootless`` command runs it (its
    ``entry``), then the report of the modules it loaded."""
    try:
        # The CLI's signal dispositions, then the signals that came during the fork.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in ours:
            os.close(fd)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for fd in set(stdio) - {0, 1, 2}:
            os.close(fd)
        os.chdir(cwd)
        sys.argv = [sys.argv[0], *argv]  # main() reads it; `run` records it
        atexit.register(_report, set(sys.modules), report_w)
        from rootless.cli import entry

        entry(parser)  # exits
    except KeyboardInterrupt:
        code = 130
    except _Stop:  # the runner's handler ran here for a signal sent just before the fork
        code = 128 + signal.SIGTERM
    except BaseException:
        import traceback

        traceback.print_exc()  # what Python does with an uncaught exception
        code = 1
    with contextlib.suppress(BaseException):
        sys.stderr.flush()
    os._exit(code)


def _report(before: set[str], report_w: int) -> None:
    """Tell the runner which modules this call imported (at exit, with atexit's hooks)."""
    loaded = "\n".join(sorted(set(sys.modules) - before)).encode()
    if len(loaded) <= _REPORT_LIMIT:
        with contextlib.suppress(OSError):
            os.write(report_w, loaded)


def warm(modules: Iterable[str]) -> None:
    """Import what a call's process loaded: rootless' modules and the standard library's."""
    for name in modules:
        root = name.partition(".")[0]
        if name in sys.modules or not (root == "rootless" or root in sys.stdlib_module_names):
            continue
        try:
            importlib.import_module(name)
        except Exception:  # a module that imports only in its own context (a __main__)
            continue
    if threading.active_count() != 1:
        raise SystemExit("rootless API runner: an import started a thread; forking is unsafe")
    # Out of the collector's sight: a collection in a call's process would otherwise
    # touch every object and copy most of the heap (~7 ms a call, measured).
    gc.freeze()


def main(argv: list[str]) -> int:
    link = socket.socket(fileno=int(argv[0]))
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    from rootless.engine.heldns import hold_user_namespace
    from rootless.runtime.userns import kill_and_reap

    holder = None
    try:
        warm(WARM_MODULES)
        # Calls' containers join one mapped user namespace (engine/heldns.py).
        holder = hold_user_namespace()
        Runner(link).serve()
    except _Stop:
        pass
    finally:
        if holder is not None:
            kill_and_reap(holder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
