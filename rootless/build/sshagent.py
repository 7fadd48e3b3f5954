"""``RUN --mount=type=ssh``: the build's ssh agents, reachable from one RUN.

``build --ssh default`` gives the agent of ``$SSH_AUTH_SOCK``, ``--ssh ID=PATH`` the
agent listening on the socket ``PATH``. A RUN that mounts ``type=ssh`` (``id``,
default ``default``) gets a socket of its own at ``target`` (default
``/run/buildkit/ssh_agent.N``, N counting the RUN's ssh mounts), with ``mode``
(0600), ``uid`` and ``gid`` (0), and ``SSH_AUTH_SOCK`` names the first one. That
socket is served by the builder, which relays each connection to the agent: the
RUN's users need no access to the agent's own socket or directory, and the
agent's path is never in a layer, the history or a cache key.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from rootless.build.cachemounts import number_option, octal_option
from rootless.build.dockerfile import Mount as MountSpec
from rootless.build.mounts import target_of
from rootless.errors import BuildError
from rootless.runtime.spec import Mount

if TYPE_CHECKING:
    import trio

DEFAULT_ID = "default"
AGENT_DIR = "/run/buildkit"
_KEY_HINT = "load the key into an agent: eval $(ssh-agent) && ssh-add KEYFILE, then --ssh default"


@attrs.frozen
class SshAgent:
    """``build --ssh``: an id and the agent's socket on the host."""

    id: str
    socket: str


@attrs.frozen
class AgentMount:
    """One ssh mount of a RUN: where its socket goes, and which agent it relays to."""

    target: str
    agent: str  # the host socket
    uid: int = 0
    gid: int = 0
    mode: int = 0o600


def parse_ssh(text: str, environ: Mapping[str, str]) -> SshAgent:
    """``default``, ``ID`` (both: ``$SSH_AUTH_SOCK``) or ``ID=PATH``. Pure."""
    agent_id, sep, path = text.partition("=")
    if not agent_id or "," in agent_id or "/" in agent_id:
        raise BuildError(
            f"invalid --ssh {text!r}: expected default or ID=SOCKET",
            hint="use --ssh default (the agent of $SSH_AUTH_SOCK) or --ssh ID=/path/to/agent.sock",
        )
    if sep:
        if "," in path:
            raise BuildError(
                f"invalid --ssh {text!r}: one agent socket per id",
                hint="add the keys to one agent (ssh-add) and give its socket",
            )
        if not path:
            raise BuildError(f"invalid --ssh {text!r}: no socket after =")
        return SshAgent(agent_id, path)
    sock = environ.get("SSH_AUTH_SOCK")
    if not sock:
        raise BuildError(
            f"cannot use --ssh {text}: SSH_AUTH_SOCK is not set (no ssh agent is running)",
            hint="start one and add your key: eval $(ssh-agent) && ssh-add, "
            f"or give the socket: --ssh {agent_id}=/path/to/agent.sock",
        )
    return SshAgent(agent_id, sock)


def check_agent(agent: SshAgent) -> SshAgent:
    """``agent`` with an absolute path, after checking that it is a socket (a key file
    is refused: keys are used through an agent)."""
    path = os.path.abspath(agent.socket)
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise BuildError(
            f"cannot use the ssh agent {agent.id!r} at {agent.socket}: {e.strerror}",
            hint="give the socket of a running agent ($SSH_AUTH_SOCK)",
        ) from None
    if stat.S_ISSOCK(mode):
        return SshAgent(agent.id, path)
    if stat.S_ISREG(mode):
        raise BuildError(
            f"cannot use {agent.socket} for --ssh {agent.id}: it is a file (a private key?), "
            "and rootless build takes an agent's socket only",
            hint=_KEY_HINT,
        )
    raise BuildError(f"cannot use {agent.socket} for --ssh {agent.id}: it is not a socket")


