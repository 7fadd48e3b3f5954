"""The async API on trio: each operation is one ``rootless`` command line, run by the
client's runner process (``_runner``) in a fork of itself.

Why a runner and not in-process engine calls: the engine forks and runs Python in the
child (the user namespace, the container's first stages), which is only safe while
the process has one thread, and a trio program has several. The runner has one, has
already imported the engine, and runs each call through the CLI's own code path, so
the API behaves exactly as the CLI does, errors and exit codes included.
"""

from __future__ import annotations

import array
import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from rootless._paths import StoragePaths
from rootless.api import _cli, _link, _ops
from rootless.api._types import CompletedRun, Handle, Image, Logs
from rootless.network.ports import PortMapping

if TYPE_CHECKING:
    import trio

T = TypeVar("T")


class Client:
    """Drives rootless from trio code; every method runs one ``rootless`` call.

    ``paths`` chooses the storage roots (default: the user's, from the environment, as
    the CLI finds them); ``env`` adds variables to the runner's environment. The runner
    starts with the first call; ``await aclose()`` (or ``async with``) ends it, as
    does the end of the program.
    """

    def __init__(
        self, paths: StoragePaths | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.paths = paths
        self._env = _cli.cli_env(paths, env, os.environ)
        self._runner: subprocess.Popen[bytes] | None = None
        self._link: trio.socket.SocketType | None = None
        self._replies = _link.Replies()
        self._lock_pair: tuple[trio.Lock, trio.Lock] | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End the runner (calls still running get SIGTERM); the next call starts another."""
        import trio

        link, runner = self._link, self._runner
        self._link = self._runner = None
        if link is None or runner is None:
            return
        link.close()
        if runner.poll() is None:
            pidfd = os.pidfd_open(runner.pid)
            try:
                with trio.CancelScope(shield=True):
                    await trio.lowlevel.wait_readable(pidfd)
            finally:
                os.close(pidfd)
        runner.wait()

    def _locks(self) -> tuple[trio.Lock, trio.Lock]:
        """(send, receive): made on first use, inside a trio run."""
        import trio

        if self._lock_pair is None:
            self._lock_pair = (trio.Lock(), trio.Lock())
        return self._lock_pair

    async def _send(self, message: bytes, fds: Sequence[int] = ()) -> None:
        assert self._link is not None
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        async with self._locks()[0]:
            await self._link.sendmsg([message], rights)

    async def _start(self, argv: tuple[str, ...], stdio: tuple[int, int, int]) -> int:
        import trio

        if _link.runner_lost(self._runner):  # none yet, or it died: a new one
            if self._link is not None:
                self._link.close()
            self._runner, ours = _link.start_runner(self._env)
            self._link = trio.socket.from_stdlib_socket(ours)
        call_id = self._replies.new_id()
        await self._send(_link.start_message(call_id, argv, os.getcwd()), stdio)
        return call_id

    async def _wait(self, call_id: int) -> int:
        link = self._link
        assert link is not None
        while (code := self._replies.take(call_id)) is None:
            async with self._locks()[1]:
                if self._replies.has(call_id):
                    continue
                try:
                    self._replies.file(await link.recv(_link.MAX_MESSAGE))
                except ConnectionResetError:  # the runner died
                    self._replies.file(b"")
        return code

    async def _abort(self, call_id: int) -> None:
        """End a cancelled call: SIGTERM, then SIGKILL after the grace period."""
        import trio

        # No runner (it died): no call either.
        with trio.CancelScope(shield=True), contextlib.suppress(OSError, _link.RunnerGone):
            for signum in (signal.SIGTERM, signal.SIGKILL):
                if self._link is None:
                    return
                await self._send(_link.signal_message(call_id, signum))
                with trio.move_on_after(_link.CANCEL_GRACE):
                    await self._wait(call_id)
                    return

    async def _await(self, call_id: int) -> int:
        try:
            return await self._wait(call_id)
        except BaseException:  # cancelled: the call's process must end too
            await self._abort(call_id)
            raise

    async def _do(self, call: _ops.Call[T]) -> T:
        capture = _link.Capture()
        try:
            code = await self._await(await self._start(call.argv, capture.fds()))
            done = capture.done(call.argv, code)
        finally:
            capture.close()
        return _ops.finish(call, done)

    async def _call(self, *args: str, check: bool = True) -> _ops.Done:
        """One ``rootless`` call by its arguments: its exit code and output."""
        return await self._do(_ops.Call(args, lambda done: done, check))

    async def pull(self, ref: str, *, tls_verify: bool | None = None) -> Image:
        """Pull ``ref`` from its registry (``rootless pull``)."""
        return await self._do(_ops.pull(ref, tls_verify))

    async def build(
        self,
        context: str | os.PathLike[str],
        *,
        tag: str,
        file: str | os.PathLike[str] | None = None,
        build_args: Mapping[str, str] | None = None,
        tls_verify: bool | None = None,
    ) -> Image:
        """Build the Containerfile in ``context`` (or ``file``) and name it ``tag``."""
        call = _ops.build(context, tag=tag, file=file, build_args=build_args, tls_verify=tls_verify)
        return await self._do(call)

    @overload
    async def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: Literal[True],
        **options: Unpack[_cli.RunKwargs],
    ) -> Container: ...

    @overload
    async def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: Literal[False] = False,
        **options: Unpack[_cli.RunKwargs],
    ) -> CompletedRun: ...

    async def run(
        self,
        image: str,
        command: Sequence[str] = (),
        *,
        detach: bool = False,
        **options: Unpack[_cli.RunKwargs],
    ) -> Container | CompletedRun:
        """Run ``command`` in a new container from ``image`` (pulled when missing).

        In the foreground (the default) wait for it and return its exit code and output;
        with ``detach=True`` return a :class:`Container` at once, running under its own
        monitor. Raises :class:`~rootless.errors.RootlessError` when the engine fails.
        """
        if detach:
            return Container(self, await self._do(_ops.run_detached(image, command, options)))
        return await self._do(_ops.run_foreground(image, command, options))

    async def compose_up(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        services: Sequence[str] = (),
    ) -> None:
        """Start a compose project detached (``rootless compose up -d``); ``files``
        default to compose.yaml (or its variants) in the current directory."""
        await self._do(_ops.compose_up(files, project, services))

    async def compose_down(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        volumes: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Stop and remove a compose project's containers and networks (``compose down``)."""
        await self._do(_ops.compose_down(files, project, volumes, timeout))

    def container(self, ref: str) -> Container:
        """A handle on an existing container, by name or ID (not checked until used)."""
        return Container(self, ref)


class Container(Handle[Client]):
    """A container the client started or named; ``id`` is its ID (or the name given)."""

    async def exec(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> CompletedRun:
        """Run ``command`` in the running container; its exit code and output."""
        return await self.client._do(_ops.exec_(self.id, command, env, user, workdir))

    @overload
    def logs(self, *, follow: Literal[False] = False) -> Coroutine[Any, Any, Logs]: ...

    @overload
    def logs(self, *, follow: Literal[True]) -> AsyncIterator[bytes]: ...

    def logs(self, *, follow: bool = False) -> Coroutine[Any, Any, Logs] | AsyncIterator[bytes]:
        """``await c.logs()``: the output so far; ``async for line in c.logs(follow=True)``:
        stdout and stderr lines in order as they come, until the container exits."""
        return self._follow() if follow else self.client._do(_ops.logs(self.id))

    async def _follow(self) -> AsyncIterator[bytes]:
        import trio

        argv = _ops.follow_argv(self.id)
        holder = _cli.LineHolder()
        stream = _link.Stream()
        try:
            call_id = await self.client._start(argv, stream.fds())
        finally:
            stream.started()
        reader = trio.lowlevel.FdStream(stream.reader)  # owns the fd from here
        try:
            try:
                while chunk := await reader.receive_some(65536):
                    for line in holder.feed(bytes(chunk)):
                        yield line
            except BaseException:  # the consumer stopped early, or was cancelled
                await self.client._abort(call_id)
                raise
        finally:
            with trio.CancelScope(shield=True):
                await reader.aclose()
        lines, error = _link.end_of_stream(holder, argv, await self.client._await(call_id))
        for line in lines:
            yield line
        if error is not None:
            raise error

    async def stop(self, timeout: float | None = None) -> None:
        """Stop: the stop signal, ``timeout`` seconds (default: the container's), SIGKILL."""
        await self.client._do(_ops.stop(self.id, timeout))

    async def wait(self) -> int:
        """Wait for the container to exit; its exit code."""
        return await self.client._do(_ops.wait(self.id))

    async def remove(self, force: bool = False) -> None:
        """Remove the container; ``force`` stops it first if it runs."""
        await self.client._do(_ops.remove(self.id, force))

    async def inspect(self) -> dict[str, Any]:
        """The container as ``rootless inspect`` shows it."""
        return await self.client._do(_ops.inspect(self.id))

    async def ports(self) -> list[PortMapping]:
        """The published ports (``rootless port``)."""
        return await self.client._do(_ops.ports(self.id))
