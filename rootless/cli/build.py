"""rootless build: build an image from a Containerfile or Dockerfile."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rootless.cli._common import tls_verify_flag

if TYPE_CHECKING:
    from rootless.build.mounts import BuildSecret


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
    from rootless._paths import StoragePaths
    from rootless.build.mounts import parse_secret
    from rootless.engine.storage import storage_driver
    from rootless.runtime.userns import run_in_userns

    build_args = _pairs(args.build_arg, "--build-arg")
    labels = _pairs(args.label, "--label")
    secrets = tuple(parse_secret(s) for s in args.secret)
    driver = storage_driver(StoragePaths.from_env())  # probed outside the namespace
    return run_in_userns(lambda: _build(args, build_args, labels, secrets, driver))


def _build(
    args: argparse.Namespace,
    build_args: tuple[tuple[str, str], ...],
    labels: tuple[tuple[str, str], ...],
    secrets: tuple[BuildSecret, ...],
    driver: str,
) -> int:
    import contextlib
    import sys
    from pathlib import Path

    from rootless.build.context import context_from_tar
    from rootless.build.executor import BuildOptions, build, find_containerfile
    from rootless.engine.images import open_store

    store = open_store()
    with contextlib.ExitStack() as stack:
        if args.context == "-":
            context = stack.enter_context(context_from_tar(sys.stdin.buffer, store.root / "tmp"))
        else:
            context = Path(args.context)
            if not context.is_dir():
                _not_a_directory(args.context)
        opts = BuildOptions(
            context=context.resolve(),
            containerfile=find_containerfile(context, args.file),
            tags=tuple(args.tag),
            build_args=build_args,
            target=args.target,
            no_cache=args.no_cache,
            pull=args.pull,
            labels=labels,
            network=args.network,
            fmt=args.format,
            quiet=args.quiet,
            tls_verify=args.tls_verify,
            squash=args.squash,
            squash_all=args.squash_all,
            secrets=secrets,
            driver=driver,
        )
        record = build(store, opts)
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
