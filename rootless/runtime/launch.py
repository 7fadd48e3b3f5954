"""Start a container from a spec and supervise it in the foreground.

Process model (see docs/architecture.md)::

    rootless (supervisor, this process)
      └─ stage 1: unshares the user namespace, waits for newuidmap/newgidmap,
         unshares the other namespaces, forks PID 1, then execs the small
         helpers/rootless-wait.c (if installed) that waits for it and exits with
         its status (128+N for a signal)
           └─ container PID 1 (stage 2, runtime/init.py): mounts, pivot_root,
              credentials, seccomp, exec

Every link dies with the one above it (PR_SET_PDEATHSIG), and PID 1's death ends
its PID namespace, so killing the supervisor, even with SIGKILL, leaves nothing.
The supervisor runs without an event loop: fork happens before any thread
exists, and importing trio would cost ~100 ms of start latency.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import signal
import sys
import termios
import tty
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NoReturn

from rootless._record import Record
from rootless.errors import ContainerStartError, RootlessError
from rootless.runtime.idmap import IDMapPlan
from rootless.runtime.spec import Spec
from rootless.runtime.userns import fork_in_userns, fork_tied, kill_and_reap
from rootless.sys import namespaces as ns
from rootless.sys import process

if TYPE_CHECKING:
    import socket

    from rootless.runtime.init import InitFds

FORWARDED_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


class LaunchOptions(Record):
    idmap: IDMapPlan
    interactive: bool = False
    seccomp_program: bytes | None = None
    # fds to give the command as stdin, stdout, stderr (default: inherit ours)
    stdio: tuple[int, int, int] | None = None
    # Called with PID 1's host PID after the namespaces exist and before the command
    # runs: the network helper attaches here.
    before_exec: Callable[[int], None] | None = None
    # Seconds a foreground container may take to exit after SIGTERM before SIGKILL
    # (None: wait forever): systemd's stop of a unit whose main process is `run`.
    stop_timeout: float | None = None


class Started(Record):
    stage1_pid: int
    init_pid: int
    tty_master: int | None


def exit_code(status: int) -> int:
    """Podman's convention: the exit code, or 128+N when killed by signal N."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _namespace_flags(spec: Spec) -> int:
    flags = 0
    for kind in ("mount", "uts", "ipc", "cgroup", "network", "pid"):
        if spec.linux.has_namespace(kind):
            flags |= ns.NAMESPACE_FLAGS[kind]
    return flags


@contextlib.contextmanager
def _fds() -> Iterator[dict[str, int]]:
    """The pipes between supervisor and stages; all CLOEXEC so no exec'd program inherits them."""
    fds: dict[str, int] = {}
    try:
        for name in ("pid", "error", "gate"):
            fds[f"{name}_r"], fds[f"{name}_w"] = os.pipe2(os.O_CLOEXEC)
        waiter = _open_waiter()
        if waiter is not None:
            fds["waiter"] = waiter
        yield fds
    finally:
        for fd in fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)


def start(spec: Spec, opts: LaunchOptions) -> Started:
    """Fork a new container; return once its command has been exec'd.

    Raises the error the container's init reported (125/126/127) after reaping it.
    """
    from rootless.runtime.init import report_and_exit, run_init

    joined = _open_joined(spec)

    def fork_stage1(fds: dict[str, int], stage2: Callable[[int], NoReturn]) -> int:
        def enter() -> NoReturn:
            for kind, (fd, path) in joined.items():
                if kind != "user":
                    ns.setns(fd, ns.NAMESPACE_FLAGS[kind], path=path)
            _stage1(fds, stage2)

        if "user" not in joined:
            return fork_in_userns(
                opts.idmap,
                enter,
                unshare_flags=_namespace_flags(spec),
                on_child_error=functools.partial(report_and_exit, fds["error_w"]),
            )
        # An existing user namespace (already mapped): join it, then make the others.
        pid = fork_tied()
        if pid == 0:
            try:
                fd, path = joined["user"]
                ns.setns(fd, ns.CLONE_NEWUSER, path=path)
                ns.unshare(_namespace_flags(spec))
                enter()
            except BaseException as e:
                report_and_exit(fds["error_w"], e)
        return pid

    try:
        return _launch(
            spec.process.terminal,
            fork_stage1,
            lambda init_fds: run_init(spec, init_fds, opts.seccomp_program, opts.idmap.single),
            opts,
        )
    finally:
        for fd, _ in joined.values():
            os.close(fd)


def _open_joined(spec: Spec) -> dict[str, tuple[int, str]]:
    """The namespaces the spec joins by path (OCI ``namespaces[].path``), opened here so
    that a vanished one is reported before anything starts; the user namespace first."""
    joined: dict[str, tuple[int, str]] = {}
    kinds = sorted(spec.linux.namespaces, key=lambda n: n.type != "user")
    try:
        for namespace in kinds:
            if namespace.path is not None:
                fd = os.open(namespace.path, os.O_RDONLY | os.O_CLOEXEC)
                joined[namespace.type] = (fd, namespace.path)
    except OSError as e:
        for fd, _ in joined.values():
            os.close(fd)
        raise ContainerStartError(
            f"cannot join the {namespace.type} namespace {namespace.path}: {e.strerror}",
            hint="the process that holds it has exited; start it again",
        ) from None
    return joined


