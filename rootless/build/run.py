"""A build's RUN step: a container on the stage's overlay, waited for without a thread.

The container is started from inside the user's namespace, so the runtime maps
IDs itself (a nested namespace with the same IDs); the builder's event loop
waits on a pidfd, so other stages go on meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from rootless.build import dockerfile as df
from rootless.runtime.spec import Mount, Rlimit


class RunSpec(NamedTuple):
    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...]  # NAME=value
    workdir: str = "/"
    user: str | None = None
    network: str = "host"  # "host", or "private": a network namespace with only lo
    mounts: tuple[Mount, ...] = ()  # RUN --mount, as runtime mounts
    ulimits: tuple[Rlimit, ...] = ()  # build --ulimit
    shm_size: int | None = None  # build --shm-size, bytes


def hosts_text(add_hosts: Sequence[tuple[str, str]], network: str, base: str | None) -> str:
    """The /etc/hosts of a RUN with ``--add-host`` entries: them first (they win), then
    ``base``, the file the RUN would otherwise see. ``host-gateway`` is the host's
    loopback with the host's network. Pure."""
    from rootless.errors import BuildError
    from rootless.network.etcfiles import HOST_GATEWAY, LOCALHOST4, LOCALHOST6, Addresses, hosts

    if network != "host" and any(ip == HOST_GATEWAY for _, ip in add_hosts):
        raise BuildError(
            f"cannot use --add-host NAME:{HOST_GATEWAY} with --network none: "
            "the host is not reachable",
            hint="give an IP address, or build with --network host",
        )
    resolved = [(n, "127.0.0.1" if ip == HOST_GATEWAY else ip) for n, ip in add_hosts]
    if base is None:
        base = f"127.0.0.1\t{LOCALHOST4}\n::1\t{LOCALHOST6}\n"
    no_address = Addresses(ip=None, gateway=None, nameservers=(), host_gateway=None)
    return hosts(hostname="", addresses=no_address, add_hosts=resolved, base=base)


def hosts_mount(
    rootfs: str, add_hosts: Sequence[tuple[str, str]], network: str, scratch: Path
) -> Mount:
    """A RUN's /etc/hosts with ``--add-host`` entries, written in ``scratch``; the rest is
    the host's file (``host`` network) or the image's."""
    from rootless.runtime.securejoin import resolve_in_root

    base_path = "/etc/hosts" if network == "host" else resolve_in_root(rootfs, "/etc/hosts")
    try:
        base: str | None = Path(base_path).read_text(errors="replace")
    except OSError:
        base = None
    path = scratch / f"hosts-{os.urandom(6).hex()}"
    path.write_text(hosts_text(add_hosts, network, base))
    path.chmod(0o644)
    return Mount("/etc/hosts", "bind", str(path), ("bind", "ro"))


def run_args(ins: df.Run, shell: Sequence[str]) -> list[str]:
    """The argv of a RUN: exec form as is, shell form through the SHELL. A heredoc
    that is the whole command is the script; other heredocs follow the command, so
    the shell reads them as here-documents."""
    if ins.command.exec_form:
        return list(ins.command.args)
    script = ins.command.script
    if ins.heredocs:
        if len(ins.heredocs) == 1 and df.parse_heredoc_word(script.strip()) is not None:
            return [*shell, ins.heredocs[0].content]
        for doc in ins.heredocs:
            body = doc.content if doc.content.endswith("\n") else doc.content + "\n"
            script += f"\n{body}{doc.name}"
    return [*shell, script]


async def run_container(spec: RunSpec, *, stdout: int = 1) -> int:
    """Run ``spec`` to its end; its exit code. Output goes to ``stdout`` and our stderr.

    With the host's network, the host's /etc/resolv.conf and /etc/hosts are bound
    read-only over the image's (only where the image has them: a bind would
    otherwise leave an empty file in the step's layer), unless ``spec.mounts`` has
    its own.
    """
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import LaunchOptions, start
    from rootless.runtime.plan import RunRequest, plan_spec
    from rootless.runtime.seccomp import default_program
    from rootless.runtime.securejoin import resolve_in_root

    volumes = list(spec.mounts)
    given = {m.destination for m in volumes}
    if spec.network == "host":
        for name in ("/etc/resolv.conf", "/etc/hosts"):
            if name in given:
                continue
            if os.path.isfile(resolve_in_root(spec.rootfs, name)) and os.path.exists(name):
                volumes.append(Mount(name, "bind", name, ("rbind", "ro")))
    request = RunRequest(
        rootfs=spec.rootfs,
        args=spec.args,
        env=tuple((k, v) for k, _, v in (e.partition("=") for e in spec.env)),
        workdir=spec.workdir,
        user=spec.user,
        network=spec.network,
        volumes=tuple(volumes),
        ulimits=spec.ulimits,
        shm_size=spec.shm_size,
    )
    idmap = current_user_plan()
    oci = plan_spec(request, idmap, container_id=os.urandom(32).hex())
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    sys.stdout.flush()  # our lines before the command's
    try:
        started = start(
            oci,
            LaunchOptions(idmap, seccomp_program=default_program(), stdio=(null, stdout, 2)),
        )
    finally:
        os.close(null)
    return await wait_pid(started.stage1_pid)


async def wait_pid(pid: int) -> int:
    """Wait for our child ``pid`` on a pidfd; its exit code. Cancelled: it is killed
    (the container's PID namespace goes with it)."""
    import trio

    from rootless.runtime.launch import exit_code

    pidfd = os.pidfd_open(pid)
    try:
        await trio.lowlevel.wait_readable(pidfd)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(pidfd)
    return exit_code(os.waitpid(pid, 0)[1])
