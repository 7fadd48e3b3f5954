"""Pods: create, list, start, stop, kill and remove them (I/O; planning in :mod:`podplan`).

Each pod has a directory ``$XDG_DATA_HOME/rootless/pods/NAME/``: making it is what
claims the name (``mkdir`` is atomic, so two ``pod create --name x`` cannot both
win), ``pod.json`` in it is the pod's record (written once, atomically) and
``infra/`` is the infra container's empty root directory. The pod's containers are
found by the ``pod`` option of their records, so ``rootless rm`` of one needs no
bookkeeping here. ``pod create`` and ``kube play`` both make pods with
:func:`create_pod`; ``pod rm`` and ``kube down`` both remove them with
:func:`remove_members`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootless._paths import StoragePaths
from rootless.engine.podplan import PodRecord, PodSpec, check_spec, new_record, pod_of
from rootless.errors import ConfigError, RootlessError

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord, ContainerStore

Report = Callable[[str], None]


class NoSuchPod(RootlessError):
    pass


def _quiet(_: str) -> None:
    pass


def pods_root(paths: StoragePaths) -> Path:
    return paths.data / "pods"


def list_pods(paths: StoragePaths | None = None) -> list[PodRecord]:
    """Every pod, the newest first (a directory without its record is one being made)."""
    root = pods_root(paths or StoragePaths.from_env())
    found = []
    for entry in root.glob("*/pod.json") if root.is_dir() else ():
        with contextlib.suppress(OSError, ValueError):
            found.append(PodRecord.from_json(json.loads(entry.read_bytes())))
    return sorted(found, key=lambda p: p.created, reverse=True)


def get_pod(ref: str, paths: StoragePaths | None = None) -> PodRecord:
    """By name, ID or unique ID prefix, like containers."""
    pods = list_pods(paths)
    found = [p for p in pods if ref in (p.name, p.id)]
    if not found and ref and all(c in "0123456789abcdef" for c in ref):
        found = [p for p in pods if p.id.startswith(ref)]
        if len(found) > 1:
            raise ConfigError(
                f'more than one pod matches the ID prefix "{ref}"',
                hint="give more characters of the ID, or the name",
            )
    if not found:
        raise NoSuchPod(
            f'no pod with name or ID "{ref}" found', hint="see the pods with: rootless pod ps"
        )
    return found[0]


def members(name: str, containers: ContainerStore) -> list[ContainerRecord]:
    """The containers of pod ``name`` (state refreshed), the infra container last."""
    found = [containers.refresh(r) for r in containers.list() if pod_of(r).get("name") == name]
    return sorted(found, key=lambda r: bool(pod_of(r).get("infra")))


def create_pod(
    spec: PodSpec, paths: StoragePaths | None = None, *, start: bool = False
) -> PodRecord:
    """Make the pod: claim its name, write its record, create (and with ``start``,
    start) its infra container. Nothing is left behind if a step fails."""
    from rootless.container.records import generate_id, validate_name
    from rootless.engine.containers import create
    from rootless.engine.podplan import infra_options

    paths = paths or StoragePaths.from_env()
    validate_name(spec.name)
    check_spec(spec)
    pause = pause_binary() if spec.infra else ""
    pod_dir = pods_root(paths) / spec.name
    pod_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        pod_dir.mkdir()
    except FileExistsError:
        raise ConfigError(
            f"cannot create pod {spec.name}: the name is in use by another pod",
            hint=f"choose another --name, or remove it first: rootless pod rm {spec.name}",
        ) from None
    record = new_record(spec, generate_id(), time.time())
    try:
        if record.infra:
            rootfs = pod_dir / "infra"
            rootfs.mkdir()
            options = infra_options(record, str(rootfs), pause, spec.add_hosts)
            infra = create(options, paths).record
            if start:
                from rootless.engine import lifecycle

                lifecycle.start(infra.id, paths)
        from rootless._atomic import atomic_write

        atomic_write(pod_dir / "pod.json", json.dumps(record.to_json()).encode())
    except BaseException:
        remove_members(spec.name, paths=paths)
        raise
    return record


def start_pod(ref: str, paths: StoragePaths | None = None) -> PodRecord:
    """Start the infra container, then every container not running (init containers,
    which ran to completion when the pod was played, stay as they are)."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    pod = get_pod(ref, paths)
    found = members(pod.name, containers_store(paths))
    for record in sorted(found, key=lambda r: not pod_of(r).get("infra")):
        if record.status != "running" and not pod_of(record).get("init"):
            lifecycle.start(record.id, paths)
    return pod


