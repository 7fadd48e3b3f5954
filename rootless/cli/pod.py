"""rootless pod create|ps|inspect|start|stop|restart|kill|rm|exists|top|prune."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rootless.cli._common import bool_option


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="pod_command", metavar="COMMAND", required=True)

    def verb(name: str, help_text: str, handler: Callable[[argparse.Namespace], int],
             aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:  # fmt: skip
        sp = sub.add_parser(name, aliases=list(aliases), help=help_text, description=help_text)
        sp.set_defaults(pod_handler=handler)
        return sp

    c = verb("create", "create a pod (its infra container holds its network)", _create)
    c.add_argument("--name", help="the pod's name (default: generated)")
    c.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:][HOST:]CTR[/PROTO]",
        help="publish a port of the pod's containers on the host",
    )
    c.add_argument(
        "--network",
        default="slirp4netns",
        metavar="MODE",
        help="the pod's network: slirp4netns[:OPTS] (default), pasta[:OPTS], none, host or NAME",
    )
    c.add_argument("--hostname", help="the hostname of the pod's containers (default: its name)")
    c.add_argument("--add-host", action="append", default=[], metavar="NAME:IP")
    c.add_argument(
        "-l", "--label", action="append", default=[], metavar="K=V", help="a label of the pod"
    )
    bool_option(c, "--infra", default=True, help="make an infra container (default true)")
    c.add_argument("--no-infra", dest="infra", action="store_false", help="same as --infra=false")

    ps = verb("ps", "list pods", _ps, ("ls", "list"))
    ps.add_argument("-q", "--quiet", action="store_true", help="print only the IDs")
    ps.add_argument("--no-trunc", action="store_true", help="do not shorten IDs")
    ps.add_argument("--format", metavar="FORMAT", help="json, table or a Go template")

    i = verb("inspect", "show pods as JSON", _inspect)
    i.add_argument("pods", nargs="+", metavar="POD")

    for name, help_text, handler in (
        ("start", "start pods: the infra container, then the others", _start),
        ("stop", "stop pods: their containers, then the infra container", _stop),
        ("restart", "stop, then start pods", _restart),
        ("kill", "send a signal to the running containers of pods", _kill),
        ("rm", "remove pods, their containers and infra containers", _rm),
    ):
        sp = verb(name, help_text, handler, ("remove",) if name == "rm" else ())
        sp.add_argument("-a", "--all", action="store_true", help="every pod")
        if name in ("stop", "restart"):
            sp.add_argument(
                "-t",
                "--time",
                type=float,
                metavar="SECONDS",
                help="seconds to wait for each container before killing it (default: its own)",
            )
        if name == "kill":
            sp.add_argument("-s", "--signal", default="SIGKILL", help="the signal (SIGKILL)")
        if name == "rm":
            sp.add_argument(
                "-f", "--force", action="store_true", help="stop running containers first"
            )
        sp.add_argument("pods", nargs="*", metavar="POD")

    e = verb("exists", "exit 0 if the pod exists, 1 if not", _exists)
    e.add_argument("pod", metavar="POD")

    t = verb("top", "show the processes of a pod's running containers", _top)
    t.add_argument("pod", metavar="POD")
    t.add_argument("descriptors", nargs="*", metavar="DESCRIPTOR", help="columns, as for top")

    pr = verb("prune", "remove every pod none of whose containers is running", _prune)
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def main(args: argparse.Namespace) -> int:
    return int(args.pod_handler(args))


def _create(args: argparse.Namespace) -> int:
    from rootless.cli._common import key_values
    from rootless.container.records import generate_name
    from rootless.engine.podplan import PodSpec
    from rootless.engine.pods import create_pod

    spec = PodSpec(
        name=args.name or generate_name(),
        hostname=args.hostname or "",
        publish=tuple(args.publish),
        network=args.network,
        add_hosts=tuple(args.add_host),
        labels=key_values(args.label, "label", bare_keys=True),
        infra=args.infra,
    )
    print(create_pod(spec).id)
    return 0


def _rows(no_trunc: bool) -> list[dict[str, object]]:
    import time

    from rootless.engine.containers import containers_store
    from rootless.engine.podplan import ps_row
    from rootless.engine.pods import list_pods, members

    containers = containers_store()
    now = time.time()
    return [
        ps_row(pod, members(pod.name, containers), now=now, no_trunc=no_trunc)
        for pod in list_pods()
    ]


def _ps(args: argparse.Namespace) -> int:
    from rootless.cli._format import render

    rows = _rows(args.no_trunc)
    if args.quiet:
        for row in rows:
            print(row["Id"])
        return 0
    columns = ("Id", "Name", "Status", "CreatedHuman", "InfraId", "NumberOfContainers")
    headers = {
        "Id": "POD ID",
        "CreatedHuman": "CREATED",
        "InfraId": "INFRA ID",
        "NumberOfContainers": "# OF CONTAINERS",
    }
    print(render(rows, args.format, columns=columns, headers=headers), end="")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import json

    from rootless.engine.containers import containers_store
    from rootless.engine.podplan import inspect
    from rootless.engine.pods import get_pod, members

    containers = containers_store()
    found = [get_pod(ref) for ref in args.pods]
    print(json.dumps([inspect(p, members(p.name, containers)) for p in found], indent=4))
    return 0


def _each(args: argparse.Namespace, action: Callable[[str], object]) -> int:
    """``action`` on each named pod (or every pod with --all), printing its ID; go on
    after an error, report it, and exit with its code (as the container verbs)."""
    from rootless.cli._common import apply_each
    from rootless.engine.pods import get_pod, list_pods
    from rootless.errors import ConfigError

    refs = [p.id for p in list_pods()] if args.all else list(args.pods)
    if not refs and not args.all:
        raise ConfigError("no pod given", hint="name one or more pods, or use --all")
    return apply_each(refs, action, shown=lambda ref: get_pod(ref).id)


def _start(args: argparse.Namespace) -> int:
    from rootless.engine.pods import start_pod

    return _each(args, start_pod)


def _stop(args: argparse.Namespace) -> int:
    from rootless.engine.pods import stop_pod

    return _each(args, lambda ref: stop_pod(ref, args.time))


def _restart(args: argparse.Namespace) -> int:
    from rootless.engine.pods import start_pod, stop_pod

    return _each(args, lambda ref: start_pod(stop_pod(ref, args.time).id))


def _kill(args: argparse.Namespace) -> int:
    from rootless.engine.pods import kill_pod
    from rootless.runtime.signals import parse_signal

    sig = parse_signal(args.signal)
    return _each(args, lambda ref: kill_pod(ref, sig))


def _rm(args: argparse.Namespace) -> int:
    from rootless.engine.pods import remove_pod

    return _each(args, lambda ref: remove_pod(ref, force=args.force))


def _exists(args: argparse.Namespace) -> int:
    from rootless.engine.pods import NoSuchPod, get_pod

    try:
        get_pod(args.pod)
    except NoSuchPod:
        return 1
    return 0


def _top(args: argparse.Namespace) -> int:
    from rootless.cli._format import render
    from rootless.engine.containers import containers_store
    from rootless.engine.pods import get_pod, members
    from rootless.engine.processes import parse_descriptors, top
    from rootless.errors import ContainerStartError

    pod = get_pod(args.pod)
    running = [r for r in members(pod.name, containers_store()) if r.status == "running"]
    if not running:
        raise ContainerStartError(
            f"cannot show the processes of pod {pod.name}: none of its containers is running",
            hint=f"start it first: rootless pod start {pod.name}",
        )
    keys = ["name", *(f"c{i}" for i in range(len(parse_descriptors(args.descriptors))))]
    header: list[str] = []
    items = []
    for record in running:
        header, *rows = top(record.id, args.descriptors)
        items += [dict(zip(keys, [record.name, *row], strict=True)) for row in rows]
    headers = dict(zip(keys, ["CONTAINER", *header], strict=True))
    print(render(items, None, columns=keys, headers=headers), end="")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from rootless.cli._common import confirm
    from rootless.engine.containers import containers_store
    from rootless.engine.pods import list_pods, members, remove_pod

    if not args.force and not confirm("This will remove all stopped pods."):
        return 0
    containers = containers_store()
    for pod in list_pods():
        if all(r.status != "running" for r in members(pod.name, containers)):
            remove_pod(pod.id)
            print(pod.id)
    return 0
