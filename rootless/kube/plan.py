"""Pod and Deployment objects -> the engine's ``RunOptions`` for each container (pure).

A pod runs as Podman runs one: a small infra container (catatonit in pause mode)
owns the pod's network namespace and publishes its ports, and every container
of the pod joins it with ``--network container:INFRA``, so they reach each other
on localhost and share the hostname. Engine names: ``POD-CONTAINER`` for the
containers, ``POD_infra`` for the infra container (``_`` is not allowed in
Kubernetes names, so it never clashes), ``POD-VOLUME`` for emptyDir volumes.

Fields the engine cannot honour are warned about (``file:line: path: ...``),
never dropped silently; malformed values are errors at their line.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rootless._record import Record
from rootless.compose.source import KeyPath, Source, error_at, prefix
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.engine.containers import RunOptions

POD_LABEL = "io.rootless.kube.pod"  # on emptyDir volumes: the pod they belong to
PAUSE_PATH = "/catatonit"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": None}
_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_HOST_PATH_TYPES = frozenset(
    {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
     "BlockDevice"}
)  # fmt: skip
# Keys with no local meaning that are dropped without a warning.
_QUIET = frozenset({"status"})
_QUIET_META = frozenset(
    {"namespace", "creationTimestamp", "uid", "resourceVersion", "generation", "managedFields"}
)


class ContainerPlan(Record):
    name: str  # the Kubernetes container name
    options: RunOptions


class PodPlan(Record):
    name: str
    infra_name: str
    hostname: str
    publish: tuple[str, ...]  # -p specs of every container, published by the infra container
    add_hosts: tuple[str, ...]  # hostAliases as NAME:IP
    labels: Mapping[str, str]
    containers: tuple[ContainerPlan, ...]
    volumes: tuple[str, ...]  # engine volumes for emptyDirs: made by play, removed by down
    host_dirs: tuple[str, ...]  # hostPath DirectoryOrCreate
    host_files: tuple[str, ...]  # hostPath FileOrCreate


class KubePlan(Record):
    pods: tuple[PodPlan, ...]
    warnings: tuple[str, ...]


def plan_kube(docs: Sequence[Source]) -> KubePlan:
    """The pods of ``docs`` (Pods and Deployments; Services are understood as the
    published ports they stand for; other kinds are skipped with a warning)."""
    warnings: list[str] = []
    pods: list[PodPlan] = []
    for src in docs:
        doc = _Doc(src, warnings)
        kind = doc.string(src.data.get("kind"), ("kind",), required=True)
        if kind == "Pod":
            pods.append(_pod_object(doc))
        elif kind == "Deployment":
            pods.append(_deployment(doc))
        elif kind == "Service":
            continue  # its ports are published through the containers' hostPort
        else:
            doc.warn(("kind",), f"kind {kind} is not supported by kube play, skipped")
    seen: set[str] = set()
    for pod in pods:
        if pod.name in seen:
            raise ConfigError(f'pod "{pod.name}" is defined twice', hint="give each pod its name")
        seen.add(pod.name)
    return KubePlan(tuple(pods), tuple(warnings))


def infra_options(pod: PodPlan, rootfs: str, pause: str) -> RunOptions:
    """The infra container: catatonit (bound from the host at ``pause``) pausing in an
    empty read-only ``rootfs``, holding the pod's network and published ports."""
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.volumes import MountRequest

    return RunOptions(
        command=(PAUSE_PATH, "-P"),
        rootfs=rootfs,
        name=pod.infra_name,
        hostname=pod.hostname,
        read_only=True,
        mounts=MountRequest(mounts=(f"type=bind,source={pause},target={PAUSE_PATH},ro",)),
        network=NetworkRequest(publish=pod.publish, add_hosts=pod.add_hosts),
        extra={
            "labels": dict(pod.labels),
            "kube": {"pod": pod.name, "infra": True},
            "stop_signal": "SIGINT",  # what ends catatonit's pause mode
        },
    )


