"""rootless build: build an image from a Containerfile or Dockerfile."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rootless.cli._common import tls_verify_flag

if TYPE_CHECKING:
    from rootless.build.executor import BuildOptions


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "context", nargs="?", default=".", metavar="CONTEXT", help="context directory, or - (a tar)"
    )
    p.add_argument(
        "-t", "--tag", action="append", default=[], metavar="NAME", help="name the image"
    )
    p.add_argument("-f", "--file", metavar="FILE", help="the Containerfile (default: in CONTEXT)")
    p.add_argument(
        "--build-arg", action="append", default=[], metavar="K=V", help="set a build argument"
    )
    p.add_argument("--target", metavar="STAGE", help="build this stage (default: the last)")
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("--pull", action="store_true", help="pull base images even when present")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="add a label")
    p.add_argument(
        "--network",
        default="host",
        choices=("host", "none", "private"),
        help="network of RUN steps (default: host)",
    )
    p.add_argument("--iidfile", metavar="FILE", help="write the image ID to FILE")
    p.add_argument(
        "--format", default="oci", choices=("oci", "docker"), help="image format (default: oci)"
    )
    p.add_argument("--squash", action="store_true", help="the last stage's new layers as one layer")
    p.add_argument("--squash-all", action="store_true", help="the whole image as one layer")
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="id=ID,src=FILE",
        help="a secret for RUN --mount=type=secret (also id=ID,env=VAR)",
    )
    p.add_argument(
        "--ssh",
        action="append",
        default=[],
        metavar="default|ID=SOCKET",
        help="an ssh agent for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)",
    )
    p.add_argument(
        "--add-host",
        action="append",
        default=[],
        metavar="NAME:IP",
        help="add a line to the /etc/hosts of RUN steps (not to the image)",
    )
    p.add_argument("--shm-size", metavar="SIZE", help="size of /dev/shm in RUN steps (e.g. 1g)")
    p.add_argument(
        "--ulimit",
        action="append",
        default=[],
        metavar="NAME=SOFT[:HARD]",
        help="a resource limit of RUN steps (e.g. nofile=1024:2048)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    tls_verify_flag(p)


def _pairs(values: list[str], what: str) -> tuple[tuple[str, str], ...]:
    import os

    from rootless.errors import ConfigError

    out = []
    for value in values:
        key, sep, val = value.partition("=")
        if not key:
            raise ConfigError(f"invalid {what} {value!r}", hint="use KEY=VALUE")
        if not sep and what == "--build-arg":  # a bare name takes the host's value, as Docker
            if key not in os.environ:
                continue
            val = os.environ[key]
        out.append((key, val))
    return tuple(out)


def main(args: argparse.Namespace) -> int:
    import os

    from rootless._paths import StoragePaths
    from rootless._units import parse_size
    from rootless.build.executor import BuildOptions
    from rootless.build.mounts import parse_secret
    from rootless.build.sshagent import check_agent, parse_ssh
    from rootless.engine.storage import storage_driver
    from rootless.network.etcfiles import parse_add_host
    from rootless.runtime.plan import parse_ulimit
    from rootless.runtime.userns import run_in_userns

    # Checked and read outside the namespace: the agent's socket is the user's.
    agents = {a.id: a for a in (check_agent(parse_ssh(s, os.environ)) for s in args.ssh)}
    partial = BuildOptions(
        context=Path(),
        containerfile=Path(),
        build_args=_pairs(args.build_arg, "--build-arg"),
        labels=_pairs(args.label, "--label"),
        secrets=tuple(parse_secret(s) for s in args.secret),
        add_hosts=tuple(parse_add_host(h) for h in args.add_host),
        shm_size=None if args.shm_size is None else parse_size(args.shm_size, what="--shm-size"),
        ulimits=tuple(parse_ulimit(u) for u in args.ulimit),
        ssh=tuple(agents.values()),
        driver=storage_driver(StoragePaths.from_env()),  # probed outside the namespace
    )
    return run_in_userns(lambda: _build(args, partial))


def _build(args: argparse.Namespace, partial: BuildOptions) -> int:
    """Build with ``partial`` (the options read before entering the namespace)."""
    import contextlib
    import sys

    import attrs

    from rootless.build.context import context_from_tar
    from rootless.build.executor import build, find_containerfile
    from rootless.engine.images import image_event, open_store

    store = open_store()
    with contextlib.ExitStack() as stack:
        if args.context == "-":
            context = stack.enter_context(context_from_tar(sys.stdin.buffer, store.root / "tmp"))
        else:
            context = Path(args.context)
            if not context.is_dir():
                _not_a_directory(args.context)
        opts = attrs.evolve(
            partial,
            context=context.resolve(),
            containerfile=find_containerfile(context, args.file),
            tags=tuple(args.tag),
            target=args.target,
            no_cache=args.no_cache,
            pull=args.pull,
            network=args.network,
            fmt=args.format,
            quiet=args.quiet,
            tls_verify=args.tls_verify,
            squash=args.squash,
            squash_all=args.squash_all,
        )
        record = build(store, opts)
    image_event(store, "build", record.id, ",".join(args.tag))
    if args.iidfile:
        from rootless._atomic import atomic_write

        atomic_write(Path(args.iidfile), record.id.encode())
    return 0


def _not_a_directory(context: str) -> None:
    """The error for a CONTEXT that is no directory: git and URL contexts say what to do."""
    from rootless.build.remote import git_unsupported, is_git_url, is_url
    from rootless.errors import BuildError

    if is_git_url(context):
        raise git_unsupported(context, what="the build context")
    if is_url(context):
        raise BuildError(
            f"cannot use the URL {context} as the build context: URL contexts are not supported",
            hint=f"download the archive and pass it on stdin: curl -fsSL {context} | "
            "rootless build -",
        )
    raise BuildError(f"the context {context} is not a directory")
