"""rootless kube generate|play|down: Kubernetes YAML from containers, and pods from YAML."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rootless.cli._common import tls_verify_flag

if TYPE_CHECKING:
    from rootless.kube.plan import KubePlan


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    g = sub.add_parser(
        "generate",
        help="Pod (or Deployment and Service) YAML for containers or compose projects",
        description="Write Kubernetes YAML for containers or compose projects.",
    )
    g.add_argument(
        "--type",
        choices=("pod", "deployment"),
        default="pod",
        help="the kind of object to write (default pod)",
    )
    g.add_argument(
        "-s", "--service", action="store_true", help="also a NodePort Service for published ports"
    )
    g.add_argument("--name", metavar="POD", help="the pod's name (default: CTR-pod or PROJECT)")
    g.add_argument("-f", "--filename", metavar="FILE", help="write the YAML to FILE")
    g.add_argument("refs", nargs="+", metavar="CTR|PROJECT", help="containers or compose projects")
    g.set_defaults(kube_handler=_generate)

    play = sub.add_parser(
        "play", help="run the pods of a YAML file", description="Run the pods of a YAML file."
    )
    play.add_argument("--replace", action="store_true", help="first remove pods that exist")
    play.add_argument("-q", "--quiet", action="store_true", help="print no progress")
    play.add_argument(
        "--configmap",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML of ConfigMaps and Secrets the pods refer to (repeatable, or FILE,FILE)",
    )
    tls_verify_flag(play)
    play.add_argument("file", metavar="FILE", help="the YAML file (- for standard input)")
    play.set_defaults(kube_handler=_play)

    down = sub.add_parser(
        "down",
        help="remove the pods of a YAML file",
        description="Remove the pods of a YAML file: containers and emptyDir volumes.",
    )
    down.add_argument("file", metavar="FILE", help="the YAML file (- for standard input)")
    down.set_defaults(kube_handler=_down)


def main(args: argparse.Namespace) -> int:
    return int(args.kube_handler(args))


def _report(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def _generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rootless.cli._common import warn
    from rootless.kube.collect import generate
    from rootless.kube.generate import render

    out = generate(args.refs, name=args.name, kind=args.type, with_service=args.service)
    for message in out.warnings:
        warn(message)
    text = render(out.objects)
    if args.filename:
        Path(args.filename).write_text(text)
    else:
        print(text, end="")
    return 0


def _read(file: str) -> str:
    import sys
    from pathlib import Path

    from rootless.errors import ConfigError

    try:
        return sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {file}: {e.strerror}") from None


def _load(file: str, configmaps: list[str], *, lenient: bool = False) -> KubePlan:
    from rootless._paths import StoragePaths
    from rootless.cli._common import warn
    from rootless.kube.plan import plan_kube
    from rootless.kube.play import files_root
    from rootless.kube.source import parse_documents

    docs = parse_documents(_read(file), "<stdin>" if file == "-" else file)
    extra = [
        doc
        for name in (n for given in configmaps for n in given.split(",") if n)
        for doc in parse_documents(_read(name), name)
    ]
    root = files_root(StoragePaths.from_env())
    plan = plan_kube(docs, configmaps=extra, files_root=str(root), lenient=lenient)
    if not lenient:
        for message in plan.warnings:
            warn(message)
    return plan


def _play(args: argparse.Namespace) -> int:
    from rootless.kube.play import play

    plan = _load(args.file, args.configmap)
    report = (lambda _: None) if args.quiet else _report
    started = play(plan.pods, replace=args.replace, tls_verify=args.tls_verify, report=report)
    for pod, names in started.items():
        print(f"Pod:\n{pod}\nContainers:")
        for name in names:
            print(name)
    return 0


def _down(args: argparse.Namespace) -> int:
    from rootless.kube.play import down

    plan = _load(args.file, [], lenient=True)  # down needs the pods' names only
    for pod in down([p.name for p in plan.pods], report=_report):
        print(pod)
    return 0
