"""rootless run: run a command in a new container, from an image or a rootfs directory."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from rootless.cli._common import tls_verify_flag
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.engine.containers import RunOptions

ADD_HELP = False  # -h is --hostname, as in Podman


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="name of the container (default: generated)")
    p.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="run in the background under its own monitor; print the ID",
    )
    p.add_argument(
        "--restart", metavar="POLICY", help="no, on-failure[:N], always or unless-stopped (with -d)"
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds stop waits before SIGKILL (default 10)",
    )
    p.add_argument(
        "--stop-signal", metavar="SIGNAL", help="signal stop sends (default: the image's, SIGTERM)"
    )
    p.add_argument(
        "--init",
        action="store_true",
        help="run a reaper (catatonit) as PID 1 that forwards signals",
    )
    p.add_argument("-m", "--memory", metavar="SIZE", help="memory limit (needs cgroup delegation)")
    p.add_argument("--cpus", metavar="N", help="CPU limit (needs cgroup delegation)")
    p.add_argument("--pids-limit", metavar="N", help="process limit (needs cgroup delegation)")
    p.add_argument("--health-cmd", metavar="CMD", help="healthcheck command (run by a shell)")
    p.add_argument("--health-interval", metavar="DURATION", help="time between checks (30s)")
    p.add_argument("--health-timeout", metavar="DURATION", help="time a check may take (30s)")
    p.add_argument("--health-retries", type=int, metavar="N", help="failures before unhealthy (3)")
    p.add_argument(
        "--health-start-period",
        metavar="DURATION",
        help="failures in this time after start do not count (0s)",
    )
    p.add_argument("--no-healthcheck", action="store_true", help="disable the image's healthcheck")
    p.add_argument(
        "--health-on-failure",
        choices=("none", "kill", "restart", "stop"),
        help="what an unhealthy container gets (default none)",
    )
    p.add_argument("--log-opt", action="append", default=[], metavar="max-size=SIZE|max-file=N")
    p.add_argument(
        "--sdnotify",
        choices=("conmon", "container", "healthy", "ignore"),
        help="how systemd learns the unit is ready (default conmon when NOTIFY_SOCKET is set)",
    )
    p.add_argument(
        "-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="add a label"
    )
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="set an environment variable (K alone takes the host's value)",
    )
    p.add_argument(
        "--env-file", action="append", default=[], metavar="FILE", help="read K=V lines from FILE"
    )
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside the container")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="user (name or UID) and group")
    p.add_argument("-h", "--hostname", help="container hostname")
    p.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP")
    p.add_argument(
        "--security-opt",
        action="append",
        default=[],
        metavar="OPT",
        help="seccomp=unconfined|FILE, no-new-privileges[=true|false], label=disable",
    )
    p.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    p.add_argument(
        "--read-only-tmpfs",
        nargs="?",
        const="true",
        default="false",
        metavar="BOOL",
        help="with --read-only: writable tmpfs on /tmp, /var/tmp and /run",
    )
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME[,target=PATH,mode=0444]",
        help="mount a secret read-only at /run/secrets/NAME (or target)",
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="HOST[:CTR][:rwm]|vendor.com/class=name",
        help="bind a host device node, or add a CDI device",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="kill the container after SECONDS; rootless then exits 124",
    )
    p.add_argument(
        "--cidfile", metavar="FILE", help="write the container ID to FILE (must not exist)"
    )
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CTR[:OPTS]")
    p.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="type=TYPE,...",
        help="type=bind|volume|tmpfs,source=...,target=...[,ro]",
    )
    p.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:OPTS]")
    p.add_argument("--userns", metavar="MODE", help="keep-id: your UID inside is your UID outside")
    p.add_argument(
        "--network",
        "--net",
        metavar="MODE",
        help="slirp4netns[:OPTS] (default), pasta[:OPTS], none or host",
    )
    p.add_argument("--pod", metavar="POD", help="run in the pod (its network and hostname)")
    p.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:][HOST:]CTR[/PROTO]",
        help="publish a container port on the host",
    )
    p.add_argument(
        "-P",
        "--publish-all",
        action="store_true",
        help="publish the image's EXPOSE ports on random host ports",
    )
    p.add_argument("--dns", action="append", default=[], metavar="IP")
    p.add_argument("--dns-search", action="append", default=[], metavar="DOMAIN")
    p.add_argument("--dns-option", action="append", default=[], metavar="OPT")
    p.add_argument("--add-host", action="append", default=[], metavar="NAME:IP")
    p.add_argument(
        "--mac-address",
        metavar="MAC",
        help="the MAC address of the container's interface (slirp4netns, pasta, user networks)",
    )
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]")
    p.add_argument("--shm-size", metavar="SIZE", help="size of /dev/shm (default 64m)")
    p.add_argument(
        "--pull",
        default="missing",
        choices=("missing", "always", "never", "newer"),
        help="when to pull the image (default: missing)",
    )
    tls_verify_flag(p)
    p.add_argument(
        "--rootfs",
        metavar="DIR",
        help="run from this root filesystem directory instead of an image",
    )
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="IMAGE [CMD...]",
        help="the image and the command (with --rootfs: only the command)",
    )
    p.add_argument("--help", action="help", help="show this help and exit")


def main(args: argparse.Namespace) -> int:
    from rootless.engine.containers import run

    return run(options_from(args))


def options_from(args: argparse.Namespace) -> RunOptions:
    """The RunOptions for parsed ``run``/``create`` arguments."""
    from rootless._units import parse_size
    from rootless.cli._common import read_env_files
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.runtime.plan import parse_env_lines, parse_security_opts, parse_ulimit
    from rootless.volumes import MountRequest

    positional = list(args.args)
    if positional and positional[0] == "--":
        positional = positional[1:]
    image = None
    if args.rootfs is None:
        if not positional:
            raise ConfigError("no image given", hint="usage: rootless run [OPTIONS] IMAGE [CMD...]")
        image, positional = positional[0], positional[1:]
    elif not positional:
        raise ConfigError("no command given", hint="usage: rootless run --rootfs DIR CMD [ARG...]")

    env_lines = [*read_env_files(args.env_file), *args.env]
    volumes = list(args.volume)
    network = args.network or "slirp4netns"
    if args.sdnotify == "container":
        from rootless.systemd.notify import container_socket

        volume, notify_socket = container_socket(os.environ.get("NOTIFY_SOCKET"), network)
        volumes += [volume] if volume else []
        env_lines.append(f"NOTIFY_SOCKET={notify_socket}")
    seccomp, nnp, unmask = parse_security_opts(args.security_opt)
    opts = RunOptions(
        command=tuple(positional),
        image=image,
        rootfs=args.rootfs,
        name=args.name,
        rm=args.rm,
        interactive=args.interactive,
        tty=args.tty,
        env=tuple(parse_env_lines(env_lines, os.environ)),
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        entrypoint=args.entrypoint,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        seccomp=seccomp,
        no_new_privileges=nnp,
        unmask=unmask,
        read_only=args.read_only,
        read_only_tmpfs=args.read_only and _bool_flag("--read-only-tmpfs", args.read_only_tmpfs),
        secrets=tuple(args.secret),
        devices=tuple(args.device),
        timeout=args.timeout or None,  # 0: none, as Podman
        cidfile=args.cidfile,
        mounts=MountRequest(tuple(volumes), tuple(args.mount), tuple(args.tmpfs)),
        userns=args.userns,
        network=NetworkRequest(
            mode=network,
            publish=tuple(args.publish),
            publish_all=args.publish_all,
            dns=tuple(args.dns),
            dns_search=tuple(args.dns_search),
            dns_options=tuple(args.dns_option),
            add_hosts=tuple(args.add_host),
            mac_address=args.mac_address,
        ),
        ulimits=tuple(parse_ulimit(u) for u in args.ulimit),
        shm_size=None if args.shm_size is None else parse_size(args.shm_size, what="--shm-size"),
        pull=args.pull,
        tls_verify=args.tls_verify,
        detach=getattr(args, "detach", False),
        init=args.init,
        limits={
            k: v
            for k, v in (
                ("memory", args.memory),
                ("cpus", args.cpus),
                ("pids-limit", args.pids_limit),
            )
            if v is not None
        },
        extra=_supervision_options(args),
    )
    if args.pod is None:
        return opts
    from rootless.engine.podplan import join_pod
    from rootless.engine.pods import get_pod

    return join_pod(opts, get_pod(args.pod), network_given=args.network is not None)


def _bool_flag(flag: str, value: str) -> bool:
    if value.lower() not in ("true", "false", "1", "0"):
        raise ConfigError(f'invalid {flag} value "{value}"', hint="use true or false")
    return value.lower() in ("true", "1")


def _supervision_options(args: argparse.Namespace) -> dict[str, object]:
    """What the monitor needs: restart policy, stop timeout, healthcheck, log options."""
    extra: dict[str, object] = {}
    health = {
        "cmd": args.health_cmd,
        "interval": args.health_interval,
        "timeout": args.health_timeout,
        "retries": args.health_retries,
        "start_period": args.health_start_period,
    }
    if args.no_healthcheck or any(v is not None for v in health.values()):
        from rootless.supervise.health import health_config

        health_config(None, **health, disabled=args.no_healthcheck)  # fail now on bad values
        extra["health_flags"] = {**health, "disabled": args.no_healthcheck}
    if args.label:
        from rootless.cli._common import key_values

        extra["labels"] = key_values(args.label, "label", bare_keys=True)
    if args.timeout is not None and args.timeout < 0:
        from rootless.errors import ConfigError

        raise ConfigError(f"invalid --timeout {args.timeout:g}", hint="give seconds, 0 for none")
    if args.timeout:
        extra["timeout"] = args.timeout  # the monitor enforces it at each start
    if args.health_on_failure not in (None, "none"):
        extra["health_on_failure"] = args.health_on_failure
    if args.restart:
        from rootless.supervise.policy import parse_restart

        parse_restart(args.restart)  # fail now, not in the monitor
        extra["restart"] = args.restart
    if args.stop_timeout is not None:
        extra["stop_timeout"] = args.stop_timeout
    if args.sdnotify:
        extra["sdnotify"] = args.sdnotify
    # As Podman's CreateCommand: `generate systemd --new` re-creates the container from it.
    extra["create_command"] = list(sys.argv[1:])
    if args.stop_signal:
        from rootless.runtime.signals import parse_signal

        parse_signal(args.stop_signal)
        extra["stop_signal"] = args.stop_signal
    if args.log_opt:
        from rootless.supervise.logfile import parse_log_opts

        extra.update(parse_log_opts(args.log_opt))
    return extra