def plan_agents(
    mounts: Sequence[MountSpec], workdir: str, agents: Mapping[str, SshAgent]
) -> list[AgentMount]:
    """The ssh mounts of one RUN, in order; a missing agent is skipped, or an error
    with ``required=true``. Pure."""
    out = []
    index = 0
    for m in mounts:
        if m.type != "ssh":
            continue
        agent_id = m.option("id") or DEFAULT_ID
        target = target_of(m, workdir) if m.target else f"{AGENT_DIR}/ssh_agent.{index}"
        index += 1
        agent = agents.get(agent_id)
        if agent is None:
            if m.option("required") in ("true", "1", "True"):
                given = "--ssh default" if agent_id == DEFAULT_ID else f"--ssh {agent_id}=SOCKET"
                raise BuildError(
                    f"the ssh agent {agent_id!r} is required but not given",
                    hint=f"add {given} (default: the agent of $SSH_AUTH_SOCK)",
                )
            continue
        uid, gid = number_option(m, "uid"), number_option(m, "gid")
        out.append(AgentMount(target, agent.socket, uid, gid, octal_option(m, "mode", 0o600)))
    return out


def agent_env(planned: Sequence[AgentMount], env: Sequence[str]) -> tuple[str, ...]:
    """A RUN's environment with ``SSH_AUTH_SOCK`` naming its first agent (unless the
    Containerfile set it). Pure."""
    if not planned or any(e.startswith("SSH_AUTH_SOCK=") for e in env):
        return tuple(env)
    return (*env, f"SSH_AUTH_SOCK={planned[0].target}")


@contextlib.asynccontextmanager
async def serve_agents(
    planned: Sequence[AgentMount], scratch: Path
) -> AsyncIterator[tuple[Mount, ...]]:
    """Serve a socket per planned mount in ``scratch`` while the context lasts; the
    mounts that bind them at their targets."""
    if not planned:
        yield ()
        return
    import trio

    with contextlib.ExitStack() as stack:
        out = []
        listeners = []
        for p in planned:
            path = scratch / f"ssh-{os.urandom(6).hex()}.sock"
            # bound here, not by trio, which would bind in a thread (the build forks)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            stack.enter_context(sock)
            sock.bind(_short(stack, str(path)))
            stack.callback(path.unlink, missing_ok=True)
            sock.listen(16)
            os.chown(path, p.uid, p.gid)
            os.chmod(path, p.mode)
            listeners.append((trio.socket.from_stdlib_socket(sock), _short(stack, p.agent)))
            out.append(Mount(p.target, "bind", str(path), ("bind", "nosuid", "nodev")))
        async with trio.open_nursery() as nursery:
            for listener, agent in listeners:
                nursery.start_soon(_serve, listener, agent)
            try:
                yield tuple(out)
            finally:
                nursery.cancel_scope.cancel()


def _short(stack: contextlib.ExitStack, path: str) -> str:
    """``path`` as ``/proc/self/fd/N/NAME`` (N: its directory, held open by ``stack``):
    a unix socket's path may not be longer than 107 bytes."""
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    stack.callback(os.close, fd)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}"


async def _serve(listener: trio.socket.SocketType, agent: str) -> None:
    import trio

    async with trio.open_nursery() as nursery:
        while True:
            conn, _ = await listener.accept()
            nursery.start_soon(_relay, conn, agent)


async def _relay(conn: trio.socket.SocketType, agent: str) -> None:
    """Copy bytes both ways between a RUN's connection and the agent, until both end."""
    import trio

    client = trio.SocketStream(conn)
    async with client:
        upstream = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            await upstream.connect(agent)
        except OSError:
            upstream.close()
            return  # the RUN sees the connection closed, as with a dead agent
        async with trio.SocketStream(upstream) as server, trio.open_nursery() as nursery:
            nursery.start_soon(_copy, client, server)
            nursery.start_soon(_copy, server, client)


async def _copy(src: trio.SocketStream, dst: trio.SocketStream) -> None:
    import trio

    try:
        while data := await src.receive_some(65536):
            await dst.send_all(data)
        await dst.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return
