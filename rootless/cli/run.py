"""rootless run: run a command in a new container."""

from __future__ import annotations

import argparse
import os
import platform

from rootless.cli._common import warn
from rootless.errors import ConfigError

ADD_HELP = False  # -h is --hostname, as in Podman


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("-v", "--volume", action="append", default=[], metavar="HOST:CTR[:OPTS]")
    p.add_argument(
        "--network",
        "--net",
        default="private",
        metavar="MODE",
        help="none (only lo, the default for now) or host",
    )
    p.add_argument("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]")
    p.add_argument(
        "--rootfs", metavar="DIR", required=True, help="run from this root filesystem directory"
    )
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD", help="command and arguments")
    p.add_argument("--help", action="help", help="show this help and exit")


def main(args: argparse.Namespace) -> int:
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import LaunchOptions, run_foreground
    from rootless.runtime.plan import RunRequest, parse_env_lines, parse_ulimit, plan_spec

    rootfs = os.path.abspath(args.rootfs)
    if not os.path.isdir(rootfs):
        raise ConfigError(
            f"rootfs {args.rootfs} does not exist or is not a directory",
            hint="give --rootfs a directory holding the container's files",
        )
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ConfigError("no command given", hint="usage: rootless run --rootfs DIR CMD [ARG...]")

    env_lines: list[str] = []
    for path in args.env_file:
        try:
            with open(path) as f:
                env_lines.extend(f.read().splitlines())
        except OSError as e:
            raise ConfigError(f"cannot read env file {path}: {e.strerror}") from None
    env_lines.extend(args.env)

    seccomp_choice, nnp = _security_opts(args.security_opt)
    seccomp, program = _seccomp(seccomp_choice)
    idmap = current_user_plan()
    if idmap.warning:
        warn(idmap.warning)
    user, home = _resolve_user(args.user, rootfs)
    from rootless.runtime.mounts import parse_volume

    req = RunRequest(
        rootfs=rootfs,
        args=tuple(command),
        env=tuple(parse_env_lines(env_lines, os.environ)),
        workdir=args.workdir or "/",
        user=user,
        home=home,
        hostname=args.hostname,
        terminal=args.tty,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        seccomp=seccomp,
        no_new_privileges=nnp,
        read_only=args.read_only,
        volumes=tuple(parse_volume(v) for v in args.volume),
        network=args.network,
        ulimits=tuple(parse_ulimit(u) for u in args.ulimit),
    )
    container_id = os.urandom(32).hex()
    spec = plan_spec(req, idmap, container_id=container_id)
    return run_foreground(spec, LaunchOptions(idmap, args.interactive, program))


def _security_opts(opts: list[str]) -> tuple[str | None, bool]:
    """(seccomp: "default", None for unconfined, or a profile path; no_new_privileges)."""
    seccomp: str | None = "default"
    nnp = True
    for opt in opts:
        key, sep, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp" and sep:
            seccomp = None if value == "unconfined" else value
        elif key == "no-new-privileges":
            nnp = value.lower() not in ("false", "0") if sep else True
        elif key == "label":
            continue  # SELinux labels do not apply to rootless here
        else:
            raise ConfigError(
                f'unsupported --security-opt "{opt}"',
                hint="use seccomp=unconfined, seccomp=FILE, no-new-privileges[=false] or label=...",
            )
    return seccomp, nnp


def _seccomp(choice: str | None) -> tuple[str | dict[str, object] | None, bytes | None]:
    """The spec's seccomp entry and the compiled program for it."""
    from rootless.runtime import seccomp as sc

    if choice is None:
        return None, None
    if choice == "default":
        return "default", sc.default_program()
    profile = sc.load_profile_file(choice)
    return profile, sc.compile_profile(profile, platform.machine())


def _resolve_user(spec: str | None, rootfs: str):  # type: ignore[no-untyped-def]
    from rootless.runtime.securejoin import resolve_in_root
    from rootless.runtime.spec import User
    from rootless.runtime.users import resolve_user

    def read(path: str) -> str:
        try:
            with open(resolve_in_root(rootfs, path)) as f:
                return f.read()
        except OSError:
            return ""

    if spec is None:
        passwd = read("/etc/passwd")
        if not passwd:
            return User(), "/root"
        spec = "0"
    else:
        passwd = read("/etc/passwd")
    resolved = resolve_user(spec, passwd, read("/etc/group"))
    return resolved.user, resolved.home
