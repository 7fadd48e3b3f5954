"""The detached supervisor of one compose project: one process, one trio nursery.

``python -m rootless.supervise.project FD`` is started by the first CLI call that
needs it (``project_client``), in its own session, with one end of a socketpair on
FD as its first client. It is spawned as soon as ``compose up`` starts, before the
compose file is read, so it starts up meanwhile: the first line on FD,
``{"project": NAME}``, names its project (end of file instead: the caller found a
running supervisor, or failed, and this one exits). It holds ``compose/PROJECT.lock``
(flock) for its whole life, so there is at most one per project, and listens on
``compose/PROJECT.sock`` for later calls. Each call sends one JSON request: the
containers to start, each with the dependency conditions to wait for first. Every
container it starts is a task of its nursery, running the same ``supervise`` loop as
a container's own monitor (log file, restart policy, healthchecks, exit code in the
record).

``stop``, ``kill`` and ``rm`` act on the containers directly, as for any container:
a task whose container is done for good ends. With no container and no client left
the supervisor removes its socket and exits. It forks the containers itself, so each
container's PDEATHSIG chain ends at this process: SIGKILL to it ends them all.

The caller keeps the project's networks joined (their holders started) until its
request is done. The request is
``{"start": [{"cid", "name", "after": [{"service", "condition", "cids"}]}], "timeout"}``;
the replies are ``{"accepted": true}`` (or ``{"busy": true}`` from a supervisor that
lost the race for the lock), progress ``{"name", "event"}``, then ``{"done": true}`` or
``{"error", "hint", "code", "kind"}``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootless._paths import StoragePaths
from rootless.errors import RootlessError

if TYPE_CHECKING:
    import trio

Message = dict[str, Any]


def project_dir(paths: StoragePaths) -> Path:
    return paths.runtime / "compose"


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for the socket at ``path`` that fits ``sun_path`` (108 bytes): a long
    path is reached through a descriptor of its directory."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def encode(message: Message) -> bytes:
    return json.dumps(message).encode() + b"\n"


def error_message(err: BaseException) -> Message:
    if isinstance(err, RootlessError):
        kind = type(err).__name__
        return {"error": err.message, "hint": err.hint, "code": err.exit_code, "kind": kind}
    return {"error": f"the project supervisor failed: {err!r}", "hint": None, "code": 125}


def first_error(err: BaseException) -> BaseException:
    """The error to report out of a (nested) exception group: a RootlessError if any."""
    if isinstance(err, BaseExceptionGroup):
        found = [first_error(e) for e in err.exceptions]
        return next((e for e in found if isinstance(e, RootlessError)), found[0])
    return err


class Supervisor:
    def __init__(self, project: str, paths: StoragePaths) -> None:
        from rootless.engine.containers import containers_store

        self.project = project
        self.paths = paths
        self.containers = containers_store(paths)
        self.sock_path = project_dir(paths) / f"{project}.sock"
        self.owned: set[str] = set()
        self.clients = 0
        self.listener: trio.socket.SocketType | None = None
        self.nursery: trio.Nursery | None = None

    async def serve(self, first_fd: int, pending: bytes) -> int:
        """Serve the first caller (on ``first_fd``; ``pending``: what it sent after
        its hello) and later ones until idle."""
        import trio

        first = trio.SocketStream(trio.socket.fromfd(first_fd, socket.AF_UNIX, socket.SOCK_STREAM))
        os.close(first_fd)
        # Bound without trio: its bind of a Unix socket runs in a worker thread, and
        # a thread must never run while we fork containers.
        plain = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)  # a dead supervisor's: we hold the lock
        with socket_address(self.sock_path) as address:
            plain.bind(address)
        plain.listen(64)
        self.listener = listener = trio.socket.from_stdlib_socket(plain)
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            self.clients += 1
            nursery.start_soon(self._client, first, pending)
            nursery.start_soon(self._accept, listener)
        return 0

    async def _accept(self, listener: trio.socket.SocketType) -> None:
        import trio

        assert self.nursery is not None
        while True:
            conn, _ = await listener.accept()  # the directory is 0700: the user only
            self.clients += 1
            self.nursery.start_soon(self._client, trio.SocketStream(conn))

    def _maybe_exit(self) -> None:
        """No container and no client left: stop listening and end. No checkpoint
        between the check and the close, so no request is accepted and then dropped."""
        if self.owned or self.clients or self.nursery is None:
            return
        self.nursery.cancel_scope.cancel()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock_path)
        if self.listener is not None:
            self.listener.close()

    async def _client(self, stream: trio.SocketStream, pending: bytes = b"") -> None:
        import trio

        lines = _Lines(stream, pending)
        try:
            if (request := await lines.next()) is not None:
                await stream.send_all(encode({"accepted": True}))
                await self._handle(request, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the caller went away; what it asked for was cancelled
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            self.clients -= 1
            self._maybe_exit()

    async def _handle(self, request: Message, stream: trio.SocketStream) -> None:
        import trio

        entries: list[Message] = request.get("start", [])
        timeout = float(request.get("timeout", 300))
        started = {e["cid"]: trio.Event() for e in entries}

        sending = trio.Lock()  # the start tasks report concurrently

        async def send(message: Message) -> None:
            async with sending:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.send_all(encode(message))

        try:
            async with trio.open_nursery() as batch:
                # A caller that hangs up (Ctrl-C) cancels what is not started yet.
                batch.start_soon(_cancel_on_hangup, stream, batch.cancel_scope)
                async with trio.open_nursery() as starts:
                    for entry in entries:
                        starts.start_soon(self._start_one, entry, started, timeout, send)
                batch.cancel_scope.cancel()
        except BaseException as e:
            err = first_error(e)
            if not isinstance(err, Exception):
                raise
            if not isinstance(err, RootlessError):
                traceback.print_exception(err)
            await send(error_message(err))
            return
        await send({"done": True})

    async def _start_one(
        self, entry: Message, started: dict[str, trio.Event], timeout: float, send: Any
    ) -> None:
        import trio

        from rootless.supervise.conditions import condition_met, met_word, not_met_in_time

        for dep in entry.get("after", []):
            for cid in dep["cids"]:
                if cid in started:
                    await started[cid].wait()
                if dep["condition"] == "service_started":
                    continue
                record = self.containers.get(cid)
                await send({"name": record.name, "event": "Waiting"})
                with trio.move_on_after(timeout) as scope:
                    while not condition_met(
                        self.containers.refresh(self.containers.get(cid)),
                        dep["condition"],
                        dep["service"],
                    ):
                        await trio.sleep(0.05)
                if scope.cancelled_caught:
                    raise not_met_in_time(record, dep["condition"], timeout)
                await send({"name": record.name, "event": met_word(dep["condition"])})
        cid = entry["cid"]
        record = self.containers.refresh(self.containers.get(cid))
        if record.status in ("running", "restarting"):
            await send({"name": record.name, "event": "Running"})
        else:
            # A new start forgets the last stop, and the last run's health: a dependent
            # must not take the "healthy" of a run that ended for this one's.
            fresh: dict[str, Any] = {"stop_requested": 0}
            if record.health:
                from rootless.supervise.health import HealthState

                fresh["health"] = HealthState().to_json()
            self.containers.update(cid, **fresh)
            assert self.nursery is not None
            await self.nursery.start(self._own, cid)
            await send({"name": record.name, "event": "Started", "cid": cid})
        started[cid].set()

    async def _own(self, cid: str, task_status: Any) -> None:
        """Supervise container ``cid`` for as long as it runs; its first start's error
        goes to the caller of ``nursery.start``."""
        from rootless.supervise.container import supervise

        running = False

        def ready() -> None:
            nonlocal running
            running = True
            task_status.started()

        self.owned.add(cid)
        try:
            await supervise(cid, self.paths, self.containers, ready, release=True)
        except Exception:
            if not running:
                raise
            traceback.print_exc()  # one container's failure is its own: the others run on
            with contextlib.suppress(Exception):
                self.containers.mark_exited(cid, 125, monitor_done=True)
        finally:
            self.owned.discard(cid)
            self._maybe_exit()


class _Lines:
    """The JSON lines a caller sends; None once it hung up."""

    def __init__(self, stream: trio.SocketStream, buffer: bytes = b"") -> None:
        self.stream = stream
        self.buffer = buffer

    async def next(self) -> Message | None:
        while b"\n" not in self.buffer:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:  # not one of ours: hang up on it rather than fail
            return None
        return message if isinstance(message, dict) else None


async def _cancel_on_hangup(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
    import trio

    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        while await stream.receive_some(4096):
            pass
    scope.cancel()


def read_hello(fd: int) -> tuple[str | None, bytes]:
    """The project named by the first line on ``fd`` (None at end of file), and what
    came after that line."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            return None, b""
        data += chunk
    line, _, rest = data.partition(b"\n")
    try:
        project = json.loads(line).get("project")
    except (ValueError, AttributeError):
        return None, b""
    return (project if isinstance(project, str) and project else None), rest


def _main(argv: list[str]) -> int:
    """``python -m rootless.supervise.project FD``."""
    import threading

    first_fd = int(argv[0])
    hello: list[tuple[str, bytes]] = []

    def wait_hello() -> None:
        project, pending = read_hello(first_fd)
        if project is None:  # not needed after all: no need to finish importing trio
            os._exit(0)
        hello.append((project, pending))

    # trio is imported (~170 ms) while the caller reads its compose file; the thread
    # ends before anything forks a container (launch refuses to fork with a thread).
    reader = threading.Thread(target=wait_hello)
    reader.start()
    import trio

    reader.join()
    project, pending = hello[0]
    paths = StoragePaths.from_env()
    directory = project_dir(paths)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = os.open(directory / f"{project}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another supervisor of this project started first
        with contextlib.suppress(OSError):
            os.write(first_fd, encode({"busy": True}))
        return 0
    _own_output(directory / f"{project}.log")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return trio.run(Supervisor(project, paths).serve, first_fd, pending)


def _own_output(log: Path) -> None:
    """Our own messages (tracebacks) go to a log file; stdin is /dev/null."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
