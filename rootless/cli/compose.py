"""rootless compose: multi-container projects from compose files.

Each subcommand is one entry of ``SUBCOMMANDS``: option parsing, then one call
into :mod:`rootless.compose.runner` (or :mod:`rootless.compose.logs`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rootless.compose.files import Loaded
    from rootless.compose.model import Project
    from rootless.supervise.project_client import Spawned


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-f",
        "--file",
        action="append",
        default=[],
        metavar="FILE",
        help="compose file (several are merged in order; default: compose.yaml, ...)",
    )
    p.add_argument("-p", "--project-name", metavar="NAME", help="project name")
    p.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="variables for interpolation (default: .env beside the compose file)",
    )
    p.add_argument(
        "--profile", action="append", default=[], metavar="PROFILE", help="enable a profile"
    )
    sub = p.add_subparsers(dest="compose_verb", metavar="COMMAND")
    for name, (help_text, add, handler) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        add(sp)
        sp.set_defaults(compose_handler=handler)
    p.set_defaults(compose_parser=p)


def main(args: argparse.Namespace) -> int:
    handler = getattr(args, "compose_handler", None)
    if handler is None:
        args.compose_parser.print_help()
        return 0
    return int(handler(args))


def load(args: argparse.Namespace) -> Loaded:
    """The project the global options describe; warnings go to stderr."""
    from rootless.cli._common import warn
    from rootless.compose.files import load_project

    loaded = load_project(
        args.file,
        cwd=Path.cwd(),
        environ=os.environ,
        project_name=args.project_name,
        env_files=args.env_file,
        profiles=args.profile,
    )
    for message in loaded.warnings:
        warn(message)
    return loaded


def _config_arguments(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group()
    what.add_argument("--services", action="store_true", help="print the service names")
    what.add_argument("--volumes", action="store_true", help="print the volume names")
    what.add_argument(
        "-q", "--quiet", action="store_true", help="only check the files; print nothing"
    )
    p.add_argument("services_", nargs="*", metavar="SERVICE", help="only these services")


def _config(args: argparse.Namespace) -> int:
    from rootless.compose.plan import select_services

    loaded = load(args)
    project = loaded.project
    names = select_services(project, args.services_, profiles=loaded.profiles)
    if args.quiet:
        return 0
    if args.services:
        print("\n".join(names))
        return 0
    if args.volumes:
        used = {v.source for n in names for v in project.service(n).volumes}
        print("\n".join(v.key for v in project.volumes if v.key in used))
        return 0
    import yaml

    from rootless.compose.render import project_dict

    ordered = [s.name for s in project.services if s.name in names]  # the file's order
    sys.stdout.write(
        yaml.safe_dump(
            project_dict(project, ordered), sort_keys=False, allow_unicode=True, width=1000
        )
    )
    return 0


def _report(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _services_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("services_", nargs="*", metavar="SERVICE", help="only these services")


def _up_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-d", "--detach", action="store_true", help="start and return")
    p.add_argument("--force-recreate", action="store_true", help="recreate every container")
    p.add_argument("--no-deps", action="store_true", help="do not start the dependencies")
    p.add_argument(
        "--abort-on-container-exit",
        action="store_true",
        help="stop every container when one exits (not with -d)",
    )
    p.add_argument("--no-color", action="store_true", help="no colours in the log prefixes")
    p.add_argument("--build", action="store_true", help="build the images before starting")
    _pull_argument(p)
    _services_argument(p)


def _pull_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pull",
        choices=("always", "missing", "never"),
        help="pull the images always, when missing, or never (default: each pull_policy)",
    )


def _up(args: argparse.Namespace) -> int:
    from rootless._paths import StoragePaths
    from rootless.errors import ConfigError
    from rootless.supervise.project_client import Spawned

    if args.detach and args.abort_on_container_exit:
        raise ConfigError("-d and --abort-on-container-exit cannot be combined")
    # It starts up while the file is read; it exits if it is not needed.
    spare = Spawned(StoragePaths.from_env())
    try:
        return _up_with(args, spare)
    finally:
        spare.reap()


class _Terminated(KeyboardInterrupt):
    """SIGTERM while foreground ``up`` starts the services: stopped as Ctrl-C stops them
    (a systemd unit's stop must not leave the started containers behind)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _up_with(args: argparse.Namespace, spare: Spawned) -> int:
    import signal

    from rootless.compose import runner

    loaded = load(args)
    if not args.detach:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        names = runner.up(
            loaded.project,
            args.services_,
            profiles=loaded.profiles,
            no_deps=args.no_deps,
            force_recreate=args.force_recreate,
            build=args.build,
            pull=args.pull,
            report=_report,
            spare=spare,
        )
    except KeyboardInterrupt as e:
        if args.detach:
            raise
        # What foreground up started so far; a second Ctrl-C (or SIGTERM) kills it.
        try:
            _stop_gracefully(loaded.project, args.services_)
        except KeyboardInterrupt:
            _kill(loaded.project, args.services_)
        return 128 + (signal.SIGTERM if isinstance(e, _Terminated) else signal.SIGINT)
    if args.detach:
        return 0
    from rootless.compose.logs import attach
    from rootless.engine.containers import containers_store

    containers = containers_store()
    records = [containers.get(n) for n in names]
    services = sorted({runner.compose_info(r)["service"] for r in records})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # attach handles it from here on
    return attach(
        records,
        containers,
        sys.stdout.buffer,
        lambda: _stop_gracefully(loaded.project, services),
        lambda: _kill(loaded.project, services),
        colour=_colour(args),
        abort_on_exit=args.abort_on_container_exit,
    )


def _stop_gracefully(project: Project, services: Sequence[str]) -> None:
    from rootless.compose import runner

    _report("Gracefully stopping... (press Ctrl+C again to force)")
    runner.stop(project, services, report=_report)


def _kill(project: Project, services: Sequence[str]) -> None:
    from rootless.compose import runner

    _report("Killing the containers...")
    runner.kill(project, services, report=_report)


def _colour(args: argparse.Namespace) -> bool:
    return not args.no_color and sys.stdout.isatty()


def _down_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--volumes", action="store_true", help="remove the named volumes too")
    p.add_argument("-t", "--timeout", type=float, metavar="SECONDS", help="stop grace period")
    p.add_argument(
        "--rmi",
        choices=("all", "local"),
        help="remove images too: all the services', or local: those without an image: name",
    )


def _down(args: argparse.Namespace) -> int:
    from rootless.compose import runner

    runner.down(
        load(args).project,
        volumes=args.volumes,
        rmi=args.rmi,
        timeout=args.timeout,
        report=_report,
    )
    return 0


def _image_arguments(p: argparse.ArgumentParser) -> None:
    from rootless.cli._common import tls_verify_flag

    p.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    tls_verify_flag(p)
    _services_argument(p)


def _pull_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--policy",
        choices=("always", "missing"),
        help="pull always, or only the missing images (default: each pull_policy, else always)",
    )
    p.add_argument(
        "--ignore-pull-failures", action="store_true", help="pull what can be, warn about the rest"
    )
    p.add_argument(
        "--include-deps", action="store_true", help="also the named services' dependencies"
    )
    p.add_argument(
        "--ignore-buildable", action="store_true", help="skip the services that have build:"
    )
    _image_arguments(p)


