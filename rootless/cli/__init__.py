"""The ``rootless`` command: parse arguments, make one library call, return an exit code.

Only the module of the verb being run is imported, so ``rootless --help`` and
light verbs stay fast; heavy libraries are imported by the code that needs them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from rootless import __version__

# verb -> (module, one-line help)
VERBS = {
    "run": ("rootless.cli.run", "run a command in a new container"),
    "unshare": ("rootless.cli.unshare", "run a command in the user's rootless user namespace"),
    "info": ("rootless.cli.info", "show the host's rootless capabilities and configuration"),
    "pull": ("rootless.cli.pull", "pull an image from a registry"),
    "create": ("rootless.cli.create", "create a container without starting it"),
    "start": ("rootless.cli.start", "start created or stopped containers"),
    "stop": ("rootless.cli.stop", "stop running containers"),
    "kill": ("rootless.cli.kill", "send a signal to running containers"),
    "rm": ("rootless.cli.rm", "remove containers"),
    "wait": ("rootless.cli.wait", "wait for containers to exit; print their exit codes"),
    "exec": ("rootless.cli.exec", "run a command in a running container"),
    "ps": ("rootless.cli.ps", "list containers"),
    "logs": ("rootless.cli.logs", "show a container's output"),
    "port": ("rootless.cli.port", "list a container's published ports"),
    "healthcheck": ("rootless.cli.healthcheck", "run a container's healthcheck now"),
    "images": ("rootless.cli.images", "list images in local storage"),
    "image": ("rootless.cli.image", "manage images (ls, rm, tag, inspect, history, prune, ...)"),
    "rmi": ("rootless.cli.rmi", "remove images from local storage"),
    "tag": ("rootless.cli.tag", "give an image more names"),
    "untag": ("rootless.cli.untag", "remove names from an image"),
    "history": ("rootless.cli.history", "show how an image was made"),
    "inspect": ("rootless.cli.inspect", "show containers and images as JSON"),
    "push": ("rootless.cli.push", "push an image to a registry"),
    "save": ("rootless.cli.save", "write images to a docker-archive or oci-archive tar"),
    "load": ("rootless.cli.load", "load images from a docker-archive or oci-archive tar"),
    "import": ("rootless.cli.import_", "make an image from a rootfs tarball"),
    "export": ("rootless.cli.export", "write a container's files as a tar"),
    "commit": ("rootless.cli.commit", "make an image from a container's changes"),
    "build": ("rootless.cli.build", "build an image from a Containerfile or Dockerfile"),
    "login": ("rootless.cli.login", "log in to a registry (credentials checked, then saved)"),
    "logout": ("rootless.cli.logout", "forget the credentials saved for a registry"),
    "cp": ("rootless.cli.cp", "copy files between a container and the host"),
    "diff": ("rootless.cli.diff", "show changes to a container's files"),
    "top": ("rootless.cli.top", "show the processes of a running container"),
    "stats": ("rootless.cli.stats", "show containers' CPU, memory, PIDs and I/O (from /proc)"),
    "pause": ("rootless.cli.pause", "pause containers: stop all their processes (SIGSTOP)"),
    "unpause": ("rootless.cli.unpause", "resume paused containers (SIGCONT)"),
    "events": ("rootless.cli.events", "show what happened to containers and images"),
    "rename": ("rootless.cli.rename", "give a container a new name"),
    "restart": ("rootless.cli.restart", "stop, then start containers"),
    "attach": ("rootless.cli.attach", "follow a running container's output; exit with its code"),
    "container": ("rootless.cli.container", "manage containers (ls, rm, cp, top, prune, ...)"),
    "system": ("rootless.cli.system", "manage the whole storage (df, prune, reset)"),
    "volume": ("rootless.cli.volume", "manage volumes (create, ls, inspect, rm, prune)"),
    "compose": ("rootless.cli.compose", "run multi-container projects from compose files"),
    "network": ("rootless.cli.network", "manage user networks (create, ls, inspect, rm, ...)"),
    "generate": ("rootless.cli.generate", "generate systemd units for containers"),
    "secret": ("rootless.cli.secret", "manage secrets (create, ls, inspect, rm)"),
    "kube": ("rootless.cli.kube", "Kubernetes YAML from containers; run and remove its pods"),
    "pod": ("rootless.cli.pod", "manage pods: containers sharing a network (create, ps, rm, ...)"),
    "version": ("rootless.cli.version", "show the versions of rootless, Python and the host"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rootless",
        description="A rootless, daemonless OCI container engine.",
    )
    parser.add_argument("--version", action="version", version=f"rootless version {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND")
    for verb, (module, help_text) in VERBS.items():
        if only is not None and verb != only:
            continue  # only the verb being run is built: each parser costs ~1 ms
        mod = importlib.import_module(module)
        p = sub.add_parser(
            verb, help=help_text, description=help_text, add_help=getattr(mod, "ADD_HELP", True)
        )
        mod.add_arguments(p)
        p.set_defaults(handler=mod.main)
    return parser


def first_verb(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in VERBS else None
    return None


def main(argv: Sequence[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    """Run one command line; ``parser`` is ``build_parser(first_verb(argv))`` built
    ahead (the API's runner builds it once, before it forks a process per call)."""
    from rootless.errors import RootlessError

    args_list = list(sys.argv[1:] if argv is None else argv)
    verb = first_verb(args_list)
    if verb is None and args_list[:1] == ["--version"]:
        print(f"rootless version {__version__}")
        return 0
    parser = parser or build_parser(verb)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as e:
        # argparse exits 2 on bad usage; Podman reports usage errors as 125.
        return 125 if e.code == 2 else int(e.code or 0)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args))
    except RootlessError as e:
        if str(e):  # empty when a child process already reported it
            print(f"Error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


def entry(parser: argparse.ArgumentParser | None = None) -> NoReturn:
    """The ``rootless`` command: :func:`main`, then exit without tearing Python down
    (the API's runner calls it in each call's process, with the verb's parser).

    Finalising the interpreter (every module and object, SQLite's checkpoint on close)
    costs ~20 ms of CPU per command and does nothing useful: by the time main() returns
    every file is closed and every transaction committed. atexit hooks (progress
    displays) still run and the standard streams are flushed.
    """
    import atexit

    code = main(parser=parser)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            code = code or 1
    os._exit(code)
