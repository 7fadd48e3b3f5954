"""rootless healthcheck run: run a container's healthcheck once, now."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("run",), help="run: check now and record the result")
    p.add_argument("container", metavar="CONTAINER")


def main(args: argparse.Namespace) -> int:
    """Exit 0 when healthy, 1 when the check failed (as Podman)."""
    import trio

    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.errors import ConfigError
    from rootless.supervise.health import health_config
    from rootless.supervise.healthcheck import record_result, run_check

    containers = containers_store()
    record = lifecycle.get(args.container, containers)
    config = health_config(record.options.get("health"))
    if config is None:
        raise ConfigError(
            f"container {record.name} has no healthcheck defined",
            hint="create it with --health-cmd",
        )
    if record.status != "running":
        raise ConfigError(f"container {record.name} is not running")
    result = trio.run(run_check, record.id, containers, config)
    state = record_result(record.id, containers, config, result)
    if result.exit_code != 0:
        print("unhealthy" if state.status == "unhealthy" else "failed")
        return 1
    return 0
