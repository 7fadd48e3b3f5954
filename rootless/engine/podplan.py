"""Pods, planned (pure): what a pod is, its infra container, and how a container joins it.

A pod is a group of containers sharing one network namespace, as in Podman: a small
infra container (the host's catatonit in pause mode, in an empty read-only root)
owns the namespace and publishes the pod's ports, and every container of the pod
runs with ``--network container:POD_infra`` and the pod's hostname, so they reach
each other on localhost. The infra container is named ``POD_infra`` (``_`` is not
allowed in Kubernetes names, so a ``kube play`` container never clashes with it).
A pod made with ``--no-infra`` is a group only: its containers share nothing.

Containers carry their pod in their record (``options["pod"]``: ``{"name": POD}``,
plus ``"infra": True`` on the infra container); the pod itself is a small JSON
record (see :mod:`rootless.engine.pods`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rootless._empty import EMPTY_MAP
from rootless._record import Record
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord
    from rootless.engine.containers import RunOptions

PAUSE_PATH = "/catatonit"  # where the host's catatonit is bound into the infra container


class PodSpec(Record):
    """What ``pod create`` (or ``kube play``) asks for."""

    name: str
    hostname: str = ""  # default: the pod's name
    publish: tuple[str, ...] = ()  # -p specs, published by the infra container
    network: str = "slirp4netns"
    add_hosts: tuple[str, ...] = ()
    labels: Mapping[str, str] = EMPTY_MAP
    infra: bool = True


class PodRecord(Record):
    """A pod as stored: its spec's facts, its ID and its infra container's name."""

    id: str
    name: str
    created: float
    hostname: str
    infra: str  # the infra container's name; "" without one
    network: str
    publish: tuple[str, ...]
    labels: Mapping[str, str] = EMPTY_MAP

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "publish": list(self.publish), "labels": dict(self.labels)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PodRecord:
        known = {k: data[k] for k in cls._fields if k in data}
        return cls(**{**known, "publish": tuple(known.get("publish", ())),
                      "labels": dict(known.get("labels") or {})})  # fmt: skip


def infra_name(pod: str) -> str:
    return f"{pod}_infra"


def new_record(spec: PodSpec, pod_id: str, created: float) -> PodRecord:
    return PodRecord(
        id=pod_id,
        name=spec.name,
        created=created,
        hostname=spec.hostname or spec.name,
        infra=infra_name(spec.name) if spec.infra else "",
        network=spec.network,
        publish=spec.publish,
        labels=spec.labels,
    )


def check_spec(spec: PodSpec) -> None:
    """Refuse what a pod cannot be: ports or a network without an infra container."""
    if spec.infra:
        return
    if spec.publish:
        raise ConfigError(
            f"cannot publish ports on pod {spec.name}: it has no infra container to hold them",
            hint="drop --no-infra, or publish on each container (run -p) instead",
        )
    if spec.network != "slirp4netns" or spec.hostname or spec.add_hosts:
        raise ConfigError(
            f"cannot set the network or hostname of pod {spec.name}: with --no-infra "
            "its containers share no namespaces",
            hint="drop --no-infra, or set them on each container",
        )


def infra_options(
    pod: PodRecord, rootfs: str, pause: str, add_hosts: tuple[str, ...] = ()
) -> RunOptions:
    """The infra container: catatonit (bound from the host at ``pause``) pausing in an
    empty read-only ``rootfs``, holding the pod's network and published ports."""
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.volumes import MountRequest

    return RunOptions(
        command=(PAUSE_PATH, "-P"),
        rootfs=rootfs,
        name=pod.infra,
        hostname=pod.hostname,
        read_only=True,
        mounts=MountRequest(mounts=(f"type=bind,source={pause},target={PAUSE_PATH},ro",)),
        network=NetworkRequest(mode=pod.network, publish=pod.publish, add_hosts=add_hosts),
        extra={
            "labels": dict(pod.labels),
            "pod": {"name": pod.name, "infra": True},
            "stop_signal": "SIGINT",  # what ends catatonit's pause mode
        },
    )


