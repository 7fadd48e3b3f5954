"""``kube generate``: find the containers, read their facts, make the objects (I/O).

Names are looked up as containers first, then as pods, then as compose projects
(whose containers carry the project in their records, see
:mod:`rootless.compose.runner`). A pod (``pod create``, ``kube play``) becomes
itself: its containers without the infra container, whose published ports go to
the first of them. A compose project becomes one pod named after it, one
container per service replica, with the service names resolving to localhost
(``hostAliases``), since the services of a pod share its network namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rootless._paths import StoragePaths
from rootless._record import Record
from rootless.errors import ConfigError
from rootless.kube.generate import ContainerFacts, dns_label, mount_facts

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord, ContainerStore
    from rootless.image.store import Store

KINDS = ("pod", "deployment")


class Generated(Record):
    objects: list[dict[str, Any]]
    warnings: list[str]


class _Target(Record):
    record: ContainerRecord
    kube_name: str
    service: str | None  # the compose service, for hostAliases
    ports: tuple[tuple[str, int, int, str], ...] = ()  # its pod's, published by the infra


def generate(
    refs: Sequence[str],
    *,
    name: str | None = None,
    kind: str = "pod",
    with_service: bool = False,
    paths: StoragePaths | None = None,
) -> Generated:
    """The Kubernetes objects for the containers or compose projects ``refs``."""
    from rootless.engine.containers import containers_store
    from rootless.engine.images import open_store
    from rootless.kube import generate as gen
    from rootless.volumes import volume_store

    if kind not in KINDS:
        raise ConfigError(f'unknown kind "{kind}"', hint="use --type pod or --type deployment")
    paths = paths or StoragePaths.from_env()
    containers = containers_store(paths)
    targets, groups = _targets(refs, containers)
    pod_name = name or (dns_label(groups[0]) if groups == list(refs) else None)
    pod_name = pod_name or f"{dns_label(targets[0].record.name, 59)}-pod"
    if dns_label(pod_name, 253) != pod_name:
        raise ConfigError(
            f'invalid pod name "{pod_name}"',
            hint="use lower-case letters, digits and '-', starting with a letter or digit",
        )
    vols = volume_store(paths)
    anonymous = frozenset(v.name for v in vols.list() if v.anonymous)
    store = open_store(paths)
    try:
        facts = [
            _facts(t.record, containers, store, str(vols.root), anonymous, t.ports) for t in targets
        ]
    finally:
        store.close()
    aliases = sorted({t.service for t in targets if t.service})
    pod, warnings = gen.pod(
        pod_name, facts, kube_names=[t.kube_name for t in targets], host_aliases=aliases
    )
    objects = [pod]
    if kind == "deployment":
        deploy, more = gen.deployment(pod)
        objects, warnings = [deploy], warnings + more
    if with_service:
        svc = gen.service(pod)
        if svc is None:
            warnings.append("no Service: the containers publish no ports")
        else:
            objects.append(svc)
    return Generated(objects, warnings)


def _targets(refs: Sequence[str], containers: ContainerStore) -> tuple[list[_Target], list[str]]:
    """The containers named by ``refs`` (each a container, a pod or a compose project)
    with their Kubernetes container names, and the pods and projects among ``refs``."""
    from rootless.compose.runner import compose_info, project_records
    from rootless.container.records import NoSuchContainer

    targets: list[_Target] = []
    groups: list[str] = []  # the pods and projects
    for ref in refs:
        try:
            record = containers.get(ref)
        except NoSuchContainer:
            pod = _pod_targets(ref, containers)
            if pod:
                groups.append(ref)
                targets += pod
                continue
            found = [
                r for r in project_records(ref, containers) if not compose_info(r).get("oneoff")
            ]
            if not found:
                raise ConfigError(
                    f'no container, pod or compose project named "{ref}"',
                    hint="see the containers (and their projects) with: rootless ps -a, "
                    "the pods with: rootless pod ps",
                ) from None
            groups.append(ref)
            for r in found:
                info = compose_info(r)
                several = sum(compose_info(x)["service"] == info["service"] for x in found) > 1
                label = f"{info['service']}-{info['number']}" if several else info["service"]
                targets.append(_Target(r, dns_label(label), info["service"]))
            continue
        targets.append(_Target(record, dns_label(record.name), None))
    seen: dict[str, int] = {}
    for i, t in enumerate(targets):  # two containers with the same Kubernetes name
        seen[t.kube_name] = seen.get(t.kube_name, 0) + 1
        if seen[t.kube_name] > 1:
            targets[i] = t._replace(kube_name=f"{t.kube_name}-{seen[t.kube_name]}")
    return targets, groups


def _pod_targets(ref: str, containers: ContainerStore) -> list[_Target]:
    """The containers of pod ``ref`` (none when there is no such pod): by their
    Kubernetes names when ``kube play`` made them; the infra container's ports go to
    the first (its init containers are left out: they ran once, and are done)."""
    from rootless.engine.podplan import pod_of
    from rootless.engine.pods import NoSuchPod, get_pod, members

    try:
        pod = get_pod(ref)
    except NoSuchPod:
        return []
    found = members(pod.name, containers)
    infra = [r for r in found if pod_of(r).get("infra")]
    ports = tuple(tuple(p) for r in infra for p in r.options.get("ports") or ())
    targets: list[_Target] = []
    for r in found:
        if pod_of(r).get("infra") or pod_of(r).get("init"):
            continue
        kube = r.options.get("kube")
        label = kube.get("container", r.name) if isinstance(kube, dict) else r.name
        targets.append(_Target(r, dns_label(label), None, () if targets else ports))
    if not targets:
        raise ConfigError(
            f"pod {pod.name} has no containers to write",
            hint=f"add one first: rootless create --pod {pod.name} IMAGE",
        )
    return targets


def _facts(
    record: ContainerRecord,
    containers: ContainerStore,
    store: Store,
    volumes_root: str,
    anonymous: frozenset[str],
    pod_ports: tuple[tuple[str, int, int, str], ...] = (),
) -> ContainerFacts:
    from rootless.engine.images import find_local
    from rootless.runtime import spec as specmod
    from rootless.runtime.capabilities import DEFAULT_CAPABILITIES

    cdir = containers.container_dir(record.id)
    spec = specmod.load(cdir / "config.json")
    cfg = None
    if record.image_id:
        image = find_local(store, record.image_id)
        cfg = store.image_config(image).config if image is not None else None
    mounts, unsupported = mount_facts(
        [(m.destination, m.type, m.source, m.options) for m in spec.mounts],
        own_files=str(cdir),
        volumes_root=volumes_root,
        anonymous=anonymous,
    )
    health = record.options.get("health") or None
    image_health = None
    if cfg is not None and cfg.healthcheck:
        from rootless.supervise.health import health_config

        found = health_config(cfg.healthcheck)
        image_health = found.to_json() if found is not None else None
    if image_health and not health:
        unsupported.append("the image's healthcheck is turned off, which the YAML cannot say")
    caps = tuple(spec.process.capabilities.bounding)
    default = tuple(f"CAP_{c}" for c in DEFAULT_CAPABILITIES)
    return ContainerFacts(
        name=record.name,
        image=record.image,
        argv=record.command,
        env=spec.process.env,
        workdir=spec.process.cwd,
        user=spec.annotations.get(specmod.USER_ANNOTATION),
        ports=(*(tuple(p) for p in record.options.get("ports") or ()), *pod_ports),
        capabilities=None if set(caps) == set(default) else caps,
        read_only=spec.root.readonly,
        no_new_privileges=spec.process.no_new_privileges,
        mounts=mounts,
        restart=record.options.get("restart"),
        stop_timeout=record.options.get("stop_timeout"),
        interactive=bool(record.options.get("interactive")),
        hostname=spec.hostname if spec.hostname not in (None, record.id[:12]) else None,
        image_entrypoint=tuple(cfg.entrypoint or ()) if cfg else (),
        image_cmd=tuple(cfg.cmd or ()) if cfg else (),
        image_env=tuple(cfg.env) if cfg else (),
        image_workdir=cfg.working_dir if cfg else "",
        health=health,
        image_health=image_health,
        unsupported=tuple(unsupported),
    )