def _build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--pull", action="store_true", help="pull base images even when present")
    _image_arguments(p)


def _image_verb(args: argparse.Namespace, verb: str) -> int:
    from rootless._paths import StoragePaths
    from rootless.compose import images
    from rootless.compose.plan import select_services

    loaded = load(args)
    project = loaded.project
    deps = verb == "pull" and args.include_deps
    names = select_services(project, args.services_, profiles=loaded.profiles, no_deps=not deps)
    if verb == "build":
        steps = images.build_steps(project, names, no_cache=args.no_cache, pull=args.pull)
    elif verb == "pull":
        return _pull(args, project, names)
    else:
        steps = images.push_steps(project, names)
    images.run_steps(steps, StoragePaths.from_env(), tls_verify=args.tls_verify, quiet=args.quiet)
    return 0


def _pull(args: argparse.Namespace, project: Project, names: Sequence[str]) -> int:
    import time

    from rootless._paths import StoragePaths
    from rootless.cli._common import warn
    from rootless.compose import images

    paths = StoragePaths.from_env()
    wanted = [project.service(n).image for n in names]
    present = images.present_images((i for i in wanted if i is not None), paths)
    steps = images.pull_steps(project, names, present, policy=args.policy, now=time.time(),
                              ignore_buildable=args.ignore_buildable)  # fmt: skip
    failed = images.run_steps(steps, paths, tls_verify=args.tls_verify, quiet=args.quiet,
                              ignore_failures=args.ignore_pull_failures)  # fmt: skip
    for step in failed:
        why = f"build it: rootless compose build {step.service}" if step.optional else "ignored"
        warn(f'cannot pull the image {step.image} of service "{step.service}"; {why}')
    return 0


