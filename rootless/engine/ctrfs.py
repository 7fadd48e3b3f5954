"""Work on a container's files from a child process that sees nothing but the container.

The child enters a user namespace with the container's ID mapping (so files owned by
subordinate IDs are reachable, with their owners as the container sees them) and
chroots into the container's root:

* a running container: the root of its PID 1 (``/proc/PID/root``), with every mount
  the container has; the child joins PID 1's own user namespace;
* a stopped image container: an overlay of its layers and writable layer, mounted in
  the child's private mount namespace (it vanishes with the child);
* a ``--rootfs`` container: its directory.

Inside the chroot the kernel resolves every path, symlinks and ``..`` included, within
the container, so no link the container planted can lead to the host's files. The
caller hands data in and out through pipes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Collection
from typing import Literal, NoReturn

import attrs

from rootless._paths import StoragePaths
from rootless._procfs import process_start_time
from rootless.container.records import ContainerRecord
from rootless.errors import ContainerStartError, RootlessError
from rootless.runtime.idmap import IDMapPlan
from rootless.runtime.spec import Spec

Kind = Literal["running", "overlay", "directory"]


@attrs.frozen
class FsTarget:
    """Where a container's root filesystem is, and how to reach it."""

    kind: Kind
    rootfs: str  # the rootfs directory (the overlay's mount point for image containers)
    pid: int = 0
    pid_start: int = 0
    overlay: str | None = None  # overlayfs options for a stopped image container


def plan_target(record: ContainerRecord, spec: Spec) -> FsTarget:
    """How to reach ``record``'s files: through its PID 1 when it runs, else from disk."""
    if record.status == "running" and record.pid:
        return FsTarget("running", spec.root.path, record.pid, record.pid_start)
    if spec.root.overlay:
        return FsTarget("overlay", spec.root.path, overlay=spec.root.overlay)
    return FsTarget("directory", spec.root.path)


def report_and_exit(e: BaseException) -> NoReturn:
    """In a child: print the error as the CLI would and exit with its code."""
    code = e.exit_code if isinstance(e, RootlessError) else 125
    if isinstance(e, OSError):
        message = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    else:
        message = str(e)
    if message:
        print(f"Error: {message}", file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)


def _run_job(job: Callable[[], int]) -> NoReturn:
    code = 125
    try:
        code = job()
    except BaseException as e:
        report_and_exit(e)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _chroot_fd(fd: int) -> None:
    os.fchdir(fd)
    os.chroot(".")
    os.chdir("/")
    os.close(fd)


def fork_in_container(
    target: FsTarget, idmap: IDMapPlan, job: Callable[[], int], keep: Collection[int] = ()
) -> int:
    """Fork a child that runs ``job()`` chrooted in the container; its PID.

    The child keeps only stdio and the fds in ``keep``; it exits with ``job``'s code,
    or prints the error (``Error: ...``) and exits 125. The caller must wait for it.
    ``job`` runs after the chroot, where the host's Python modules are out of reach:
    import what it needs beforehand. Call before any thread exists.
    """
    from rootless.sys import process

    keep_fds = frozenset(keep)
    if target.kind == "running":
        return _fork_running(target, job, keep_fds)
    from rootless.runtime.userns import fork_in_userns
    from rootless.sys import mount as sysmount
    from rootless.sys.namespaces import CLONE_NEWNS

    def child() -> NoReturn:
        try:
            process.close_fds_from(3, keep=keep_fds)
            if target.kind == "overlay":
                assert target.overlay is not None
                sysmount.mount("", "/", None, sysmount.MS_REC | sysmount.MS_PRIVATE, None)
                sysmount.mount("overlay", target.rootfs, "overlay", 0, target.overlay)
            fd = os.open(target.rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            _chroot_fd(fd)
        except BaseException as e:
            report_and_exit(e)
        _run_job(job)

    flags = CLONE_NEWNS if target.kind == "overlay" else 0
    return fork_in_userns(idmap, child, unshare_flags=flags, on_child_error=report_and_exit)


def _fork_running(target: FsTarget, job: Callable[[], int], keep: frozenset[int]) -> int:
    from rootless.sys import namespaces as ns
    from rootless.sys import process

    proc = f"/proc/{target.pid}"
    try:
        userns = os.open(f"{proc}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise ContainerStartError("the container is not running") from None
    try:
        root = os.open(f"{proc}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        os.close(userns)
        raise ContainerStartError("the container is not running") from None
    if process_start_time(target.pid) != target.pid_start:
        os.close(userns)
        os.close(root)
        raise ContainerStartError("the container is not running")
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            process.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(137)
            process.close_fds_from(3, keep=keep | {userns, root})
            ns.setns(userns, ns.CLONE_NEWUSER, path=f"{proc}/ns/user")
            os.close(userns)
            _chroot_fd(root)
        except BaseException as e:
            report_and_exit(e)
        _run_job(job)
    os.close(userns)
    os.close(root)
    return pid


def wait_child(pid: int) -> int:
    """Wait for a child of :func:`fork_in_container`; its exit code (128+N on signal N)."""
    from rootless.runtime.launch import exit_code

    return exit_code(os.waitpid(pid, 0)[1])


def kill_child(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


class ChildFailed(RootlessError):
    """A child already printed its error; only its exit code is left to pass on."""

    def __init__(self, code: int) -> None:
        super().__init__("")
        self.exit_code = code


def container_target(
    ref: str, paths: StoragePaths | None = None
) -> tuple[ContainerRecord, Spec, FsTarget, IDMapPlan]:
    """The record, spec, file-system target and ID map of container ``ref``."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.runtime import spec as specmod
    from rootless.runtime.idmap import current_user_plan

    containers = containers_store(paths)
    record = lifecycle.get(ref, containers)
    spec = specmod.load(containers.container_dir(record.id) / "config.json")
    containers.close()  # SQLite must not cross the fork
    return record, spec, plan_target(record, spec), current_user_plan()
