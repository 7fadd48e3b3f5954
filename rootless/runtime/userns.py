"""Fork a child into a new user namespace mapped with the user's ID ranges.

The handshake: the child unshares its user namespace and says so on a pipe; the
parent (still outside, with the user's own credentials) maps the IDs with
newuidmap/newgidmap and answers; only then does the child go on, as root of the
namespace. Must be called before any thread exists (it forks and runs Python in
the child).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import NoReturn

from rootless.errors import IDMapError
from rootless.runtime.idmap import IDMapPlan, apply_idmap
from rootless.sys import namespaces as ns
from rootless.sys import process


def fork_tied() -> int:
    """fork(); the child gets SIGKILL when this process dies, however it dies."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            process.set_pdeathsig(signal.SIGKILL)
        except BaseException:
            os._exit(125)
        if os.getppid() != parent:  # we died before the tie was made
            os._exit(137)
    return pid


def kill_and_reap(pid: int) -> None:
    """SIGKILL our child ``pid`` and wait for it (it may be gone already)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def fork_in_userns(
    idmap: IDMapPlan,
    child: Callable[[], NoReturn],
    *,
    unshare_flags: int = 0,
    on_child_error: Callable[[BaseException], NoReturn] | None = None,
) -> int:
    """Fork; the child runs ``child()`` as root of a new, mapped user namespace.

    ``unshare_flags`` are unshared in the child after the mapping (a mount namespace,
    say). Returns the child's PID once it has been mapped. The child gets SIGKILL if
    this process dies.
    """
    up_r, up_w = os.pipe2(os.O_CLOEXEC)
    down_r, down_w = os.pipe2(os.O_CLOEXEC)
    pid = fork_tied()
    if pid == 0:
        try:
            os.close(up_r)
            os.close(down_w)
            ns.unshare(ns.CLONE_NEWUSER)
            os.write(up_w, b"U")
            if os.read(down_r, 1) != b"G":
                os._exit(125)
            os.close(up_w)
            os.close(down_r)
            if unshare_flags:
                ns.unshare(unshare_flags)
            child()
        except BaseException as e:
            if on_child_error is not None:
                on_child_error(e)
            os._exit(125)
    os.close(up_w)
    os.close(down_r)
    try:
        if os.read(up_r, 1) != b"U":
            raise _ChildFailed()
        apply_idmap(pid, idmap)
        os.write(down_w, b"G")
        return pid
    except BaseException:
        kill_and_reap(pid)
        raise
    finally:
        os.close(up_r)
        os.close(down_w)


class _ChildFailed(IDMapError):
    def __init__(self) -> None:
        from rootless.runtime.idmap import is_initial_map

        with open("/proc/self/uid_map") as f:
            nested = not is_initial_map(f.read())
        super().__init__(
            "cannot create a user namespace",
            hint="inside a container, its seccomp filter forbids nested user namespaces: "
            "run the outer container with --security-opt seccomp=unconfined"
            if nested
            else "check that unprivileged user namespaces are enabled "
            "(sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0)",
        )


IN_USERNS_ENV = "ROOTLESS_IN_USERNS"


def in_userns() -> bool:
    """True inside a process started by run_in_userns (or `rootless unshare`)."""
    return os.environ.get(IN_USERNS_ENV) == "1"


def run_in_userns(fn: Callable[[], int], idmap: IDMapPlan | None = None) -> int:
    """Run ``fn`` in a forked child that is root of the user's mapped user namespace.

    This is how verbs that write files owned by subordinate IDs (pull, rmi, load)
    work, as Podman does: the whole operation runs inside the namespace. The child
    reports a RootlessError itself and exits with its code; the parent forwards
    signals and returns the child's exit code. Call before any thread exists.
    """
    import sys

    from rootless.errors import RootlessError
    from rootless.runtime.idmap import current_user_plan
    from rootless.runtime.launch import exit_code, forward_signals_while_waiting
    from rootless.sys.namespaces import CLONE_NEWNS

    if in_userns():
        return fn()

    def child() -> NoReturn:
        os.environ[IN_USERNS_ENV] = "1"
        code = 125
        try:
            code = fn()
        except RootlessError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = e.exit_code
        except KeyboardInterrupt:
            code = 130
        except BaseException:  # a bug: say what it was, as Python would, not nothing
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def report(e: BaseException) -> NoReturn:
        print(f"Error: {e}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(getattr(e, "exit_code", 125))

    plan = idmap or current_user_plan()
    pid = fork_in_userns(plan, child, unshare_flags=CLONE_NEWNS, on_child_error=report)
    return exit_code(forward_signals_while_waiting(pid))