def _top(args: argparse.Namespace) -> int:
    from rootless.compose import runner
    from rootless.engine.containers import containers_store
    from rootless.engine.lifecycle import get
    from rootless.engine.processes import top

    project = load(args).project
    containers = containers_store()
    blocks = []
    for record in reversed(runner.ordered_records(project, containers, args.services_)):
        if get(record.id, containers).status != "running":
            continue
        header, *rows = top(record.id)
        table = [header, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in table]  # fmt: skip
        blocks.append("\n".join([record.name, *lines]))
    if blocks:
        print("\n\n".join(blocks))
    return 0


def _ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only the IDs")
    _services_argument(p)


def _ps(args: argparse.Namespace) -> int:
    from rootless.compose import runner
    from rootless.engine.containers import containers_store
    from rootless.engine.lifecycle import get

    project = load(args).project
    containers = containers_store()
    rows = []
    for record in reversed(runner.ordered_records(project, containers, args.services_)):
        record = get(record.id, containers)
        if not args.all and record.status not in ("running", "restarting"):
            continue
        if args.quiet:
            print(record.id)
            continue
        status = record.status
        if record.status == "exited":
            status = f"exited ({record.exit_code})"
        if record.health:
            status += f" ({record.health.get('Status')})"
        ports = ", ".join(f"{p[0] or '0.0.0.0'}:{p[1]}->{p[2]}/{p[3]}"
                          for p in record.options.get("ports") or [] if len(p) >= 4)  # fmt: skip
        rows.append((record.name, runner.compose_info(record)["service"], status, ports))
    if not args.quiet:
        header = ("NAME", "SERVICE", "STATUS", "PORTS")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for row in (header, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("-n", "--tail", type=int, metavar="N", help="the last N lines of each")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    p.add_argument("--no-color", action="store_true", help="no colours in the prefixes")
    _services_argument(p)


def _logs(args: argparse.Namespace) -> int:
    from rootless.compose import runner
    from rootless.compose.logs import follow_logs, print_logs
    from rootless.engine.containers import containers_store

    project = load(args).project
    containers = containers_store()
    records = list(reversed(runner.ordered_records(project, containers, args.services_)))
    options = {"colour": _colour(args), "tail": args.tail, "timestamps": args.timestamps}
    if not args.follow:
        print_logs(records, containers, sys.stdout.buffer, **options)
        return 0
    import trio

    try:
        trio.run(lambda: follow_logs(records, containers, sys.stdout.buffer, **options))
    except KeyboardInterrupt:
        return 130
    return 0


def _timeout_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--timeout", type=float, metavar="SECONDS", help="stop grace period")
    _services_argument(p)


def _stop(args: argparse.Namespace) -> int:
    from rootless.compose import runner

    runner.stop(load(args).project, args.services_, timeout=args.timeout, report=_report)
    return 0


def _start(args: argparse.Namespace) -> int:
    from rootless.compose import runner

    loaded = load(args)
    runner.start(loaded.project, args.services_, profiles=loaded.profiles, report=_report)
    return 0


def _restart(args: argparse.Namespace) -> int:
    from rootless.compose import runner

    runner.restart(load(args).project, args.services_, timeout=args.timeout, report=_report)
    return 0


def _exec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-T", "--no-tty", action="store_true", help="no pseudo-terminal")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("--index", type=int, default=1, metavar="N", help="which replica (1-based)")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")