class _Doc:
    """One document: typed reads of its values, with errors and warnings at their line."""

    def __init__(self, src: Source, warnings: list[str]) -> None:
        self.src = src
        self.warnings = warnings

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return error_at(self.src.locations, path, message)

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(f"{prefix(self.src.locations, path)}{message}")

    def mapping(self, value: Any, path: KeyPath, known: Sequence[str]) -> dict[str, Any]:
        """``value`` as a mapping (None: empty); keys outside ``known`` are warned about
        unless they are empty (then nothing is lost)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, "must be a mapping")
        quiet = _QUIET_META if path[-1:] == ("metadata",) else _QUIET
        for key, item in value.items():
            if key not in known and key not in quiet and item not in (None, {}, [], ""):
                self.warn((*path, key), "not supported by kube play, ignored")
        return value

    def items(self, value: Any, path: KeyPath) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, "must be a list")
        return value

    def string(self, value: Any, path: KeyPath, *, required: bool = False) -> str:
        if value is None:
            if required:
                raise self.error(path, "is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(path, "must be a string")
        return str(value)

    def strings(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        return tuple(self.string(v, (*path, i)) for i, v in enumerate(self.items(value, path)))

    def integer(self, value: Any, path: KeyPath, *, low: int = 0, high: int = 2**31 - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, "must be a whole number")
        if not low <= value <= high:
            raise self.error(path, f"must be between {low} and {high}")
        return value

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(path, "must be true or false")
        return value

    def name(self, value: Any, path: KeyPath, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(value, path, required=True)
        if len(text) > 63 or not pattern.fullmatch(text):
            raise self.error(
                path,
                f'"{text}" is not a valid {what}: use at most 63 lower-case letters, digits '
                "and '-', starting and ending with a letter or digit",
            )
        return text


def _check_version(doc: _Doc, expected: str) -> None:
    version = doc.string(doc.src.data.get("apiVersion"), ("apiVersion",), required=True)
    if version != expected:
        doc.warn(("apiVersion",), f'expected "{expected}", read as that')


def _pod_object(doc: _Doc) -> PodPlan:
    data = doc.mapping(doc.src.data, (), ("apiVersion", "kind", "metadata", "spec"))
    _check_version(doc, "v1")
    meta = doc.mapping(data.get("metadata"), ("metadata",), ("name", "labels", "annotations"))
    name = doc.name(meta.get("name"), ("metadata", "name"), _DNS_SUBDOMAIN, "pod name")
    labels = _labels(doc, meta.get("labels"), ("metadata", "labels"))
    return _pod(doc, name, labels, data.get("spec"), ("spec",))


def _deployment(doc: _Doc) -> PodPlan:
    data = doc.mapping(doc.src.data, (), ("apiVersion", "kind", "metadata", "spec"))
    _check_version(doc, "apps/v1")
    meta = doc.mapping(data.get("metadata"), ("metadata",), ("name", "labels", "annotations"))
    deploy = doc.name(meta.get("name"), ("metadata", "name"), _DNS_SUBDOMAIN, "deployment name")
    spec = doc.mapping(data.get("spec"), ("spec",), ("replicas", "selector", "template"))
    if "replicas" in spec:
        replicas = doc.integer(spec["replicas"], ("spec", "replicas"))
        if replicas != 1:
            doc.warn(("spec", "replicas"), f"{replicas} replicas asked; kube play runs one")
    template = doc.mapping(spec.get("template"), ("spec", "template"), ("metadata", "spec"))
    tpath: KeyPath = ("spec", "template", "metadata")
    tmeta = doc.mapping(template.get("metadata"), tpath, ("name", "labels", "annotations"))
    name = f"{deploy}-pod"
    if tmeta.get("name") is not None:
        name = doc.name(tmeta["name"], (*tpath, "name"), _DNS_SUBDOMAIN, "pod name")
    labels = _labels(doc, tmeta.get("labels"), (*tpath, "labels"))
    return _pod(doc, name, labels, template.get("spec"), ("spec", "template", "spec"))


def _labels(doc: _Doc, value: Any, path: KeyPath) -> dict[str, str]:
    if value is not None and not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    return {k: doc.string(v, (*path, k)) for k, v in (value or {}).items()}


_POD_SPEC = (
    "containers", "volumes", "restartPolicy", "hostname", "hostAliases", "securityContext",
    "terminationGracePeriodSeconds",
)  # fmt: skip


class _Volumes(Record):
    """The pod's volumes: name -> ``--mount`` type and source (None: not mountable)."""

    mounts: dict[str, tuple[str, str] | None]
    engine: tuple[str, ...]
    host_dirs: tuple[str, ...]
    host_files: tuple[str, ...]


