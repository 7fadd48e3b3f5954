"""Running healthchecks: in the monitor every interval, or once by `rootless healthcheck run`.

A check is an exec into the running container (the same code as `rootless exec`),
its output captured (4 KiB kept), bounded by the check's timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rootless.container.records import ContainerStore
from rootless.errors import RootlessError
from rootless.supervise.health import (
    HEALTHY,
    UNHEALTHY,
    HealthConfig,
    HealthResult,
    HealthState,
    health_config,
)


async def run_check(cid: str, containers: ContainerStore, config: HealthConfig) -> HealthResult:
    """Run the check once in container ``cid``; its result (not yet recorded)."""
    import trio

    from rootless.runtime.launch import exec_in, exit_code
    from rootless.supervise.container import _wait_child, load_launch

    record = containers.get(cid)
    spec, launch = load_launch(cid, containers)
    spec = spec._replace(process=spec.process._replace(args=config.argv(), terminal=False))
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    null = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    start_ns = time.time_ns()
    try:
        started = exec_in(
            record.pid, record.pid_start, spec, launch._replace(stdio=(null, out_w, out_w))
        )
    except RootlessError as e:
        os.close(out_r)
        return HealthResult.from_run(start_ns, time.time_ns(), e.exit_code, str(e).encode())
    finally:
        os.close(out_w)
        os.close(null)
    output = bytearray()

    async def collect() -> None:
        os.set_blocking(out_r, False)
        while len(output) < 65536:
            await trio.lowlevel.wait_readable(out_r)
            try:
                chunk = os.read(out_r, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                return
            output.extend(chunk)

    status: int | None = None
    try:
        with trio.move_on_after(config.timeout):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(collect)
                status = await _wait_child(started.stage1_pid)
                nursery.cancel_scope.deadline = trio.current_time() + 1
    finally:
        os.close(out_r)
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(started.stage1_pid, signal.SIGKILL)
            os.waitpid(started.stage1_pid, 0)
    if status is None:
        return HealthResult.timed_out(start_ns, time.time_ns(), config.timeout)
    return HealthResult.from_run(start_ns, time.time_ns(), exit_code(status), bytes(output))


def record_result(
    cid: str, containers: ContainerStore, config: HealthConfig, result: HealthResult
) -> HealthState:
    record = containers.get(cid)
    state = HealthState.from_json(record.health) if record.health else HealthState()
    started_ns = int((record.started or time.time()) * 1e9)
    state = state.record(result, config, started_ns)
    containers.update(cid, health=state.to_json())
    return state


async def run_healthchecks(
    cid: str,
    containers: ContainerStore,
    stored: dict[str, Any],
    on_healthy: Callable[[], None] | None = None,
    on_unhealthy: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The supervisor's loop: a check every interval while the container runs.

    ``on_healthy`` is called after each check that leaves the container healthy
    (``--sdnotify=healthy`` sends READY=1 on the first); ``on_unhealthy`` when the
    container becomes unhealthy (``--health-on-failure``), which ends the checks."""
    import trio

    config = health_config(stored)
    if config is None:
        return
    containers.update(cid, health=HealthState().to_json())
    while True:
        await trio.sleep(config.interval)
        if containers.get(cid).status == "paused":
            continue  # its processes are stopped: a check would only time out
        result = await run_check(cid, containers, config)
        state = record_result(cid, containers, config, result)
        if on_healthy is not None and state.status == HEALTHY:
            on_healthy()
        if on_unhealthy is not None and state.status == UNHEALTHY:
            await on_unhealthy()
            return


async def act_on_failure(
    action: str, cid: str, containers: ContainerStore, force_restart: Callable[[], None]
) -> None:
    """``--health-on-failure``: ``kill`` (SIGKILL; the restart policy decides what
    follows), ``restart`` (SIGKILL, then a start whatever the policy) or ``stop`` (as
    ``rootless stop``: the stop signal, the grace period, SIGKILL; no restart)."""
    import trio

    from rootless.engine.lifecycle import signal_pid1
    from rootless.runtime.signals import parse_signal

    record = containers.get(cid)
    if action == "restart":
        force_restart()
    elif action == "stop":
        containers.update(cid, stop_requested=1)
        containers.event(cid, "stop")
        stop_signal = parse_signal(record.options.get("stop_signal") or "SIGTERM")
        signal_pid1(record, containers, stop_signal)
        await trio.sleep(float(record.options.get("stop_timeout", 10)))
    signal_pid1(record, containers, signal.SIGKILL)
