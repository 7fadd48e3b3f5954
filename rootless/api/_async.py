"""The async API on trio: each operation is one ``rootless`` CLI call in a fresh process.

Why processes and not in-process engine calls: the engine forks and runs Python in the
child (the user namespace, the container's first stages), which is only safe while the
process has one thread. A program using this API may have started threads, so the
work that forks happens in a helper that has none: ``python -m rootless VERB``. The
API then takes the same code path as the CLI and reads its JSON and plain output.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Unpack, overload

from rootless._paths import StoragePaths
from rootless.api import _cli
from rootless.api._types import CompletedRun, Image, Logs
from rootless.network.ports import PortMapping


class Client:
    """Drives rootless from trio code; every method runs one ``rootless`` call.

    ``paths`` chooses the storage roots (default: the user's, from the environment, as
    the CLI finds them); ``env`` adds variables to the helper's environment.
    """

    def __init__(
        self, paths: StoragePaths | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.paths = paths
        self._env = _cli.cli_env(paths, env, os.environ)

    async def _call(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        import trio

        done = await trio.run_process(
            _cli.cli_argv(*args),
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=self._env,
        )
        if check and done.returncode != 0:
            raise _cli.cli_error(args, done.returncode, done.stderr)
        return done

    async def pull(self, ref: str, *, tls_verify: bool | None = None) -> Image:
        """Pull ``ref`` from its registry (``rootless pull``)."""
        done = await self._call("pull", "--quiet", *_cli.tls_flag(tls_verify), ref)
        return Image(done.stdout.decode().strip(), ref)

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
        with tempfile.TemporaryDirectory(prefix="rootless-api-") as tmp:
            iidfile = Path(tmp) / "iid"
            await self._call(
                *_cli.build_argv(
                    context,
                    tag=tag,
                    file=file,
                    build_args=build_args or {},
                    iidfile=iidfile,
                    tls_verify=tls_verify,
                )
            )
            image_id = iidfile.read_text().strip()
        return Image(image_id.removeprefix("sha256:"), tag)

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
        argv = _cli.run_argv(image, command, detach, options)
        done = await self._call(*argv, check=detach)
        if detach:
            return Container(self, done.stdout.decode().strip())
        if _cli.engine_failed(done.returncode, done.stderr):
            raise _cli.cli_error(argv, done.returncode, done.stderr)
        return CompletedRun(done.returncode, done.stdout, done.stderr)

    async def compose_up(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        services: Sequence[str] = (),
    ) -> None:
        """Start a compose project detached (``rootless compose up -d``); ``files``
        default to compose.yaml (or its variants) in the current directory."""
        await self._call(*_cli.compose_argv(files, project, _cli.compose_up_verb(services)))

    async def compose_down(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        volumes: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Stop and remove a compose project's containers and networks (``compose down``)."""
        await self._call(
            *_cli.compose_argv(files, project, _cli.compose_down_verb(volumes, timeout))
        )

    def container(self, ref: str) -> Container:
        """A handle on an existing container, by name or ID (not checked until used)."""
        return Container(self, ref)


class Container:
    """A container the client started or named; ``id`` is its ID (or the name given)."""

    def __init__(self, client: Client, id: str) -> None:
        self.client = client
        self.id = id

    def __repr__(self) -> str:
        return f"Container({self.id[:12]!r})"

    async def exec(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> CompletedRun:
        """Run ``command`` in the running container; its exit code and output."""
        argv = _cli.exec_argv(self.id, command, env=env or {}, user=user, workdir=workdir)
        done = await self.client._call(*argv, check=False)
        if _cli.engine_failed(done.returncode, done.stderr):
            raise _cli.cli_error(argv, done.returncode, done.stderr)
        return CompletedRun(done.returncode, done.stdout, done.stderr)

    @overload
    def logs(self, *, follow: Literal[False] = False) -> Coroutine[Any, Any, Logs]: ...

    @overload
    def logs(self, *, follow: Literal[True]) -> AsyncIterator[bytes]: ...

    def logs(self, *, follow: bool = False) -> Coroutine[Any, Any, Logs] | AsyncIterator[bytes]:
        """``await c.logs()``: the output so far; ``async for line in c.logs(follow=True)``:
        stdout and stderr lines in order as they come, until the container exits."""
        return self._follow() if follow else self._logs()

    async def _logs(self) -> Logs:
        done = await self.client._call("logs", self.id)
        return Logs(done.stdout, done.stderr)

    async def _follow(self) -> AsyncIterator[bytes]:
        import trio

        argv = ["logs", "--follow", self.id]
        holder = _cli.LineHolder()
        process = await trio.lowlevel.open_process(
            _cli.cli_argv(*argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.client._env,
        )
        assert process.stdout is not None
        try:
            async for chunk in process.stdout:
                for line in holder.feed(bytes(chunk)):
                    yield line
            code = await process.wait()
            lines, message = holder.finish(code == 0)
            for line in lines:
                yield line
            if code != 0:
                raise _cli.cli_error(argv, code, message)
        finally:
            # The consumer may stop early: end the helper, which only reads a file.
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
                await process.stdout.aclose()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop: the stop signal, ``timeout`` seconds (default: the container's), SIGKILL."""
        await self.client._call(*_cli.stop_argv(self.id, timeout))

    async def wait(self) -> int:
        """Wait for the container to exit; its exit code."""
        done = await self.client._call("wait", self.id)
        return int(done.stdout.split()[-1])

    async def remove(self, force: bool = False) -> None:
        """Remove the container; ``force`` stops it first if it runs."""
        await self.client._call(*_cli.rm_argv(self.id, force))

    async def inspect(self) -> dict[str, Any]:
        """The container as ``rootless inspect`` shows it."""
        done = await self.client._call("inspect", "--type=container", self.id)
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found[0]

    async def ports(self) -> list[PortMapping]:
        """The published ports (``rootless port``)."""
        done = await self.client._call("port", self.id)
        return _cli.parse_ports(done.stdout.decode())
