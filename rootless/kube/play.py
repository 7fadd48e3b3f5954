"""``kube play`` and ``kube down``: create, start and remove the pods of a plan (I/O).

Each pod is made as ``pod create`` makes one (:func:`rootless.engine.pods.create_pod`):
its infra container starts first, then its init containers, one at a time, each
to a zero exit, then its containers, detached under their own monitors as
``run -d`` makes them. Their records carry their pod, which is how ``kube down``
(and ``pod rm``) find them again. A pod that fails half-way is removed again.

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
from typing import TYPE_CHECKING

from rootless._paths import StoragePaths
from rootless.errors import ConfigError, ContainerStartError
from rootless.kube.plan import POD_LABEL, ConfigVolume, PodPlan, pod_spec

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def files_root(paths: StoragePaths) -> Path:
    """Where the pods' private directories (configMap and secret volumes) go."""
    return paths.runtime / "kube"


def play(
    pods: Sequence[PodPlan],
    *,
    replace: bool = False,
    tls_verify: bool | None = None,
    paths: StoragePaths | None = None,
    report: Report = _quiet,
) -> dict[str, list[str]]:
    """Run the pods; pod name -> the names of its containers (without the infra)."""
    from rootless.engine.pods import pods_root

    paths = paths or StoragePaths.from_env()
    for pod in pods:
        if (pods_root(paths) / pod.name).exists():
            if not replace:
                raise ConfigError(
                    f"pod {pod.name} exists already",
                    hint="remove it with rootless kube down FILE, or use kube play --replace",
                )
            down([pod.name], paths=paths, report=report)
    out = {}
    for pod in pods:
        try:
            out[pod.name] = _play_pod(pod, tls_verify, paths, report)
        except BaseException:
            down([pod.name], paths=paths)
            raise
    return out


def _play_pod(
    pod: PodPlan, tls_verify: bool | None, paths: StoragePaths, report: Report
) -> list[str]:
    from rootless.engine import lifecycle
    from rootless.engine.containers import create
    from rootless.engine.pods import create_pod
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
    create_pod(pod_spec(pod), paths, start=True)
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
    """Remove the pods (containers, the infra last, and pod directories), their
    emptyDir volumes and private directories; the names of the pods that existed."""
    from rootless.engine.pods import remove_members
    from rootless.volumes import volume_store

    paths = paths or StoragePaths.from_env()
    store = volume_store(paths)
    removed = []
    for pod in pods:
        existed = remove_members(pod, paths=paths, report=report)
        with store.locked():
            doomed = [v.name for v in store.list() if v.labels.get(POD_LABEL) == pod]
            store.remove(doomed)
        for name in doomed:
            report(f"Volume {name}  Removed")
        private = files_root(paths) / pod
        if existed or doomed or private.exists():
            removed.append(pod)
        shutil.rmtree(private, ignore_errors=True)
    with contextlib.suppress(OSError):
        files_root(paths).rmdir()  # the parent goes once the last pod has gone
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
