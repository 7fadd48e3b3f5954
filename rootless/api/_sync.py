"""The synchronous API: the same operations as :class:`rootless.Client`, blocking.

Calls go to the client's runner process (see ``_runner``) over a plain socket; nothing
here imports trio, so it suits plain scripts and tests. Threads may share a client.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar, Unpack, overload

from rootless._paths import StoragePaths
from rootless.api import _cli, _link, _ops
from rootless.api._types import CompletedRun, Handle, Image, Logs
from rootless.network.ports import PortMapping

T = TypeVar("T")


class SyncClient:
    """Drives rootless from ordinary code; ``paths`` and ``env`` as for
    :class:`rootless.Client`. ``close()`` (or ``with``) ends its runner process."""

    def __init__(
        self, paths: StoragePaths | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.paths = paths
        self._env = _cli.cli_env(paths, env, os.environ)
        self._runner: subprocess.Popen[bytes] | None = None
        self._link: socket.socket | None = None
        self._replies = _link.Replies()
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the runner (calls still running get SIGTERM); the next call starts another."""
        with self._send_lock:
            if self._link is not None and self._runner is not None:
                self._link.close()
                self._runner.wait()
            self._link = self._runner = None

    def _start(self, argv: tuple[str, ...], stdio: tuple[int, int, int]) -> int:
        with self._send_lock:
            if _link.runner_lost(self._runner):
                if self._link is not None:
                    self._link.close()
                self._runner, self._link = _link.start_runner(self._env)
            assert self._link is not None
            call_id = self._replies.new_id()
            message = _link.start_message(call_id, argv, os.getcwd())
            socket.send_fds(self._link, [message], list(stdio))
        return call_id

    def _wait(self, call_id: int, timeout: float | None = None) -> int | None:
        """The call's exit code; None if ``timeout`` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self._replies.take(call_id)) is None:
            with self._recv_lock:
                if self._replies.has(call_id):
                    continue
                assert self._link is not None
                if deadline is not None:
                    left = max(deadline - time.monotonic(), 0)
                    if not select.select([self._link], [], [], left)[0]:
                        return None
                try:
                    self._replies.file(self._link.recv(_link.MAX_MESSAGE))
                except ConnectionResetError:  # the runner died
                    self._replies.file(b"")
        return code

    def _abort(self, call_id: int) -> None:
        """End an abandoned call: SIGTERM, then SIGKILL after the grace period."""
        with contextlib.suppress(OSError, _link.RunnerGone):  # no runner: no call either
            for signum in (signal.SIGTERM, signal.SIGKILL):
                if self._link is None:
                    return
                with self._send_lock:
                    self._link.send(_link.signal_message(call_id, signum))
                if self._wait(call_id, _link.CANCEL_GRACE) is not None:
                    return

    def _await(self, call_id: int) -> int:
        try:
            code = self._wait(call_id)
        except BaseException:
            self._abort(call_id)
            raise
        assert code is not None
        return code

    def _do(self, call: _ops.Call[T]) -> T:
        capture = _link.Capture()
        try:
            done = capture.done(call.argv, self._await(self._start(call.argv, capture.fds())))
        finally:
            capture.close()
        return _ops.finish(call, done)

    def _call(self, *args: str, check: bool = True) -> _ops.Done:
        """One ``rootless`` call by its arguments: its exit code and output."""
        return self._do(_ops.Call(args, lambda done: done, check))

    def pull(self, ref: str, *, tls_verify: bool | None = None) -> Image:
        """As :meth:`rootless.Client.pull`."""
        return self._do(_ops.pull(ref, tls_verify))

    def build(
        self,
        context: str | os.PathLike[str],
        *,
        tag: str,
        file: str | os.PathLike[str] | None = None,
        build_args: Mapping[str, str] | None = None,
        tls_verify: bool | None = None,
    ) -> Image:
        """As :meth:`rootless.Client.build`."""
        call = _ops.build(context, tag=tag, file=file, build_args=build_args, tls_verify=tls_verify)
        return self._do(call)

    @overload
    def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: Literal[True],
        **options: Unpack[_cli.RunKwargs],
    ) -> SyncContainer: ...

    @overload
    def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: Literal[False] = False,
        **options: Unpack[_cli.RunKwargs],
    ) -> CompletedRun: ...

    def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: bool = False,
        **options: Unpack[_cli.RunKwargs],
    ) -> SyncContainer | CompletedRun:
        """As :meth:`rootless.Client.run`."""
        if detach:
            return SyncContainer(self, self._do(_ops.run_detached(image, command, options)))
        return self._do(_ops.run_foreground(image, command, options))

    def compose_up(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        services: Sequence[str] = (),
    ) -> None:
        """As :meth:`rootless.Client.compose_up`."""
        self._do(_ops.compose_up(files, project, services))

    def compose_down(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        volumes: bool = False,
        timeout: float | None = None,
    ) -> None:
        """As :meth:`rootless.Client.compose_down`."""
        self._do(_ops.compose_down(files, project, volumes, timeout))

    def container(self, ref: str) -> SyncContainer:
        """A handle on an existing container, by name or ID (not checked until used)."""
        return SyncContainer(self, ref)


class SyncContainer(Handle[SyncClient]):
    """As :class:`rootless.Container`, with blocking methods."""

    def exec(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> CompletedRun:
        """As :meth:`rootless.Container.exec`."""
        return self.client._do(_ops.exec_(self.id, command, env, user, workdir))

    @overload
    def logs(self, *, follow: Literal[False] = False) -> Logs: ...

    @overload
    def logs(self, *, follow: Literal[True]) -> Iterator[bytes]: ...

    def logs(self, *, follow: bool = False) -> Logs | Iterator[bytes]:
        """The output so far; with ``follow=True`` an iterator of output lines (stdout and
        stderr in order) that ends when the container exits."""
        return self._follow() if follow else self.client._do(_ops.logs(self.id))

    def _follow(self) -> Iterator[bytes]:
        argv = _ops.follow_argv(self.id)
        holder = _cli.LineHolder()
        stream = _link.Stream()
        try:
            call_id = self.client._start(argv, stream.fds())
        finally:
            stream.started()
        try:
            try:
                while chunk := os.read(stream.reader, 65536):
                    yield from holder.feed(chunk)
            except BaseException:  # GeneratorExit: the consumer stopped early
                self.client._abort(call_id)
                raise
        finally:
            stream.close()
        lines, error = _link.end_of_stream(holder, argv, self.client._await(call_id))
        yield from lines
        if error is not None:
            raise error

    def stop(self, timeout: float | None = None) -> None:
        """As :meth:`rootless.Container.stop`."""
        self.client._do(_ops.stop(self.id, timeout))

    def wait(self) -> int:
        """As :meth:`rootless.Container.wait`."""
        return self.client._do(_ops.wait(self.id))

    def remove(self, force: bool = False) -> None:
        """As :meth:`rootless.Container.remove`."""
        self.client._do(_ops.remove(self.id, force))

    def inspect(self) -> dict[str, Any]:
        """As :meth:`rootless.Container.inspect`."""
        return self.client._do(_ops.inspect(self.id))

    def ports(self) -> list[PortMapping]:
        """As :meth:`rootless.Container.ports`."""
        return self.client._do(_ops.ports(self.id))
