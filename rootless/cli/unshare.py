"""rootless unshare: a shell or command as root of the user's rootless user namespace.

Like ``podman unshare``: the same ID mapping containers get, plus a private mount
namespace, so the user can inspect or fix files owned by subordinate IDs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import NoReturn


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="CMD", help="command to run (default: $SHELL)"
    )


def main(args: argparse.Namespace) -> int:
    from rootless.cli._common import warn
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import exit_code, forward_signals_while_waiting
    from rootless.runtime.userns import fork_in_userns
    from rootless.sys.namespaces import CLONE_NEWNS

    command = [c for c in args.command if c != "--"] or [os.environ.get("SHELL", "/bin/sh")]
    idmap = current_user_plan()
    if idmap.warning:
        warn(idmap.warning)
    env = dict(os.environ, ROOTLESS_UNSHARE="1", ROOTLESS_IN_USERNS="1")

    def child() -> NoReturn:
        exe = shutil.which(command[0], path=env.get("PATH"))
        if exe is None:
            print(f"Error: {command[0]}: command not found", file=sys.stderr)
            os._exit(127)
        try:
            os.execve(exe, command, env)
        except OSError as e:
            print(f"Error: cannot run {command[0]}: {e.strerror}", file=sys.stderr)
            os._exit(126)

    pid = fork_in_userns(idmap, child, unshare_flags=CLONE_NEWNS)
    return exit_code(forward_signals_while_waiting(pid))
