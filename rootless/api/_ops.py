"""The API's operations, each one ``rootless`` command line and the reading of its result.

This is the one core both clients share: :class:`rootless.Client` awaits a
:class:`Call`'s command and :class:`rootless.SyncClient` blocks on it, and both hand
the outcome to :func:`finish`. Nothing here runs a process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from subprocess import CompletedProcess
from typing import Any, Generic, TypeVar

import attrs

from rootless.api import _cli
from rootless.api._types import CompletedRun, Image, Logs
from rootless.network.ports import PortMapping

T = TypeVar("T")

Done = CompletedProcess[bytes]


@attrs.frozen
class Call(Generic[T]):
    """One CLI call: its arguments, whether a non-zero exit is an error, and its result."""

    argv: tuple[str, ...]
    read: Callable[[Done], T]
    check: bool = True


def finish(call: Call[T], done: Done) -> T:
    """The call's result, or the error of the CLI's failure."""
    if call.check and done.returncode != 0:
        raise _cli.cli_error(call.argv, done.returncode, done.stderr)
    return call.read(done)


def _nothing(done: Done) -> None:
    return None


def _completed(argv: Sequence[str]) -> Callable[[Done], CompletedRun]:
    """A container command's own exit code and output; the engine's failure raises."""

    def read(done: Done) -> CompletedRun:
        if _cli.engine_failed(done.returncode, done.stderr):
            raise _cli.cli_error(argv, done.returncode, done.stderr)
        return CompletedRun(done.returncode, done.stdout, done.stderr)

    return read


def pull(ref: str, tls_verify: bool | None) -> Call[Image]:
    argv = ("pull", "--quiet", *_cli.tls_flag(tls_verify), ref)
    return Call(argv, lambda done: Image(done.stdout.decode().strip(), ref))


def build(
    context: str | os.PathLike[str],
    *,
    tag: str,
    file: str | os.PathLike[str] | None,
    build_args: Mapping[str, str] | None,
    tls_verify: bool | None,
) -> Call[Image]:
    argv = _cli.build_argv(
        context, tag=tag, file=file, build_args=build_args or {}, tls_verify=tls_verify
    )
    return Call(tuple(argv), lambda done: Image(done.stdout.split()[-1].decode(), tag))


def run_detached(image: str, command: Sequence[str], options: _cli.RunKwargs) -> Call[str]:
    """``run --detach``: the new container's ID."""
    argv = tuple(_cli.run_argv(image, command, True, options))
    return Call(argv, lambda done: done.stdout.decode().strip())


def run_foreground(
    image: str, command: Sequence[str], options: _cli.RunKwargs
) -> Call[CompletedRun]:
    argv = tuple(_cli.run_argv(image, command, False, options))
    return Call(argv, _completed(argv), check=False)


def compose_up(
    files: Sequence[str | os.PathLike[str]], project: str | None, services: Sequence[str]
) -> Call[None]:
    return Call(tuple(_cli.compose_argv(files, project, _cli.compose_up_verb(services))), _nothing)


def compose_down(
    files: Sequence[str | os.PathLike[str]],
    project: str | None,
    volumes: bool,
    timeout: float | None,
) -> Call[None]:
    verb = _cli.compose_down_verb(volumes, timeout)
    return Call(tuple(_cli.compose_argv(files, project, verb)), _nothing)


def exec_(
    container: str,
    command: Sequence[str],
    env: Mapping[str, str] | None,
    user: str | None,
    workdir: str | None,
) -> Call[CompletedRun]:
    argv = tuple(_cli.exec_argv(container, command, env=env or {}, user=user, workdir=workdir))
    return Call(argv, _completed(argv), check=False)


def logs(container: str) -> Call[Logs]:
    return Call(("logs", container), lambda done: Logs(done.stdout, done.stderr))


def follow_argv(container: str) -> tuple[str, ...]:
    """``logs --follow``: streamed, so the clients read its output as it comes."""
    return ("logs", "--follow", container)


def stop(container: str, timeout: float | None) -> Call[None]:
    return Call(tuple(_cli.stop_argv(container, timeout)), _nothing)


def wait(container: str) -> Call[int]:
    return Call(("wait", container), lambda done: int(done.stdout.split()[-1]))


def remove(container: str, force: bool) -> Call[None]:
    return Call(tuple(_cli.rm_argv(container, force)), _nothing)


def _first(done: Done) -> dict[str, Any]:
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found[0]


def inspect(container: str) -> Call[dict[str, Any]]:
    return Call(("inspect", "--type=container", container), _first)


def ports(container: str) -> Call[list[PortMapping]]:
    return Call(("port", container), lambda done: _cli.parse_ports(done.stdout.decode()))