def stop_pod(
    ref: str, timeout: float | None = None, paths: StoragePaths | None = None
) -> PodRecord:
    """Stop the pod's containers (all at once: each has its grace period), then its
    infra container."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    pod = get_pod(ref, paths)
    found = members(pod.name, containers_store(paths))
    running = [r for r in found if r.status in ("running", "restarting")]
    _each(
        [r for r in running if not pod_of(r).get("infra")],
        lambda r: lifecycle.stop(r.id, timeout, paths),
    )
    _each([r for r in running if pod_of(r).get("infra")], lambda r: lifecycle.stop(r.id, 0, paths))
    return pod


def kill_pod(ref: str, sig: int, paths: StoragePaths | None = None) -> PodRecord:
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    pod = get_pod(ref, paths)
    running = [r for r in members(pod.name, containers_store(paths)) if r.status == "running"]
    if not running:
        raise ConfigError(
            f"cannot kill pod {pod.name}: none of its containers is running",
            hint=f"start it first: rootless pod start {pod.name}",
        )
    for record in running:
        lifecycle.kill(record.id, sig, paths)
    return pod


def remove_pod(ref: str, *, force: bool = False, paths: StoragePaths | None = None) -> PodRecord:
    """Remove the pod, its containers and its infra container; a pod with running
    containers only with ``force`` (they are stopped at once)."""
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    pod = get_pod(ref, paths)
    running = [r.name for r in members(pod.name, containers_store(paths)) if r.status == "running"]
    if running and not force:
        raise ConfigError(
            f"cannot remove pod {pod.name}: {len(running)} of its containers "
            f"({', '.join(running)}) {'is' if len(running) == 1 else 'are'} running",
            hint=f"stop it first (rootless pod stop {pod.name}), or use pod rm -f",
        )
    remove_members(pod.name, paths=paths)
    return pod


def remove_members(
    name: str, *, paths: StoragePaths | None = None, report: Report = _quiet
) -> bool:
    """Remove pod ``name``'s containers (stopped at once, the infra last) and its
    directory; whether there was anything to remove."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    records = members(name, containers_store(paths))
    for record in records:
        lifecycle.rm(record.id, force=True, paths=paths)
        report(f"Container {record.name}  Removed")
    pod_dir = pods_root(paths) / name
    existed = bool(records) or pod_dir.exists()
    shutil.rmtree(pod_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        pods_root(paths).rmdir()  # the parent goes with the last pod
    return existed


def start_infra_of(options: Mapping[str, Any], paths: StoragePaths) -> None:
    """Before a pod's container starts: start the infra container whose network it
    joins, if it is not running (a no-op for containers outside a pod)."""
    info = options.get("pod")
    network = str(options.get("network") or "")
    if not isinstance(info, dict) or info.get("infra") or not network.startswith("container:"):
        return
    from rootless.engine import lifecycle

    lifecycle.start(network.partition(":")[2], paths)


def pause_binary() -> str:
    """The host's catatonit, which the infra containers run in pause mode."""
    from rootless.engine.containers import INIT_CANDIDATES

    found = next((p for p in INIT_CANDIDATES if os.access(p, os.X_OK)), None)
    if found is None:
        raise ConfigError(
            "pods need catatonit for their infra containers, and it is not installed",
            hint="sudo apt-get install catatonit, or make the pod with --no-infra",
        )
    return os.path.realpath(found)


def _each(records: list[ContainerRecord], action: Callable[[ContainerRecord], object]) -> None:
    """``action`` on every record at once (threads: each waits on its own container);
    the first error is raised once all are done."""
    import threading

    errors: list[BaseException] = []

    def one(record: ContainerRecord) -> None:
        try:
            action(record)
        except RootlessError as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(r,)) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