def _pod(doc: _Doc, name: str, labels: dict[str, str], value: Any, path: KeyPath) -> PodPlan:
    spec = doc.mapping(value, path, _POD_SPEC)
    restart_text = doc.string(spec.get("restartPolicy"), (*path, "restartPolicy")) or "Always"
    if restart_text not in _RESTART:
        raise doc.error((*path, "restartPolicy"), "must be Always, OnFailure or Never")
    hostname = name.split(".")[0]
    if spec.get("hostname") is not None:
        hostname = doc.name(spec["hostname"], (*path, "hostname"), _DNS_LABEL, "hostname")
    grace = None
    if spec.get("terminationGracePeriodSeconds") is not None:
        gpath = (*path, "terminationGracePeriodSeconds")
        grace = doc.integer(spec["terminationGracePeriodSeconds"], gpath)
    sc_path = (*path, "securityContext")
    pod_sc = doc.mapping(spec.get("securityContext"), sc_path, ("runAsUser", "runAsGroup"))
    pod_user = _ids(doc, pod_sc, sc_path)
    containers: list[ContainerPlan] = []
    publish: list[str] = []
    cpath = (*path, "containers")
    listed = doc.items(spec.get("containers"), cpath)
    volumes = _pod_volumes(doc, name, spec.get("volumes"), (*path, "volumes"), _users(listed))
    if not listed:
        raise doc.error(cpath, "a pod needs at least one container")
    common = _Common(name, labels, _RESTART[restart_text], grace, pod_user, hostname, volumes)
    for i, item in enumerate(listed):
        plan, ports = _container(doc, item, (*cpath, i), common)
        if any(c.name == plan.name for c in containers):
            raise doc.error((*cpath, i, "name"), f'container name "{plan.name}" is used twice')
        containers.append(plan)
        publish += ports
    return PodPlan(
        name=name,
        infra_name=f"{name}_infra",
        hostname=hostname,
        publish=tuple(publish),
        add_hosts=_host_aliases(doc, spec.get("hostAliases"), (*path, "hostAliases")),
        labels=labels,
        containers=tuple(containers),
        volumes=volumes.engine,
        host_dirs=volumes.host_dirs,
        host_files=volumes.host_files,
    )


def _users(containers: list[Any]) -> dict[str, int]:
    """Volume name -> how many of ``containers`` mount it (read leniently: the
    containers are checked properly later)."""
    counts: dict[str, int] = {}
    for c in containers:
        mounts = c.get("volumeMounts") if isinstance(c, dict) else None
        names = {m.get("name") for m in mounts or () if isinstance(m, dict)}
        for name in names:
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + 1
    return counts


def _ids(doc: _Doc, sc: dict[str, Any], path: KeyPath) -> tuple[int | None, int | None]:
    uid = gid = None
    if sc.get("runAsUser") is not None:
        uid = doc.integer(sc["runAsUser"], (*path, "runAsUser"))
    if sc.get("runAsGroup") is not None:
        gid = doc.integer(sc["runAsGroup"], (*path, "runAsGroup"))
    return uid, gid


def _host_aliases(doc: _Doc, value: Any, path: KeyPath) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(doc.items(value, path)):
        alias = doc.mapping(item, (*path, i), ("ip", "hostnames"))
        ip = doc.string(alias.get("ip"), (*path, i, "ip"), required=True)
        out += [f"{h}:{ip}" for h in doc.strings(alias.get("hostnames"), (*path, i, "hostnames"))]
    return tuple(out)