def exec_in(
    target_pid: int,
    target_start: int,
    spec: Spec,
    opts: LaunchOptions,
) -> Started:
    """Start ``spec.process`` inside the namespaces of the running container ``target_pid``.

    ``target_start`` (its /proc start time) guards against a reused PID.
    """
    from rootless._procfs import process_start_time
    from rootless.errors import ContainerStartError
    from rootless.runtime.init import report_and_exit, run_exec_init

    # The user namespace first: it grants the rights to join the others.
    kinds = ("user", "mnt", "pid", "uts", "ipc", "net", "cgroup")
    ns_fds: dict[str, int] = {}
    try:
        for kind in kinds:
            ns_fds[kind] = os.open(f"/proc/{target_pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        for fd in ns_fds.values():
            os.close(fd)
        raise ContainerStartError("the container is not running") from None
    if process_start_time(target_pid) != target_start:
        for fd in ns_fds.values():
            os.close(fd)
        raise ContainerStartError("the container is not running")

    def fork_stage1(fds: dict[str, int], stage2: Callable[[int], NoReturn]) -> int:
        pid = fork_tied()
        if pid == 0:
            try:
                for kind in kinds:
                    ns.setns(ns_fds[kind], 0, path=f"/proc/{target_pid}/ns/{kind}")
                _stage1(fds, stage2)
            except BaseException as e:
                report_and_exit(fds["error_w"], e)
        for fd in ns_fds.values():
            os.close(fd)
        return pid

    return _launch(
        spec.process.terminal,
        fork_stage1,
        lambda init_fds: run_exec_init(spec, init_fds, opts.seccomp_program, opts.idmap.single),
        opts,
    )


def _stage1(fds: dict[str, int], stage2: Callable[[int], NoReturn]) -> NoReturn:
    """Fork the process that becomes the command (PID 1 of a new PID namespace for
    ``run``), report its PID, wait for it and exit with its status."""
    for sig in (*FORWARDED_SIGNALS, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    alive_r, alive_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(alive_w)
        stage2(alive_r)
    os.write(fds["pid_w"], f"{child}\n".encode())
    # Keep only alive_w (its closing, when we die, tells the child) and the waiter.
    waiter = fds.get("waiter")
    process.close_fds_from(3, keep=frozenset({alive_w} if waiter is None else {alive_w, waiter}))
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if waiter is not None:
        # Wait as a small C program rather than a copy of this interpreter (~10 MB
        # less per container). By fd: PID 1's pivot_root may already have moved our
        # root into the container. The environment goes along so that stage 1 can
        # still be found by it (tests look for a token there).
        os.set_inheritable(alive_w, True)
        with contextlib.suppress(OSError):
            os.execve(waiter, ["rootless-wait", str(child)], os.environ)
    os._exit(exit_code(os.waitpid(child, 0)[1]))


def _open_waiter() -> int | None:
    """An O_PATH fd of the ``rootless-wait`` helper for stage 1, or None without one
    (stage 1 then waits in Python)."""
    from rootless.runtime.helpers import helper_path

    path = helper_path("rootless-wait")
    if path is None:
        return None
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return None


def _launch(
    terminal: bool,
    fork_stage1: Callable[[dict[str, int], Callable[[int], NoReturn]], int],
    stage2: Callable[[InitFds], NoReturn],
    opts: LaunchOptions,
) -> Started:
    """The supervisor's side of a start: pipes, the PID, the pty master, the error report."""
    from rootless.runtime.init import InitFds

    # Forking runs Python in the child: only safe while this process has one thread
    # (without the threading module loaded, none was started through it).
    threading = sys.modules.get("threading")
    assert threading is None or threading.active_count() == 1, "fork with threads running"
    tty_parent = tty_child = None
    if terminal:
        import socket

        tty_parent, tty_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with _fds() as fds:

        def child(alive_r: int) -> NoReturn:
            stage2(
                InitFds(
                    error_w=fds["error_w"],
                    alive_r=alive_r,
                    tty_sock=tty_child.fileno() if tty_child else None,
                    stdin_null=not opts.interactive,
                    stdio=opts.stdio,
                    gate_r=fds["gate_r"] if opts.before_exec is not None else None,
                )
            )

        pid = fork_stage1(fds, child)
        for name in ("pid_w", "error_w", "gate_r"):
            os.close(fds.pop(name))
        if tty_child is not None:
            tty_child.close()
        try:
            line = _read_line(fds["pid_r"])
            if not line:
                raise _init_error(fds["error_r"], pid)
            init_pid = int(line)
            if opts.before_exec is not None:
                try:
                    opts.before_exec(init_pid)
                except RootlessError as e:
                    # A setup that failed in the child makes the attach fail too (its
                    # namespaces are gone): the child's own report is the cause to show.
                    raise _reported_error(fds["error_r"], pid) or e from None
                os.write(fds["gate_w"], b"G")
            master = None
            if tty_parent is not None:
                master = _receive_fd(tty_parent)
                tty_parent.close()
            # EOF on the error pipe: the command was exec'd (the pipe is CLOEXEC).
            error = _read_all(fds["error_r"])
            if error:
                if master is not None:
                    os.close(master)
                raise _decode_error(error, pid)
            return Started(pid, init_pid, master)
        except BaseException:
            kill_and_reap(pid)
            raise


def _read_line(fd: int) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return ""
        buf += chunk
    return buf.decode().strip()


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _receive_fd(sock: socket.socket) -> int | None:
    import socket

    _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    return fds[0] if fds else None


def _decode_error(raw: bytes, pid: int) -> RootlessError:
    from rootless import errors

    code_text, _, message = raw.decode(errors="replace").partition("\n")
    cls = {126: errors.CommandNotExecutable, 127: errors.CommandNotFound}.get(
        int(code_text) if code_text.isdigit() else 125, ContainerStartError
    )
    return cls(message)


def _reported_error(error_r: int, pid: int) -> RootlessError | None:
    """The error the child has already reported, without waiting for one."""
    import select

    readable, _, _ = select.select([error_r], [], [], 0)
    raw = _read_all(error_r) if readable else b""
    return _decode_error(raw, pid) if raw else None


def _init_error(error_r: int, pid: int) -> RootlessError:
    raw = _read_all(error_r)
    if raw:
        return _decode_error(raw, pid)
    status = os.waitpid(pid, 0)[1]
    return ContainerStartError(f"container setup died unexpectedly (status {exit_code(status)})")


class _SignalForwarder:
    """Forward the supervisor's signals to the container's PID 1; with ``stop_timeout``,
    SIGKILL it that many seconds after the first SIGTERM (a PID 1 without a TERM
    handler ignores SIGTERM)."""

    def __init__(
        self, target: int, tty_master: int | None, stop_timeout: float | None = None
    ) -> None:
        self.target = target
        self.tty_master = tty_master
        self.stop_timeout = stop_timeout
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _SignalForwarder:
        for sig in FORWARDED_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._forward)
        if self.tty_master is not None:
            self.previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, self._resize)
            self._resize(signal.SIGWINCH, None)
        return self

    def __exit__(self, *exc: object) -> None:
        if signal.SIGALRM in self.previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _forward(self, sig: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.target, sig)
        if sig == signal.SIGTERM and self.stop_timeout is not None:
            self._arm_kill(self.stop_timeout)

    def _arm_kill(self, timeout: float) -> None:
        if signal.SIGALRM in self.previous:
            return  # the first SIGTERM's deadline stands
        self.previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._kill)
        if timeout > 0:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        else:
            self._kill(signal.SIGALRM, None)

    def _kill(self, sig: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.target, signal.SIGKILL)

    def _resize(self, sig: int, frame: object) -> None:
        assert self.tty_master is not None
        for fd in (0, 1, 2):
            if os.isatty(fd):
                with contextlib.suppress(OSError):
                    process.set_winsize(self.tty_master, *process.get_winsize(fd))
                return


