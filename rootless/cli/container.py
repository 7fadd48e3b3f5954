"""rootless container: the container verbs grouped (ls, rm, start, ..., prune).

Each subcommand is the same handler as the top-level verb (``container ls`` is
``ps``); ``container prune`` lives here.
"""

from __future__ import annotations

import argparse

from rootless.cli._common import add_group

SUBCOMMANDS = {  # subcommand -> (module, aliases, one-line help)
    "ls": ("rootless.cli.ps", ("list", "ps"), "list containers"),
    "create": ("rootless.cli.create", (), "create a container without starting it"),
    "run": ("rootless.cli.run", (), "run a command in a new container"),
    "start": ("rootless.cli.start", (), "start created or stopped containers"),
    "stop": ("rootless.cli.stop", (), "stop running containers"),
    "restart": ("rootless.cli.restart", (), "stop, then start containers"),
    "kill": ("rootless.cli.kill", (), "send a signal to running containers"),
    "rm": ("rootless.cli.rm", ("remove",), "remove containers"),
    "wait": ("rootless.cli.wait", (), "wait for containers to exit; print their exit codes"),
    "exec": ("rootless.cli.exec", (), "run a command in a running container"),
    "attach": ("rootless.cli.attach", (), "follow a running container's output"),
    "logs": ("rootless.cli.logs", (), "show a container's output"),
    "inspect": ("rootless.cli.inspect", (), "show containers as JSON"),
    "rename": ("rootless.cli.rename", (), "give a container a new name"),
    "cp": ("rootless.cli.cp", (), "copy files between a container and the host"),
    "diff": ("rootless.cli.diff", (), "show changes to a container's files"),
    "top": ("rootless.cli.top", (), "show the processes of a container"),
    "stats": ("rootless.cli.stats", (), "show containers' resource use"),
    "pause": ("rootless.cli.pause", (), "pause containers (SIGSTOP)"),
    "unpause": ("rootless.cli.unpause", (), "resume paused containers (SIGCONT)"),
    "port": ("rootless.cli.port", (), "show the published ports of a container"),
    "export": ("rootless.cli.export", (), "write a container's files as a tar"),
    "prune": ("rootless.cli.container", (), "remove all exited containers"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_group(p, "container", SUBCOMMANDS, (add_prune_arguments, prune))


def main(args: argparse.Namespace) -> int:
    return int(args.group_handler(args))


def add_prune_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def prune(args: argparse.Namespace) -> int:
    from rootless.cli._common import confirm
    from rootless.engine.container_ops import prune as prune_containers

    if not args.force and not confirm("This will remove all non running containers."):
        return 0
    for cid in prune_containers():
        print(cid)
    return 0
