"""A helper process that runs registered jobs as root of the user's user namespace.

Unpacking a layer must happen inside the user namespace so that file owners land in
the subordinate range; a pull runs under trio (threads exist), where forking and
running Python is unsafe. So the worker is a fresh interpreter
(``python -m rootless.runtime.worker``) that unshares its user and mount namespaces,
waits for the parent to map its IDs, then answers JSON-line requests on stdin/stdout.
Only functions named in ``JOBS`` can be called.

Usable from synchronous code and, through ``trio.to_thread.run_sync``, from trio.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import subprocess
import sys
import threading
from typing import Any

from rootless.errors import RootlessError

# job name -> "module:function"; the function takes keyword arguments of JSON types
# and returns a JSON-serialisable value.
JOBS = {
    "ping": "rootless.runtime.worker:_ping",
}


def register(name: str, target: str) -> None:
    JOBS[name] = target


def _ping(**kwargs: Any) -> dict[str, Any]:
    with open("/proc/self/uid_map") as f:
        return {"uid": os.getuid(), "uid_map": f.read(), **kwargs}


class WorkerError(RootlessError):
    """A job failed inside the user-namespace worker."""


class UsernsWorker:
    """One worker process; ``call`` is thread-safe (one job at a time per worker)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        from rootless.cli._common import warn
        from rootless.runtime.idmap import apply_idmap, current_user_plan

        plan = current_user_plan()
        if plan.warning:
            warn(plan.warning)
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "rootless.runtime.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in, self._out = self._proc.stdin, self._proc.stdout
        try:
            if self._out.readline() != b"U\n":
                raise WorkerError("cannot start the user-namespace worker: it exited early")
            apply_idmap(self._proc.pid, plan)
            self._send({"go": True})
            if self._out.readline() != b"R\n":
                raise WorkerError("the user-namespace worker failed to start")
        except BaseException:
            self.close()
            raise

    def _send(self, obj: dict[str, Any]) -> None:
        self._in.write(json.dumps(obj).encode() + b"\n")
        self._in.flush()

    def call(self, job: str, **kwargs: Any) -> Any:
        with self._lock:
            self._send({"job": job, "args": kwargs})
            line = self._out.readline()
        if not line:
            raise WorkerError(f"the user-namespace worker died during {job}")
        reply = json.loads(line)
        if "error" in reply:
            err = WorkerError(reply["error"])
            err.exit_code = reply.get("code", 125)
            raise err
        return reply["result"]

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._in.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._out.close()

    def __enter__(self) -> UsernsWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve() -> int:
    import signal

    from rootless.sys import namespaces as ns
    from rootless.sys import process

    process.set_pdeathsig(signal.SIGKILL)
    out = sys.stdout.buffer
    ns.unshare(ns.CLONE_NEWUSER)
    out.write(b"U\n")
    out.flush()
    if not json.loads(sys.stdin.buffer.readline() or b"{}").get("go"):
        return 1
    ns.unshare(ns.CLONE_NEWNS)
    out.write(b"R\n")
    out.flush()
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            module, _, func = JOBS[request["job"]].partition(":")
            fn = getattr(importlib.import_module(module), func)
            reply: dict[str, Any] = {"result": fn(**request["args"])}
        except RootlessError as e:
            reply = {"error": str(e), "code": e.exit_code}
        except KeyError:
            reply = {"error": f"unknown worker job {request.get('job')!r}"}
        except Exception as e:  # reported to the caller, who raises it as a WorkerError
            reply = {"error": f"{request['job']} failed: {type(e).__name__}: {e}"}
        out.write(json.dumps(reply).encode() + b"\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_serve())