def _pod_volumes(
    doc: _Doc, pod: str, value: Any, path: KeyPath, shared: Mapping[str, int]
) -> _Volumes:
    """The pod's volumes; ``shared``: how many containers mount each (a tmpfs serves
    a memory-backed emptyDir only where one container mounts it)."""
    mounts: dict[str, tuple[str, str] | None] = {}
    engine: list[str] = []
    dirs: list[str] = []
    files: list[str] = []
    for i, item in enumerate(doc.items(value, path)):
        vpath = (*path, i)
        # every key is known here: an unsupported source is warned about below
        vol = doc.mapping(item, vpath, tuple(item) if isinstance(item, dict) else ())
        name = doc.name(vol.get("name"), (*vpath, "name"), _DNS_LABEL, "volume name")
        if name in mounts:
            raise doc.error((*vpath, "name"), f'volume "{name}" is defined twice')
        sources = [k for k in vol if k != "name"]
        if len(sources) != 1:
            mounts[name] = None
            doc.warn(vpath, f'volume "{name}" needs exactly one source; it is not mounted')
            continue
        kind = sources[0]
        if kind == "emptyDir":
            epath = (*vpath, "emptyDir")
            empty = doc.mapping(vol[kind], epath, ("medium",))
            if doc.string(empty.get("medium"), (*epath, "medium")) not in ("", "Memory"):
                raise doc.error((*epath, "medium"), 'must be "" or Memory')
            if empty.get("medium") == "Memory" and shared.get(name, 0) < 2:
                mounts[name] = ("tmpfs", "")
                continue
            if empty.get("medium") == "Memory":
                doc.warn(
                    (*epath, "medium"),
                    "Memory: kept on disk here, so that the containers mounting it share it",
                )
            mounts[name] = ("volume", f"{pod}-{name}")
            engine.append(f"{pod}-{name}")
        elif kind == "hostPath":
            hpath = (*vpath, "hostPath")
            host = doc.mapping(vol[kind], hpath, ("path", "type"))
            source = doc.string(host.get("path"), (*hpath, "path"), required=True)
            if not source.startswith("/"):
                raise doc.error((*hpath, "path"), f'"{source}" is not an absolute path')
            source = posixpath.normpath(source)
            htype = doc.string(host.get("type"), (*hpath, "type"))
            if htype not in _HOST_PATH_TYPES:
                raise doc.error((*hpath, "type"), f'unknown hostPath type "{htype}"')
            if htype == "DirectoryOrCreate":
                dirs.append(source)
            elif htype == "FileOrCreate":
                files.append(source)
            mounts[name] = ("bind", source)
        elif kind == "persistentVolumeClaim":
            ppath = (*vpath, kind)
            claim = doc.mapping(vol[kind], ppath, ("claimName",))
            claim_name = doc.string(claim.get("claimName"), (*ppath, "claimName"), required=True)
            mounts[name] = ("volume", claim_name)
        else:
            mounts[name] = None
            doc.warn((*vpath, kind), f'{kind} volumes are not supported; "{name}" is not mounted')
    return _Volumes(mounts, tuple(engine), tuple(dirs), tuple(files))


class _Common(Record):
    """What every container of a pod shares."""

    pod: str
    labels: dict[str, str]
    restart: str | None
    grace: int | None
    user: tuple[int | None, int | None]
    hostname: str
    volumes: _Volumes


_CONTAINER = (
    "name", "image", "command", "args", "env", "ports", "workingDir", "securityContext",
    "volumeMounts", "imagePullPolicy", "stdin",
)  # fmt: skip
_SECURITY = (
    "runAsUser", "runAsGroup", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
    "capabilities", "privileged",
)  # fmt: skip


def _container(
    doc: _Doc, value: Any, path: KeyPath, common: _Common
) -> tuple[ContainerPlan, list[str]]:
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.volumes import MountRequest

    c = doc.mapping(value, path, _CONTAINER)
    name = doc.name(c.get("name"), (*path, "name"), _DNS_LABEL, "container name")
    image = doc.string(c.get("image"), (*path, "image"), required=True)
    command = doc.strings(c.get("command"), (*path, "command"))
    args = doc.strings(c.get("args"), (*path, "args"))
    pull = doc.string(c.get("imagePullPolicy"), (*path, "imagePullPolicy")) or "IfNotPresent"
    if pull not in _PULL:
        raise doc.error((*path, "imagePullPolicy"), "must be Always, IfNotPresent or Never")
    sc_path = (*path, "securityContext")
    sc = doc.mapping(c.get("securityContext"), sc_path, _SECURITY)
    if doc.boolean(sc.get("privileged"), (*sc_path, "privileged")):
        doc.warn((*sc_path, "privileged"), "privileged containers are not supported, ignored")
    uid, gid = _ids(doc, sc, sc_path)
    uid = common.user[0] if uid is None else uid
    gid = common.user[1] if gid is None else gid
    user = None if uid is None else f"{uid}:{gid}" if gid is not None else str(uid)
    if uid is None and gid is not None:
        doc.warn(sc_path, "runAsGroup without runAsUser is not supported, ignored")
    caps_path = (*sc_path, "capabilities")
    caps = doc.mapping(sc.get("capabilities"), caps_path, ("add", "drop"))
    escalation = sc.get("allowPrivilegeEscalation")
    extra: dict[str, Any] = {
        "labels": dict(common.labels),
        "kube": {"pod": common.pod, "container": name},
    }
    if common.restart is not None:
        extra["restart"] = common.restart
    if common.grace is not None:
        extra["stop_timeout"] = float(common.grace)
    options = RunOptions(
        command=(*command[1:], *args) if command else args,
        image=image,
        name=f"{common.pod}-{name}",
        interactive=doc.boolean(c.get("stdin"), (*path, "stdin")),
        env=_env(doc, c.get("env"), (*path, "env")),
        workdir=doc.string(c.get("workingDir"), (*path, "workingDir")) or None,
        user=user,
        hostname=common.hostname,
        entrypoint=command[0] if command else None,
        cap_add=doc.strings(caps.get("add"), (*caps_path, "add")),
        cap_drop=doc.strings(caps.get("drop"), (*caps_path, "drop")),
        # unset: no-new-privileges stays on, rootless' default
        no_new_privileges=not doc.boolean(escalation, (*sc_path, "allowPrivilegeEscalation")),
        read_only=doc.boolean(
            sc.get("readOnlyRootFilesystem"), (*sc_path, "readOnlyRootFilesystem")
        ),
        mounts=MountRequest(
            mounts=_mounts(doc, c.get("volumeMounts"), (*path, "volumeMounts"), common.volumes)
        ),
        network=NetworkRequest(mode=f"container:{common.pod}_infra"),
        pull=_PULL[pull],
        extra=extra,
    )
    return ContainerPlan(name, options), _ports(doc, c.get("ports"), (*path, "ports"))


