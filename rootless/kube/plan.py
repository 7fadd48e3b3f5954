"""Pod, Deployment and ReplicaSet objects -> the engine's ``RunOptions`` (pure).

A pod runs as Podman runs one: a small infra container (catatonit in pause mode)
owns the pod's network namespace and publishes its ports, and every container
of the pod joins it with ``--network container:INFRA``, so they reach each other
on localhost and share the hostname. Engine names: ``POD-CONTAINER`` for the
containers, ``POD_infra`` for the infra container (``_`` is not allowed in
Kubernetes names, so it never clashes), ``POD-VOLUME`` for emptyDir volumes.
A Deployment of N > 1 replicas makes N pods ``NAME-pod-0`` ... (as Podman named
them when it ran them all); init containers are planned apart, to run first.
The files of configMap and secret volumes are planned here, with their contents,
under ``FILES_ROOT/POD/VOLUME`` (a private directory that play writes).

Fields the engine cannot honour are warned about (``file:line: path: ...``),
never dropped silently; malformed values are errors at their line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rootless._record import Record
from rootless.compose.source import KeyPath, Source
from rootless.engine.podplan import PodSpec, infra_name
from rootless.errors import ConfigError
from rootless.kube import objects as obj
from rootless.kube.probes import PROBES, health_extra
from rootless.kube.reader import DNS_LABEL, DNS_SUBDOMAIN, Doc

if TYPE_CHECKING:
    from rootless.engine.containers import RunOptions

POD_LABEL = "io.rootless.kube.pod"  # on emptyDir volumes: the pod they belong to
_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": None}
_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_HOST_PATH_TYPES = frozenset(
    {"", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
     "BlockDevice"}
)  # fmt: skip


class ContainerPlan(Record):
    name: str  # the Kubernetes container name
    options: RunOptions


class ConfigVolume(Record):
    """A configMap or secret volume: its files, written by play into ``directory``."""

    directory: str
    files: tuple[obj.ConfigFile, ...]


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
    init_containers: tuple[ContainerPlan, ...] = ()  # run in order, each to completion
    files_dir: str = ""  # the pod's private directory for config volumes (removed by down)
    config_volumes: tuple[ConfigVolume, ...] = ()


class KubePlan(Record):
    pods: tuple[PodPlan, ...]
    warnings: tuple[str, ...]


class _Context(Record):
    """What every pod of a play reads: the ConfigMaps and Secrets, where files go."""

    objects: obj.ConfigObjects
    files_root: str


def plan_kube(
    docs: Sequence[Source],
    *,
    files_root: str,
    configmaps: Sequence[Source] = (),
    lenient: bool = False,
) -> KubePlan:
    """The pods of ``docs`` (Pods, Deployments, ReplicaSets; ConfigMaps and Secrets
    feed them, as do those of ``configmaps``; Services are understood as the
    published ports they stand for; other kinds are skipped with a warning).

    ``files_root``: where each pod's private directory goes; ``lenient``: missing
    ConfigMaps and Secrets read as optional (for ``kube down``, which needs names only).
    """
    warnings: list[str] = []
    found: dict[str, dict[str, dict[str, bytes]]] = {obj.CONFIG_MAP: {}, obj.SECRET: {}}
    pod_docs: list[tuple[Doc, str]] = []
    for src, extra in [*((s, False) for s in docs), *((s, True) for s in configmaps)]:
        doc = Doc(src, warnings)
        kind = doc.string(src.data.get("kind"), ("kind",), required=True)
        if kind in found:
            name, data = obj.read_object(doc, kind)
            if name in found[kind]:
                raise doc.error(("metadata", "name"), f'{kind} "{name}" is defined twice')
            found[kind][name] = data
        elif extra:
            raise doc.error(("kind",), f"--configmap files hold ConfigMaps and Secrets, not {kind}")
        elif kind in ("Pod", "Deployment", "ReplicaSet"):
            pod_docs.append((doc, kind))
        elif kind != "Service":  # a Service's ports are published through the hostPorts
            doc.warn(("kind",), f"kind {kind} is not supported by kube play, skipped")
    context = _Context(obj.ConfigObjects(found, lenient), files_root)
    pods: list[PodPlan] = []
    for doc, kind in pod_docs:
        pods += [_pod_object(doc, context)] if kind == "Pod" else _replicated(doc, kind, context)
    seen: set[str] = set()
    for pod in pods:
        if pod.name in seen:
            raise ConfigError(f'pod "{pod.name}" is defined twice', hint="give each pod its name")
        seen.add(pod.name)
    return KubePlan(tuple(pods), tuple(warnings))


def pod_spec(pod: PodPlan) -> PodSpec:
    """What the engine makes for ``pod`` before its containers: the pod and its infra
    container (see :mod:`rootless.engine.podplan`)."""
    return PodSpec(
        name=pod.name,
        hostname=pod.hostname,
        publish=pod.publish,
        add_hosts=pod.add_hosts,
        labels=pod.labels,
    )


def _check_version(doc: Doc, expected: str) -> None:
    version = doc.string(doc.src.data.get("apiVersion"), ("apiVersion",), required=True)
    if version != expected:
        doc.warn(("apiVersion",), f'expected "{expected}", read as that')


def _pod_object(doc: Doc, context: _Context) -> PodPlan:
    data = doc.mapping(doc.src.data, (), ("apiVersion", "kind", "metadata", "spec"))
    _check_version(doc, "v1")
    meta = doc.mapping(data.get("metadata"), ("metadata",), ("name", "labels", "annotations"))
    name = doc.name(meta.get("name"), ("metadata", "name"), DNS_SUBDOMAIN, "pod name")
    labels = _labels(doc, meta.get("labels"), ("metadata", "labels"))
    return _pod(doc, name, labels, data.get("spec"), ("spec",), context)


def _replicated(doc: Doc, kind: str, context: _Context) -> list[PodPlan]:
    """The pods of a Deployment or ReplicaSet: ``NAME-pod`` for one replica (or the
    template's name), ``NAME-pod-0`` ... for more."""
    data = doc.mapping(doc.src.data, (), ("apiVersion", "kind", "metadata", "spec"))
    _check_version(doc, "apps/v1")
    meta = doc.mapping(data.get("metadata"), ("metadata",), ("name", "labels", "annotations"))
    owner = doc.name(meta.get("name"), ("metadata", "name"), DNS_SUBDOMAIN, f"{kind} name")
    spec = doc.mapping(data.get("spec"), ("spec",), ("replicas", "selector", "template"))
    replicas = 1
    if spec.get("replicas") is not None:
        replicas = doc.integer(spec["replicas"], ("spec", "replicas"), high=100)
        if replicas == 0:
            doc.warn(("spec", "replicas"), "0 replicas: no pod to run")
    template = doc.mapping(spec.get("template"), ("spec", "template"), ("metadata", "spec"))
    tpath: KeyPath = ("spec", "template", "metadata")
    tmeta = doc.mapping(template.get("metadata"), tpath, ("name", "labels", "annotations"))
    base = f"{owner}-pod"
    if tmeta.get("name") is not None:
        base = doc.name(tmeta["name"], (*tpath, "name"), DNS_SUBDOMAIN, "pod name")
    labels = _labels(doc, tmeta.get("labels"), (*tpath, "labels"))
    spath: KeyPath = ("spec", "template", "spec")
    if replicas == 1:
        return [_pod(doc, base, labels, template.get("spec"), spath, context)]
    pods = []
    for i in range(replicas):
        # the template is read once for warnings; the other replicas repeat it quietly
        reader = doc if i == 0 else Doc(doc.src, [])
        pods.append(_pod(reader, f"{base}-{i}", labels, template.get("spec"), spath, context))
    if pods and pods[0].publish:
        raise doc.error(
            spath,
            f"{replicas} replicas cannot all publish {pods[0].publish[0]} on the host",
            hint="set replicas: 1, or remove the hostPort",
        )
    return pods


def _labels(doc: Doc, value: Any, path: KeyPath) -> dict[str, str]:
    if value is not None and not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    return {k: doc.string(v, (*path, k)) for k, v in (value or {}).items()}


_POD_SPEC = (
    "containers", "initContainers", "volumes", "restartPolicy", "hostname", "hostAliases",
    "securityContext", "terminationGracePeriodSeconds",
)  # fmt: skip


class _Volumes(Record):
    """The pod's volumes: name -> ``--mount`` type and source (None: not mountable)."""

    mounts: dict[str, tuple[str, str] | None]
    engine: tuple[str, ...]
    host_dirs: tuple[str, ...]
    host_files: tuple[str, ...]
    config: tuple[ConfigVolume, ...] = ()  # mounted read-only, whatever readOnly says


def _pod(
    doc: Doc, name: str, labels: dict[str, str], value: Any, path: KeyPath, context: _Context
) -> PodPlan:
    spec = doc.mapping(value, path, _POD_SPEC)
    restart_text = doc.string(spec.get("restartPolicy"), (*path, "restartPolicy")) or "Always"
    if restart_text not in _RESTART:
        raise doc.error((*path, "restartPolicy"), "must be Always, OnFailure or Never")
    hostname = name.split(".")[0]
    if spec.get("hostname") is not None:
        hostname = doc.name(spec["hostname"], (*path, "hostname"), DNS_LABEL, "hostname")
    grace = None
    if spec.get("terminationGracePeriodSeconds") is not None:
        gpath = (*path, "terminationGracePeriodSeconds")
        grace = doc.integer(spec["terminationGracePeriodSeconds"], gpath)
    sc_path = (*path, "securityContext")
    pod_sc = doc.mapping(spec.get("securityContext"), sc_path, ("runAsUser", "runAsGroup"))
    pod_user = _ids(doc, pod_sc, sc_path)
    containers: list[ContainerPlan] = []
    inits: list[ContainerPlan] = []
    publish: list[str] = []
    cpath, ipath = (*path, "containers"), (*path, "initContainers")
    listed = doc.items(spec.get("containers"), cpath)
    init_listed = doc.items(spec.get("initContainers"), ipath)
    files_dir = posixpath.join(context.files_root, name)
    volumes = _pod_volumes(
        doc, name, spec.get("volumes"), (*path, "volumes"), _users([*init_listed, *listed]),
        _VolumeContext(context.objects, files_dir),
    )  # fmt: skip
    if not listed:
        raise doc.error(cpath, "a pod needs at least one container")
    common = _Common(
        name, labels, _RESTART[restart_text], grace, pod_user, hostname, volumes, context.objects
    )
    groups = (("initContainers", init_listed, inits), ("containers", listed, containers))
    for key, items, out in groups:
        for i, item in enumerate(items):
            plan, ports = _container(doc, item, (*path, key, i), common, init=out is inits)
            if any(c.name == plan.name for c in (*inits, *containers)):
                raise doc.error(
                    (*path, key, i, "name"), f'container name "{plan.name}" is used twice'
                )
            out.append(plan)
            publish += ports
    return PodPlan(
        name=name,
        infra_name=infra_name(name),
        hostname=hostname,
        publish=tuple(publish),
        add_hosts=_host_aliases(doc, spec.get("hostAliases"), (*path, "hostAliases")),
        labels=labels,
        containers=tuple(containers),
        volumes=volumes.engine,
        host_dirs=volumes.host_dirs,
        host_files=volumes.host_files,
        init_containers=tuple(inits),
        files_dir=files_dir,
        config_volumes=volumes.config,
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


def _ids(doc: Doc, sc: dict[str, Any], path: KeyPath) -> tuple[int | None, int | None]:
    uid = gid = None
    if sc.get("runAsUser") is not None:
        uid = doc.integer(sc["runAsUser"], (*path, "runAsUser"))
    if sc.get("runAsGroup") is not None:
        gid = doc.integer(sc["runAsGroup"], (*path, "runAsGroup"))
    return uid, gid


def _host_aliases(doc: Doc, value: Any, path: KeyPath) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(doc.items(value, path)):
        alias = doc.mapping(item, (*path, i), ("ip", "hostnames"))
        ip = doc.string(alias.get("ip"), (*path, i, "ip"), required=True)
        out += [f"{h}:{ip}" for h in doc.strings(alias.get("hostnames"), (*path, i, "hostnames"))]
    return tuple(out)


class _VolumeContext(Record):
    objects: obj.ConfigObjects
    files_dir: str  # the pod's private directory: configMap and secret volumes go there


def _pod_volumes(
    doc: Doc,
    pod: str,
    value: Any,
    path: KeyPath,
    shared: Mapping[str, int],
    context: _VolumeContext,
) -> _Volumes:
    """The pod's volumes; ``shared``: how many containers mount each (a tmpfs serves
    a memory-backed emptyDir only where one container mounts it)."""
    mounts: dict[str, tuple[str, str] | None] = {}
    engine: list[str] = []
    dirs: list[str] = []
    files: list[str] = []
    config: list[ConfigVolume] = []
    for i, item in enumerate(doc.items(value, path)):
        vpath = (*path, i)
        # every key is known here: an unsupported source is warned about below
        vol = doc.mapping(item, vpath, tuple(item) if isinstance(item, dict) else ())
        name = doc.name(vol.get("name"), (*vpath, "name"), DNS_LABEL, "volume name")
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
        elif kind in ("configMap", "secret"):
            known = ("name" if kind == "configMap" else "secretName", "items", "defaultMode",
                     "optional")  # fmt: skip
            spec = doc.mapping(vol[kind], (*vpath, kind), known)
            object_kind = obj.CONFIG_MAP if kind == "configMap" else obj.SECRET
            made = obj.volume_files(doc, context.objects, object_kind, spec, (*vpath, kind))
            directory = posixpath.join(context.files_dir, name)
            config.append(ConfigVolume(directory, made))
            mounts[name] = ("bind", directory)
        else:
            mounts[name] = None
            doc.warn((*vpath, kind), f'{kind} volumes are not supported; "{name}" is not mounted')
    return _Volumes(mounts, tuple(engine), tuple(dirs), tuple(files), tuple(config))


class _Common(Record):
    """What every container of a pod shares."""

    pod: str
    labels: dict[str, str]
    restart: str | None
    grace: int | None
    user: tuple[int | None, int | None]
    hostname: str
    volumes: _Volumes
    objects: obj.ConfigObjects


_CONTAINER = (
    "name", "image", "command", "args", "env", "envFrom", "ports", "workingDir",
    "securityContext", "volumeMounts", "imagePullPolicy", "stdin",
)  # fmt: skip
_SECURITY = (
    "runAsUser", "runAsGroup", "readOnlyRootFilesystem", "allowPrivilegeEscalation",
    "capabilities", "privileged",
)  # fmt: skip


def _container(
    doc: Doc, value: Any, path: KeyPath, common: _Common, *, init: bool = False
) -> tuple[ContainerPlan, list[str]]:
    """A container, or an init container (which runs once: no restart, no probes)."""
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.volumes import MountRequest

    c = doc.mapping(value, path, _CONTAINER if init else (*_CONTAINER, *PROBES))
    name = doc.name(c.get("name"), (*path, "name"), DNS_LABEL, "container name")
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
        "pod": {"name": common.pod, **({"init": True} if init else {})},
        "kube": {"container": name},
    }
    if common.restart is not None and not init:
        extra["restart"] = common.restart
    if not init:
        extra.update(health_extra(doc, c, path))
    if common.grace is not None:
        extra["stop_timeout"] = float(common.grace)
    options = RunOptions(
        command=(*command[1:], *args) if command else args,
        image=image,
        name=f"{common.pod}-{name}",
        interactive=doc.boolean(c.get("stdin"), (*path, "stdin")),
        env=_env(doc, c, path, common.objects),
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
        network=NetworkRequest(mode=f"container:{infra_name(common.pod)}"),
        pull=_PULL[pull],
        extra=extra,
    )
    return ContainerPlan(name, options), _ports(doc, c.get("ports"), (*path, "ports"))


_REFS = {"configMapKeyRef": obj.CONFIG_MAP, "secretKeyRef": obj.SECRET}
_FROM = {"configMapRef": obj.CONFIG_MAP, "secretRef": obj.SECRET}


def _env(
    doc: Doc, c: Mapping[str, Any], path: KeyPath, objects: obj.ConfigObjects
) -> tuple[tuple[str, str], ...]:
    """``envFrom`` (in order, with its prefix), then ``env``, which wins, as in Kubernetes."""
    out: dict[str, str] = {}
    fpath = (*path, "envFrom")
    for i, item in enumerate(doc.items(c.get("envFrom"), fpath)):
        source = doc.mapping(item, (*fpath, i), ("prefix", *_FROM))
        head = doc.string(source.get("prefix"), (*fpath, i, "prefix"))
        refs = [k for k in _FROM if k in source]
        if len(refs) != 1:
            raise doc.error((*fpath, i), "needs one of configMapRef and secretRef")
        rpath = (*fpath, i, refs[0])
        ref = doc.mapping(source[refs[0]], rpath, ("name", "optional"))
        for key, value in obj.all_values(doc, objects, _FROM[refs[0]], ref, rpath).items():
            out[head + key] = value
    epath = (*path, "env")
    for i, item in enumerate(doc.items(c.get("env"), epath)):
        env = doc.mapping(item, (*epath, i), ("name", "value", "valueFrom"))
        key = doc.string(env.get("name"), (*epath, i, "name"), required=True)
        if env.get("valueFrom") is None:
            out[key] = doc.string(env.get("value"), (*epath, i, "value"))
            continue
        vpath = (*epath, i, "valueFrom")
        source = doc.mapping(env["valueFrom"], vpath, tuple(_REFS))
        refs = [k for k in _REFS if k in source]
        if len(refs) != 1:
            # fieldRef and resourceFieldRef: warned about by mapping(); not set at all
            # rather than set wrongly
            continue
        rpath = (*vpath, refs[0])
        ref = doc.mapping(source[refs[0]], rpath, ("name", "key", "optional"))
        found = obj.key_value(doc, objects, _REFS[refs[0]], ref, rpath)
        if found is not None:
            out[key] = found
    return tuple(out.items())


def _ports(doc: Doc, value: Any, path: KeyPath) -> list[str]:
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


def _mounts(doc: Doc, value: Any, path: KeyPath, volumes: _Volumes) -> tuple[str, ...]:
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
        read_only = doc.boolean(m.get("readOnly"), (*mpath, "readOnly"))
        # Kubernetes mounts configMap and secret volumes read-only, whatever is asked
        read_only |= any(v.directory == where for v in volumes.config)
        ro = ",ro" if read_only else ""
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