def join_pod(opts: RunOptions, pod: PodRecord, *, network_given: bool = False) -> RunOptions:
    """``opts`` for a container of ``pod``: in the infra container's network, with the
    pod's hostname. Ports and networks belong to the pod, not to its containers."""
    net = opts.network
    extra = {**opts.extra, "pod": {"name": pod.name}}
    if not pod.infra:
        return opts._replace(extra=extra)
    if net is not None and (net.publish or net.publish_all):
        raise ConfigError(
            f"cannot publish ports of a container of pod {pod.name}: its network is the pod's",
            hint=f"publish them on the pod: rootless pod create -p HOST:CTR --name {pod.name} "
            "(remove the pod first), and drop -p/-P here",
        )
    if network_given:
        raise ConfigError(
            f"cannot use --network with --pod {pod.name}: the container joins the pod's network",
            hint="drop --network, or give it to rootless pod create",
        )
    if opts.hostname is not None and opts.hostname != pod.hostname:
        raise ConfigError(
            f"cannot set --hostname with --pod {pod.name}: its containers have the pod's "
            f'hostname "{pod.hostname}"',
            hint="drop --hostname, or give it to rootless pod create",
        )
    from rootless.engine.network import NetworkRequest

    network = (net or NetworkRequest())._replace(mode=f"container:{pod.infra}")
    return opts._replace(network=network, hostname=pod.hostname, extra=extra)


def pod_of(record: ContainerRecord) -> Mapping[str, Any]:
    """The ``pod`` option of a container record: {"name": POD[, "infra": True]}, or {}."""
    info = record.options.get("pod")
    return info if isinstance(info, dict) else {}


def pod_status(states: Iterable[str]) -> str:
    """Podman's pod status from its containers' states (the infra container's too)."""
    found = list(states)
    running = sum(s in ("running", "restarting") for s in found)
    if running and running == len(found):
        return "Running"
    if running:
        return "Degraded"
    if all(s == "created" for s in found):
        return "Created"
    return "Exited"


def ps_row(
    pod: PodRecord, records: Sequence[ContainerRecord], *, now: float, no_trunc: bool = False
) -> dict[str, Any]:
    """One pod as ``pod ps`` shows it (``records``: its containers, the infra's too)."""
    from rootless._units import format_ago

    infra = next((r for r in records if pod_of(r).get("infra")), None)
    return {
        "Id": pod.id if no_trunc else pod.id[:12],
        "Name": pod.name,
        "Status": pod_status(r.status for r in records),
        "Created": pod.created,
        "CreatedHuman": format_ago(pod.created, now),
        "InfraId": "" if infra is None else infra.id if no_trunc else infra.id[:12],
        "NumberOfContainers": len(records),
        "Labels": dict(pod.labels),
        "Networks": [pod.network] if pod.infra else [],
        "Containers": [
            {"Id": r.id if no_trunc else r.id[:12], "Names": r.name, "Status": r.status}
            for r in records
        ],
    }


def inspect(pod: PodRecord, records: Sequence[ContainerRecord]) -> dict[str, Any]:
    """The pod as ``pod inspect`` shows it: Podman's shape for the common fields."""
    from rootless.engine.listing import iso_time

    infra = next((r for r in records if pod_of(r).get("infra")), None)
    return {
        "Id": pod.id,
        "Name": pod.name,
        "Created": iso_time(pod.created),
        "State": pod_status(r.status for r in records),
        "Hostname": pod.hostname if pod.infra else "",
        "Labels": dict(pod.labels),
        "CreateInfra": bool(pod.infra),
        "InfraContainerID": infra.id if infra is not None else "",
        "InfraConfig": {
            "Networks": [pod.network] if pod.infra else [],
            "PortBindings": list(pod.publish),
        },
        "SharedNamespaces": ["net"] if pod.infra else [],
        "NumContainers": len(records),
        "Containers": [{"Id": r.id, "Name": r.name, "State": r.status} for r in records],
    }
