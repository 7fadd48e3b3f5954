"""``kube play`` and ``kube down``: create, start and remove the pods of a plan (I/O).

Each pod's infra container starts first (its rootfs is an empty directory under
``$XDG_DATA_HOME/rootless/kube/POD``, catatonit is bound in from the host), then
its init containers, one at a time, each to a zero exit, then its containers,
detached under their own monitors as ``run -d`` makes them. The records carry
``kube: {pod: NAME}``, which is how ``kube down`` finds them again. A pod that
fails half-way is removed again.

The files of configMap and secret volumes are written into a private directory,
``$XDG_RUNTIME_DIR/rootless/kube/POD`` (0700: only the volume directories inside
are bound into containers, read-only), so secret values never reach the disk's
storage, records or ``inspect``; ``kube down`` removes it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, ContainerStartError
from rootless.kube.plan import POD_LABEL, ConfigVolume, PodPlan, infra_options

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord, ContainerStore

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def kube_info(record: ContainerRecord) -> dict[str, Any]:
    """The ``kube`` option of a record (pod, container or infra), or {}."""
    info = record.options.get("kube")
    return dict(info) if isinstance(info, dict) else {}


def files_root(paths: StoragePaths) -> Path:
    """Where the pods' private directories (configMap and secret volumes) go."""
    return paths.runtime / "kube"


def pod_records(pod: str, containers: ContainerStore) -> list[ContainerRecord]:
    """The containers of ``pod``, the infra container last."""
    found = [r for r in containers.list() if kube_info(r).get("pod") == pod]
    return sorted(found, key=lambda r: bool(kube_info(r).get("infra")))


def play(
    pods: Sequence[PodPlan],
    *,
    replace: bool = False,
    tls_verify: bool | None = None,
    paths: StoragePaths | None = None,
    report: Report = _quiet,
) -> dict[str, list[str]]:
    """Run the pods; pod name -> the names of its containers (without the infra)."""
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    pause = _pause_binary()
    containers = containers_store(paths)
    for pod in pods:
        if pod_records(pod.name, containers):
            if not replace:
                raise ConfigError(
                    f"pod {pod.name} exists already",
                    hint="remove it with rootless kube down FILE, or use kube play --replace",
                )
            down([pod.name], paths=paths, report=report)
    out = {}
    for pod in pods:
        try:
            out[pod.name] = _play_pod(pod, pause, tls_verify, paths, report)
        except BaseException:
            down([pod.name], paths=paths)
            raise
    return out


def _play_pod(
    pod: PodPlan, pause: str, tls_verify: bool | None, paths: StoragePaths, report: Report
) -> list[str]:
    from rootless.engine import lifecycle
    from rootless.engine.containers import create
    from rootless.volumes import create_volume

    for directory in pod.host_dirs:
        Path(directory).mkdir(parents=True, exist_ok=True)
    for file in pod.host_files:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        Path(file).touch()
    for volume in pod.volumes:
        create_volume(paths, volume, labels={POD_LABEL: pod.name}, ignore_existing=True)
    if pod.config_volumes:
        _write_config_volumes(Path(pod.files_dir), pod.config_volumes)
    rootfs = _pod_dir(paths, pod.name) / "infra"
    rootfs.mkdir(parents=True, exist_ok=True)
    infra = create(infra_options(pod, str(rootfs), pause), paths).record
    lifecycle.start(infra.id, paths)
    report(f"Pod {pod.name}  Started")
    for c in pod.init_containers:
        record = create(c.options._replace(tls_verify=tls_verify), paths).record
        lifecycle.start(record.id, paths)
        code = lifecycle.wait(record.id, paths)
        if code != 0:
            raise ContainerStartError(
                f"init container {c.name} of pod {pod.name} exited with code {code}"
                + _last_output(record, paths),
                hint="the pod is not started; fix the init container and play again",
            )
        report(f"Init container {record.name}  Completed")
    names = []
    for c in pod.containers:
        record = create(c.options._replace(tls_verify=tls_verify), paths).record
        lifecycle.start(record.id, paths)
        report(f"Container {record.name}  Started")
        names.append(record.name)
    return names


def down(
    pods: Sequence[str], *, paths: StoragePaths | None = None, report: Report = _quiet
) -> list[str]:
    """Remove the pods' containers (the infra last), emptyDir volumes and infra
    directories; the names of the pods that existed."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.volumes import volume_store

    paths = paths or StoragePaths.from_env()
    containers = containers_store(paths)
    store = volume_store(paths)
    removed = []
    for pod in pods:
        records = pod_records(pod, containers)
        for record in records:
            lifecycle.rm(record.id, force=True, paths=paths)
            report(f"Container {record.name}  Removed")
        with store.locked():
            doomed = [v.name for v in store.list() if v.labels.get(POD_LABEL) == pod]
            store.remove(doomed)
        for name in doomed:
            report(f"Volume {name}  Removed")
        pod_dir, private = _pod_dir(paths, pod), files_root(paths) / pod
        if records or doomed or pod_dir.exists() or private.exists():
            removed.append(pod)
        shutil.rmtree(pod_dir, ignore_errors=True)
        shutil.rmtree(private, ignore_errors=True)
    # the parents go once the last pod has gone
    for parent in (paths.data / "kube", files_root(paths)):
        with contextlib.suppress(OSError):
            parent.rmdir()
    return removed


def _write_config_volumes(private: Path, volumes: Sequence[ConfigVolume]) -> None:
    """Each volume's files, under ``private`` (0700) in a directory of its own (0755,
    so that any user in the container can list it; file modes as the YAML says)."""
    from rootless._atomic import atomic_write

    private.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private.mkdir(mode=0o700, exist_ok=True)
    for volume in volumes:
        root = Path(volume.directory)
        root.mkdir(mode=0o755, exist_ok=True)
        for file in volume.files:
            target = root / file.path
            for parent in reversed(target.relative_to(root).parents[:-1]):
                (root / parent).mkdir(mode=0o755, exist_ok=True)
            atomic_write(target, file.data, mode=0o600, durable=False)
            os.chmod(target, file.mode)


def _last_output(record: ContainerRecord, paths: StoragePaths, lines: int = 5) -> str:
    """The init container's last lines of output, for the error (or "": none)."""
    from rootless.engine.containers import containers_store
    from rootless.supervise.logfile import read_log

    log = containers_store(paths).container_dir(record.id) / "ctr.log"
    said = [r.data.decode(errors="replace").strip() for r in read_log(log, tail=lines)]
    said = [line for line in said if line]
    return f', after printing "{" / ".join(said)}"' if said else ""


def _pod_dir(paths: StoragePaths, pod: str) -> Path:
    return paths.data / "kube" / pod


def _pause_binary() -> str:
    from rootless.engine.containers import INIT_CANDIDATES

    found = next((p for p in INIT_CANDIDATES if os.access(p, os.X_OK)), None)
    if found is None:
        raise ConfigError(
            "kube play needs catatonit for the pods' infra containers, and it is not installed",
            hint="sudo apt-get install catatonit",
        )
    return os.path.realpath(found)