def _exec(args: argparse.Namespace) -> int:
    from rootless.compose import runner
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.errors import ConfigError
    from rootless.runtime.plan import parse_env_lines

    project = load(args).project
    project.service(args.service)  # an unknown service fails here
    records = runner.service_records(project.name, args.service, containers_store())
    record = next((r for r in records if runner.compose_info(r)["number"] == args.index), None)
    if record is None:
        raise ConfigError(
            f'service "{args.service}" has no container {args.index}',
            hint=f"start it first: rootless compose up -d {args.service}",
        )
    tty = not args.no_tty and sys.stdin.isatty()
    return lifecycle.exec_in(
        record.id,
        args.command[1:] if args.command[:1] == ["--"] else args.command,
        interactive=tty,
        tty=tty,
        env=parse_env_lines(args.env, os.environ),
        user=args.user,
        workdir=args.workdir,
        detach=args.detach,
    )


def _run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-d", "--detach", action="store_true", help="run in the background; print the ID"
    )
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", metavar="NAME", help="container name (default PROJECT-SERVICE-run-ID)")
    p.add_argument("--entrypoint", metavar="CMD", help="override the entrypoint (split as words)")
    p.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VAL]",
        help="set a variable (KEY alone: this environment's value)",
    )
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("-u", "--user", metavar="USER[:GROUP]", help="run as this user")
    p.add_argument("-w", "--workdir", metavar="DIR", help="working directory inside")
    p.add_argument(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="[SOURCE:]TARGET[:ro]",
        help="mount as the service's volumes: (./relative to the project directory)",
    )
    p.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:][HOST:]CONTAINER[/PROTO]",
        help="publish a port on the host",
    )
    p.add_argument("--service-ports", action="store_true", help="publish the service's ports")
    p.add_argument(
        "--use-aliases", action="store_true", help="take the service's DNS names on its networks"
    )
    p.add_argument("--no-deps", action="store_true", help="do not start the dependencies")
    p.add_argument("--build", action="store_true", help="build the image before running")
    _pull_argument(p)
    p.add_argument("-T", "--no-tty", action="store_true", help="no pseudo-terminal")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (the default)")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="CMD")


def _run(args: argparse.Namespace) -> int:
    from rootless.cli._common import key_values
    from rootless.compose import runner
    from rootless.compose.oneoff import OneOff
    from rootless.runtime.plan import parse_env_lines

    loaded = load(args)
    request = OneOff(
        command=tuple(args.command[1:] if args.command[:1] == ["--"] else args.command),
        entrypoint=args.entrypoint,
        env=tuple(parse_env_lines(args.env, os.environ)),
        labels=tuple(key_values(args.label, "label").items()),
        user=args.user,
        workdir=args.workdir,
        volumes=tuple(args.volume),
        publish=tuple(args.publish),
        service_ports=args.service_ports,
        use_aliases=args.use_aliases,
        name=args.name,
        rm=args.rm,
        detach=args.detach,
        tty=not args.no_tty and sys.stdin.isatty(),
    )
    return runner.run_one_off(
        loaded.project,
        args.service,
        request,
        no_deps=args.no_deps,
        build=args.build,
        profiles=loaded.profiles,
        pull=args.pull,
        report=_report,
    )


SUBCOMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "config": ("check the files and print the normalised project", _config_arguments, _config),
    "up": ("create and start the services", _up_arguments, _up),
    "down": ("stop and remove containers and networks", _down_arguments, _down),
    "ps": ("list the project's containers", _ps_arguments, _ps),
    "logs": ("show the services' output", _logs_arguments, _logs),
    "stop": ("stop the services", _timeout_arguments, _stop),
    "start": ("start the services' existing containers", _services_argument, _start),
    "restart": ("stop, then start the services", _timeout_arguments, _restart),
    "exec": ("run a command in a service's container", _exec_arguments, _exec),
    "run": ("run a one-off command in a new container of a service", _run_arguments, _run),
    "build": (
        "build the images of services with build:",
        _build_arguments,
        lambda args: _image_verb(args, "build"),
    ),
    "pull": ("pull the services' images", _pull_arguments, lambda args: _image_verb(args, "pull")),
    "push": (
        "push the images of built services that name one",
        _image_arguments,
        lambda args: _image_verb(args, "push"),
    ),
    "top": ("show the processes of the services' containers", _services_argument, _top),
}
