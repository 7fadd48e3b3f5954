"""The synchronous API: the same operations as :class:`rootless.Client`, without trio.

Each method runs one ``rootless`` call with :mod:`subprocess` (see ``_async`` for why a
helper process); nothing here imports trio, so it suits plain scripts and tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Unpack, overload

from rootless._paths import StoragePaths
from rootless.api import _cli
from rootless.api._types import CompletedRun, Image, Logs
from rootless.network.ports import PortMapping


class SyncClient:
    """Drives rootless from ordinary code; every method runs one ``rootless`` call.

    ``paths`` and ``env`` as for :class:`rootless.Client`.
    """

    def __init__(
        self, paths: StoragePaths | None = None, *, env: Mapping[str, str] | None = None
    ) -> None:
        self.paths = paths
        self._env = _cli.cli_env(paths, env, os.environ)

    def _call(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            _cli.cli_argv(*args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            env=self._env,
        )
        if check and done.returncode != 0:
            raise _cli.cli_error(args, done.returncode, done.stderr)
        return done

    def pull(self, ref: str, *, tls_verify: bool | None = None) -> Image:
        """Pull ``ref`` from its registry (``rootless pull``)."""
        done = self._call("pull", "--quiet", *_cli.tls_flag(tls_verify), ref)
        return Image(done.stdout.decode().strip(), ref)

    def build(
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
            self._call(
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
        argv = _cli.run_argv(image, command, detach, options)
        done = self._call(*argv, check=detach)
        if detach:
            return SyncContainer(self, done.stdout.decode().strip())
        if _cli.engine_failed(done.returncode, done.stderr):
            raise _cli.cli_error(argv, done.returncode, done.stderr)
        return CompletedRun(done.returncode, done.stdout, done.stderr)

    def compose_up(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        services: Sequence[str] = (),
    ) -> None:
        """Start a compose project detached (``rootless compose up -d``); ``files``
        default to compose.yaml (or its variants) in the current directory."""
        self._call(*_cli.compose_argv(files, project, _cli.compose_up_verb(services)))

    def compose_down(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        project: str | None = None,
        volumes: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Stop and remove a compose project's containers and networks (``compose down``)."""
        self._call(*_cli.compose_argv(files, project, _cli.compose_down_verb(volumes, timeout)))

    def container(self, ref: str) -> SyncContainer:
        """A handle on an existing container, by name or ID (not checked until used)."""
        return SyncContainer(self, ref)


class SyncContainer:
    """As :class:`rootless.Container`, with blocking methods."""

    def __init__(self, client: SyncClient, id: str) -> None:
        self.client = client
        self.id = id

    def __repr__(self) -> str:
        return f"SyncContainer({self.id[:12]!r})"

    def exec(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
    ) -> CompletedRun:
        """Run ``command`` in the running container; its exit code and output."""
        argv = _cli.exec_argv(self.id, command, env=env or {}, user=user, workdir=workdir)
        done = self.client._call(*argv, check=False)
        if _cli.engine_failed(done.returncode, done.stderr):
            raise _cli.cli_error(argv, done.returncode, done.stderr)
        return CompletedRun(done.returncode, done.stdout, done.stderr)

    @overload
    def logs(self, *, follow: Literal[False] = False) -> Logs: ...

    @overload
    def logs(self, *, follow: Literal[True]) -> Iterator[bytes]: ...

    def logs(self, *, follow: bool = False) -> Logs | Iterator[bytes]:
        """The output so far; with ``follow=True`` an iterator of output lines (stdout and
        stderr in order) that ends when the container exits."""
        if follow:
            return self._follow()
        done = self.client._call("logs", self.id)
        return Logs(done.stdout, done.stderr)

    def _follow(self) -> Iterator[bytes]:
        argv = ["logs", "--follow", self.id]
        holder = _cli.LineHolder()
        with subprocess.Popen(
            _cli.cli_argv(*argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.client._env,
        ) as process:
            assert process.stdout is not None
            try:
                while chunk := os.read(process.stdout.fileno(), 65536):
                    yield from holder.feed(chunk)
            finally:
                if process.poll() is None:  # the consumer stopped early
                    process.kill()
            code = process.wait()
        lines, message = holder.finish(code == 0)
        yield from lines
        if code != 0:
            raise _cli.cli_error(argv, code, message)

    def stop(self, timeout: float | None = None) -> None:
        """Stop: the stop signal, ``timeout`` seconds (default: the container's), SIGKILL."""
        self.client._call(*_cli.stop_argv(self.id, timeout))

    def wait(self) -> int:
        """Wait for the container to exit; its exit code."""
        return int(self.client._call("wait", self.id).stdout.split()[-1])

    def remove(self, force: bool = False) -> None:
        """Remove the container; ``force`` stops it first if it runs."""
        self.client._call(*_cli.rm_argv(self.id, force))

    def inspect(self) -> dict[str, Any]:
        """The container as ``rootless inspect`` shows it."""
        done = self.client._call("inspect", "--type=container", self.id)
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found[0]

    def ports(self) -> list[PortMapping]:
        """The published ports (``rootless port``)."""
        return _cli.parse_ports(self.client._call("port", self.id).stdout.decode())
