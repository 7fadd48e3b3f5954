"""pasta: the container's namespace gets a copy of the host's address and routes; published
ports keep the client's source address.

pasta has no ``--exit-fd``; it runs in the foreground (``-f``) under
``setpriv --pdeathsig KILL``, so the kernel kills it when the thread that started it
ends. Readiness is the default route appearing in the container's namespace, which
pasta adds last, after its ports are bound.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from rootless.errors import ConfigError
from rootless.network.etcfiles import PASTA_DNS_FORWARD
from rootless.network.helper import HelperProcess, open_log, spawn
from rootless.network.ports import PortMapping

READY_TIMEOUT = 10.0
_OWN_FLAGS = {"-t": "--tcp-ports", "-u": "--udp-ports", "-T": "--tcp-ns", "-U": "--udp-ns"}
# Flags we set ourselves; a user's copy would make pasta exit with "multiple ... given".
_RESERVED = ("-f", "--foreground", "--config-net", "--dns-forward")


def _given(args: Sequence[str], short: str) -> bool:
    long = _OWN_FLAGS[short]
    return any(a in (short, long) or a.startswith(long + "=") for a in args)


def pasta_forward_spec(mapping: PortMapping) -> str:
    """``[addr/]hostPort:containerPort`` for pasta's -t/-u (pure)."""
    addr = f"{mapping.host_ip}/" if mapping.host_ip else ""
    return f"{addr}{mapping.host_port}:{mapping.container_port}"


def pasta_command(
    container_pid: int, options: Sequence[str], ports: Sequence[PortMapping]
) -> list[str]:
    """The pasta command line (pure).

    Defaults, each unless the user's options say otherwise: nothing forwarded from the
    container to the host (-T/-U none), only the published ports into it, the host's
    loopback not reachable through the gateway (``--no-map-gw``; ``--map-gw`` allows it).
    """
    for flag in _RESERVED:
        if flag in options:
            raise ConfigError(
                f'pasta option "{flag}" is set by rootless itself',
                hint=f"drop {flag} from --network pasta:...",
            )
    user = [o for o in options if o != "--map-gw"]
    cmd = ["pasta", "-f", "--config-net", "--dns-forward", PASTA_DNS_FORWARD]
    if not {"-d", "--debug", "--trace"} & set(options):
        cmd.append("-q")
    if "--map-gw" not in options and "--no-map-gw" not in options:
        cmd.append("--no-map-gw")
    for flag, proto in (("-t", "tcp"), ("-u", "udp")):
        specs = [pasta_forward_spec(m) for m in ports if m.protocol == proto]
        for spec in specs:
            cmd += [flag, spec]
        if not specs and not _given(user, flag):
            cmd += [flag, "none"]
    for flag in ("-T", "-U"):
        if not _given(user, flag):
            cmd += [flag, "none"]
    return [*cmd, *user, str(container_pid)]


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _has_default_route(container_pid: int, proc: str) -> bool:
    base = os.path.join(proc, str(container_pid), "net")
    try:
        for line in _read(os.path.join(base, "route")).splitlines()[1:]:
            if line.split()[1] == "00000000":
                return True
        for line in _read(os.path.join(base, "ipv6_route")).splitlines():
            fields = line.split()
            if fields[0] == "0" * 32 and fields[1] == "00" and fields[-1] != "lo":
                return True
    except (OSError, IndexError):
        pass
    return False


def start_pasta(
    container_pid: int,
    *,
    options: Sequence[str] = (),
    ports: Sequence[PortMapping] = (),
    ready_timeout: float = READY_TIMEOUT,
    proc: str = "/proc",
) -> HelperProcess:
    """Attach pasta to the network namespace of ``container_pid``; return once the namespace
    has its address and default route and the ports are bound.

    Call it from the thread that lives as long as the supervisor (PDEATHSIG follows the
    thread that started the helper), and do not reap children with ``waitpid(-1)``.
    """
    cmd = ["setpriv", "--pdeathsig", "KILL", *pasta_command(container_pid, options, ports)]
    log = open_log("pasta")
    try:
        process = spawn("pasta", cmd, log)
    except BaseException:
        log.close()
        raise
    helper = HelperProcess("pasta", process, log, tuple(ports))
    deadline = time.monotonic() + ready_timeout
    while not _has_default_route(container_pid, proc):
        if process.poll() is not None:
            raise helper.failed(
                f"it exited with status {process.returncode}",
                "check the pasta options and that no published host port is in use",
            )
        if time.monotonic() > deadline:
            raise helper.failed(
                f"no route in the container after {ready_timeout:.0f} s",
                "check that the host has a default route (pasta copies it)",
            )
        time.sleep(0.002)
    return helper
