"""Pure helpers of the API: ``rootless`` command lines, the runner's environment, and
the parsing of errors and output. Nothing here runs a process."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict

from rootless._paths import StoragePaths
from rootless.container.records import NoSuchContainer
from rootless.errors import CommandNotExecutable, CommandNotFound, RootlessError
from rootless.network.ports import PortMapping

# The package's parent directory, so the runner process imports this same rootless
# even when it is used from a checkout that is not installed.
_PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent.parent)

# The engine's messages for a container that does not exist (records, inspect).
_MISSING_CONTAINER = ("no container with name or ID ", "no such container: ")

# Exit codes at which a container command may also mean an engine error (Podman's).
ENGINE_CODES = frozenset({125, 126, 127})


def cli_env(
    paths: StoragePaths | None, extra: Mapping[str, str] | None, base: Mapping[str, str]
) -> dict[str, str]:
    """The runner's environment: ``base`` plus the storage roots and ``extra``."""
    env = dict(base)
    pythonpath = [_PACKAGE_PARENT, *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    if paths is not None:
        env.update(paths.as_env())
    env.update(extra or {})
    return env


def tls_flag(tls_verify: bool | None) -> list[str]:
    return [] if tls_verify is None else [f"--tls-verify={str(tls_verify).lower()}"]


class RunKwargs(TypedDict, total=False):
    """Keyword options of :meth:`Client.run` besides ``detach``; each maps to a ``run`` flag."""

    name: str  # --name
    env: Mapping[str, str]  # --env K=V each
    ports: Sequence[str]  # --publish, e.g. "8080:80" or "127.0.0.1::80/udp"
    volumes: Sequence[str]  # --volume HOST:CTR[:OPTS] or NAME:CTR
    network: str  # --network: slirp4netns (default), pasta, none, host or a user network
    rm: bool  # --rm
    workdir: str  # --workdir
    user: str  # --user
    entrypoint: str  # --entrypoint
    tls_verify: bool  # --tls-verify, for a pull the run needs
    extra_args: Sequence[str]  # any other run flags, passed as they are


_VALUE_FLAGS = (
    ("name", "--name"),
    ("network", "--network"),
    ("workdir", "--workdir"),
    ("user", "--user"),
    ("entrypoint", "--entrypoint"),
)


def run_argv(image: str, command: Sequence[str], detach: bool, options: RunKwargs) -> list[str]:
    """The arguments of ``rootless run`` for :meth:`Client.run`."""
    args = ["run"]
    if detach:
        args.append("--detach")
    if options.get("rm"):
        args.append("--rm")
    for key, flag in _VALUE_FLAGS:
        value = options.get(key)
        if value is not None:
            args.append(f"{flag}={value}")
    args += [f"--env={k}={v}" for k, v in options.get("env", {}).items()]
    args += [f"--publish={p}" for p in options.get("ports", ())]
    args += [f"--volume={v}" for v in options.get("volumes", ())]
    args += tls_flag(options.get("tls_verify"))
    args += options.get("extra_args", ())
    return [*args, "--", image, *command]


def build_argv(
    context: str | os.PathLike[str],
    *,
    tag: str,
    file: str | os.PathLike[str] | None,
    build_args: Mapping[str, str],
    tls_verify: bool | None,
) -> list[str]:
    """The arguments of ``rootless build`` for :meth:`Client.build` (``--quiet``: the
    image ID is the last line of stdout, the steps' output goes to stderr)."""
    args = ["build", "--quiet", f"--tag={tag}"]
    if file is not None:
        args.append(f"--file={os.fspath(file)}")
    args += [f"--build-arg={k}={v}" for k, v in build_args.items()]
    args += tls_flag(tls_verify)
    return [*args, os.fspath(context)]


def exec_argv(
    container: str,
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    user: str | None,
    workdir: str | None,
) -> list[str]:
    args = ["exec", *(f"--env={k}={v}" for k, v in env.items())]
    if user is not None:
        args.append(f"--user={user}")
    if workdir is not None:
        args.append(f"--workdir={workdir}")
    return [*args, container, "--", *command]


def stop_argv(container: str, timeout: float | None) -> list[str]:
    return ["stop", *([] if timeout is None else [f"--time={timeout}"]), container]


def rm_argv(container: str, force: bool) -> list[str]:
    return ["rm", *(["--force"] if force else []), container]


def compose_argv(
    files: Sequence[str | os.PathLike[str]], project: str | None, verb: Sequence[str]
) -> list[str]:
    """``rootless compose [-f FILE]... [-p NAME] VERB...``."""
    args = ["compose", *(f"--file={os.fspath(f)}" for f in files)]
    if project is not None:
        args.append(f"--project-name={project}")
    return [*args, *verb]


def compose_up_verb(services: Sequence[str]) -> list[str]:
    return ["up", "--detach", *services]


def compose_down_verb(volumes: bool, timeout: float | None) -> list[str]:
    verb = ["down", *(["--volumes"] if volumes else [])]
    return [*verb, *([] if timeout is None else [f"--timeout={timeout}"])]


def error_message(stderr: bytes) -> str | None:
    """The engine's message: the text of the last ``Error: ...`` line of stderr."""
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        if line.startswith("Error: "):
            return line.removeprefix("Error: ")
    return None


def cli_error(argv: Sequence[str], code: int, stderr: bytes) -> RootlessError:
    """The error a failed call raises: the CLI's message, its class and exit code."""
    message = error_message(stderr)
    if message is None:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        message = f"rootless {' '.join(argv[:1])} failed with exit code {code}: {tail[0]}"
    cls: type[RootlessError] = {127: CommandNotFound, 126: CommandNotExecutable}.get(
        code, RootlessError
    )
    if message.startswith(_MISSING_CONTAINER):
        cls = NoSuchContainer
    err = cls(message)
    err.exit_code = code
    return err


def engine_failed(code: int, stderr: bytes) -> bool:
    """Whether a ``run``/``exec`` that ended with ``code`` failed in the engine.

    The container's own exit codes pass through, so 125-127 are the engine's only when
    its message is the last line on stderr (the CLI prints it after the container ended).
    """
    if code not in ENGINE_CODES:
        return False
    lines = stderr.decode(errors="replace").strip().splitlines()
    return bool(lines) and lines[-1].startswith("Error: ")


def parse_ports(text: str) -> list[PortMapping]:
    """``rootless port`` lines (``80/tcp -> 0.0.0.0:8080``) as port mappings."""
    mappings = []
    for line in text.splitlines():
        if not line.strip():
            continue
        container, _, host = line.partition(" -> ")
        port, _, protocol = container.partition("/")
        ip, _, host_port = host.rpartition(":")
        mappings.append(PortMapping(ip.strip("[]"), int(host_port), int(port), protocol or "tcp"))
    return mappings


class LineHolder:
    """Splits followed log output into lines and holds back a trailing ``Error: `` line.

    ``logs --follow`` shares one pipe for the container's output and the engine's
    messages; a line that looks like the engine's is only released when more output
    follows it, or at the end when the call succeeded.
    """

    def __init__(self) -> None:
        self._partial = b""
        self._held: bytes | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines ``data`` finishes, in order, each with its newline."""
        *lines, self._partial = (self._partial + data).split(b"\n")
        out: list[bytes] = []
        for line in (raw + b"\n" for raw in lines):
            if self._held is not None:
                out.append(self._held)
                self._held = None
            if line.startswith(b"Error: "):
                self._held = line
            else:
                out.append(line)
        return out

    def finish(self, ok: bool) -> tuple[list[bytes], bytes]:
        """The lines left to yield, and the engine's message line if the call failed."""
        if not ok and self._held is not None and not self._partial:
            return [], self._held
        return [line for line in (self._held, self._partial) if line], b""