def _env(doc: _Doc, value: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
    out = []
    for i, item in enumerate(doc.items(value, path)):
        env = doc.mapping(item, (*path, i), ("name", "value"))
        key = doc.string(env.get("name"), (*path, i, "name"), required=True)
        if "valueFrom" in env:
            continue  # warned about by mapping(): not set at all rather than set wrongly
        out.append((key, doc.string(env.get("value"), (*path, i, "value"))))
    return tuple(out)


def _ports(doc: _Doc, value: Any, path: KeyPath) -> list[str]:
    """``-p`` specs for the ports with a hostPort (as Podman: containerPort alone
    publishes nothing)."""
    out = []
    for i, item in enumerate(doc.items(value, path)):
        ppath = (*path, i)
        port = doc.mapping(item, ppath, ("containerPort", "hostPort", "hostIP", "protocol", "name"))
        inside = doc.integer(
            port.get("containerPort"), (*ppath, "containerPort"), low=1, high=65535
        )
        proto = doc.string(port.get("protocol"), (*ppath, "protocol")) or "TCP"
        if proto not in ("TCP", "UDP"):
            raise doc.error((*ppath, "protocol"), "must be TCP or UDP (SCTP is not supported)")
        if port.get("hostPort") is None:
            continue
        host = doc.integer(port["hostPort"], (*ppath, "hostPort"), low=1, high=65535)
        ip = doc.string(port.get("hostIP"), (*ppath, "hostIP"))
        ip_part = (f"[{ip}]:" if ":" in ip else f"{ip}:") if ip else ""
        out.append(f"{ip_part}{host}:{inside}/{proto.lower()}")
    return out


def _mounts(doc: _Doc, value: Any, path: KeyPath, volumes: _Volumes) -> tuple[str, ...]:
    """``--mount`` values for the container's volumeMounts."""
    out = []
    for i, item in enumerate(doc.items(value, path)):
        mpath = (*path, i)
        m = doc.mapping(item, mpath, ("name", "mountPath", "readOnly", "subPath"))
        name = doc.string(m.get("name"), (*mpath, "name"), required=True)
        target = doc.string(m.get("mountPath"), (*mpath, "mountPath"), required=True)
        if not target.startswith("/"):
            raise doc.error((*mpath, "mountPath"), f'"{target}" is not an absolute path')
        if "," in target:
            raise doc.error((*mpath, "mountPath"), "paths with a comma are not supported")
        if name not in volumes.mounts:
            raise doc.error((*mpath, "name"), f'no volume "{name}" in the pod\'s volumes')
        source = volumes.mounts[name]
        if source is None:
            continue  # warned about where the volume is defined
        kind, where = source
        ro = ",ro" if doc.boolean(m.get("readOnly"), (*mpath, "readOnly")) else ""
        if kind == "tmpfs":
            out.append(f"type=tmpfs,target={target}{ro}")
            continue
        sub = doc.string(m.get("subPath"), (*mpath, "subPath"))
        if sub:
            if kind != "bind" or sub.startswith("/") or ".." in sub.split("/"):
                raise doc.error(
                    (*mpath, "subPath"), "only a relative subPath of a hostPath volume is supported"
                )
            where = posixpath.join(where, sub)
        if "," in where:
            raise doc.error(mpath, f'cannot mount "{where}": paths with a comma are not supported')
        nocopy = ",volume-nocopy=true" if where in volumes.engine else ""
        out.append(f"type={kind},source={where},target={target}{ro}{nocopy}")
    return tuple(out)