def run_foreground(
    spec: Spec, opts: LaunchOptions, on_started: Callable[[Started], None] | None = None
) -> int:
    """Start the container, relay signals (and the terminal with -t), return its exit code."""
    started = start(spec, opts)
    return supervise_foreground(started, opts.interactive, opts.stop_timeout, on_started)


def supervise_foreground(
    started: Started,
    interactive: bool,
    stop_timeout: float | None = None,
    on_started: Callable[[Started], None] | None = None,
) -> int:
    """Relay signals (and the terminal) to a started process until it exits; its code.

    ``on_started`` runs with signals already relayed: it may tell systemd the service
    is ready, and systemd's SIGTERM must then reach the container."""
    with _SignalForwarder(started.init_pid, started.tty_master, stop_timeout):
        if on_started is not None:
            on_started(started)
        if started.tty_master is not None:
            _pump_terminal(started.tty_master, interactive)
        status = os.waitpid(started.stage1_pid, 0)[1]
    return exit_code(status)


def forward_signals_while_waiting(pid: int) -> int:
    """Wait for child ``pid``, forwarding our signals to it; its wait status."""
    with _SignalForwarder(pid, None):
        return os.waitpid(pid, 0)[1]


def _pump_terminal(master: int, interactive: bool) -> None:
    """Copy between our stdin/stdout and the container's pty until it closes."""
    stdin = sys.stdin.fileno()
    stdout = sys.stdout.fileno()
    saved = None
    if interactive and os.isatty(stdin):
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
    try:
        readers = [master, stdin] if interactive else [master]
        while True:
            ready = select.select(readers, [], [])[0]
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the pty's other side is gone
                    data = b""
                if not data:
                    return
                _write_all(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if not data:
                    readers.remove(stdin)
                    _write_all(master, b"\x04")  # EOF on the terminal: send ^D
                else:
                    _write_all(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        os.close(master)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
