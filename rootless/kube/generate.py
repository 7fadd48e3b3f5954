"""Containers -> Kubernetes Pod, Deployment and Service objects (pure).

The facts of a container (:class:`ContainerFacts`) come from its record, its
config.json and its image's config (see :mod:`rootless.kube.collect`); what
equals the image's defaults (entrypoint and command, environment, working
directory) is left out, as Podman does, so the YAML says what the user asked.
A healthcheck becomes an exec ``livenessProbe``. What has no Kubernetes form
(secrets, devices, user names) is reported in the warnings, not dropped silently.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError

NODE_PORTS = range(30000, 32768)  # Kubernetes' default NodePort range
_ENGINE_ENV = ("container", "HOSTNAME", "TERM")  # set by the engine for every container


class MountFact(Record):
    kind: str  # "hostPath", "volume" (named), "emptyDir" (anonymous volume) or "tmpfs"
    source: str  # the host path or the volume name ("" for emptyDir and tmpfs)
    target: str
    read_only: bool = False


class ContainerFacts(Record):
    name: str  # the engine's name
    image: str  # as the user gave it ("" for --rootfs)
    argv: tuple[str, ...]
    env: tuple[str, ...] = ()  # the process's "K=V" entries
    workdir: str = "/"
    user: str | None = None  # USER[:GROUP] as given
    ports: tuple[tuple[str, int, int, str], ...] = ()  # (host_ip, host_port, port, protocol)
    capabilities: tuple[str, ...] | None = None  # the bounding set; None: the default
    read_only: bool = False
    no_new_privileges: bool = True
    mounts: tuple[MountFact, ...] = ()
    restart: str | None = None  # --restart
    stop_timeout: float | None = None
    interactive: bool = False
    hostname: str | None = None  # when set with --hostname
    image_entrypoint: tuple[str, ...] = ()
    image_cmd: tuple[str, ...] = ()
    image_env: tuple[str, ...] = ()
    image_workdir: str = ""
    health: Mapping[str, Any] | None = None  # the stored healthcheck (HealthConfig.to_json())
    image_health: Mapping[str, Any] | None = None  # the image's, as the container would get it
    unsupported: tuple[str, ...] = ()  # what the YAML cannot say, for the warnings


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as a Kubernetes DNS label: lower-case letters, digits and '-'."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return label or "x"


def pod(
    name: str,
    containers: Sequence[ContainerFacts],
    *,
    kube_names: Sequence[str] | None = None,
    host_aliases: Sequence[str] = (),
) -> tuple[dict[str, Any], list[str]]:
    """A Pod running ``containers`` (named ``kube_names``, default: from their engine
    names) and the warnings about what it cannot say."""
    if not containers:
        raise ConfigError(f"cannot generate pod {name}: it has no containers")
    names = list(kube_names or [dns_label(c.name) for c in containers])
    warnings: list[str] = []
    volumes = _Volumes()
    specs = []
    for facts, kname in zip(containers, names, strict=True):
        if not facts.image:
            raise ConfigError(
                f"cannot generate YAML for container {facts.name}: it was made from a rootfs "
                "directory, and Kubernetes runs images",
                hint="commit it to an image first: rootless commit " + facts.name,
            )
        warnings += [f"container {facts.name}: {w}" for w in facts.unsupported]
        specs.append(_container(facts, kname, volumes, warnings))
    restarts = {_restart_policy(c.restart) for c in containers}
    if len(restarts) > 1:
        warnings.append("the containers' restart policies differ; the pod uses the first's")
    spec: dict[str, Any] = {"restartPolicy": _restart_policy(containers[0].restart)}
    grace = [c.stop_timeout for c in containers if c.stop_timeout is not None]
    if grace:
        spec["terminationGracePeriodSeconds"] = round(max(grace))
    hostnames = {c.hostname for c in containers if c.hostname}
    if len(hostnames) == 1 and dns_label(min(hostnames)) == min(hostnames):
        spec["hostname"] = min(hostnames)
    elif hostnames:
        warnings.append(
            f"hostname {', '.join(sorted(hostnames))}: a pod has one hostname, a DNS label; "
            "not in the YAML (the pod's name applies)"
        )
    if host_aliases:
        spec["hostAliases"] = [{"ip": "127.0.0.1", "hostnames": list(host_aliases)}]
    spec["containers"] = specs
    if volumes.items:
        spec["volumes"] = volumes.items
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }
    return obj, warnings


def deployment(pod_obj: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A Deployment of one replica of ``pod_obj`` (named POD-deployment)."""
    name = pod_obj["metadata"]["name"]
    spec = dict(pod_obj["spec"])
    warnings = []
    if spec.get("restartPolicy") != "Always":
        warnings.append(
            f"a Deployment's pods always restart: restartPolicy {spec.get('restartPolicy')} "
            "became Always"
        )
    spec["restartPolicy"] = "Always"
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-deployment", "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec},
        },
    }
    return obj, warnings


def service(pod_obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """A NodePort Service for the pod's published ports (None when it publishes none).
    The host port becomes the nodePort where it is in Kubernetes' NodePort range."""
    name = pod_obj["metadata"]["name"]
    ports: dict[tuple[int, str], dict[str, Any]] = {}
    for c in pod_obj["spec"]["containers"]:
        for p in c.get("ports", ()):
            key = (p["containerPort"], p["protocol"])
            if "hostPort" not in p or key in ports:
                continue
            entry: dict[str, Any] = {
                "name": f"{p['protocol'].lower()}-{p['containerPort']}",
                "port": p["containerPort"],
                "targetPort": p["containerPort"],
                "protocol": p["protocol"],
            }
            if p["hostPort"] in NODE_PORTS:
                entry["nodePort"] = p["hostPort"]
            ports[key] = entry
    if not ports:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        # Service names are DNS-1035 labels: they start with a letter.
        "metadata": {"name": name if name[0].isalpha() else f"svc-{name}", "labels": {"app": name}},
        "spec": {"type": "NodePort", "selector": {"app": name}, "ports": list(ports.values())},
    }


def render(objects: Sequence[Mapping[str, Any]]) -> str:
    """The objects as one multi-document YAML file."""
    import yaml

    body = yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
    return "# Generated by rootless kube generate; run it with: rootless kube play FILE\n" + body


def _restart_policy(restart: str | None) -> str:
    name = (restart or "no").split(":")[0]
    return {"no": "Never", "on-failure": "OnFailure"}.get(name, "Always")


class _Volumes:
    """The pod's volumes, one per host path or named volume, shared by its containers."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.by_source: dict[tuple[str, str], str] = {}

    def add(self, m: MountFact) -> str:
        key = (m.kind, m.source)
        if m.source and key in self.by_source:
            return self.by_source[key]
        base = {"hostPath": m.source, "volume": m.source}.get(m.kind, m.target)
        suffix = {"hostPath": "-host", "volume": "-pvc"}.get(m.kind, "-empty")
        name = dns_label(base, 63 - len(suffix) - 3) + suffix
        taken = {v["name"] for v in self.items}
        n = 1
        while name in taken:
            n += 1
            name = f"{dns_label(base, 63 - len(suffix) - 3)}{suffix}{n}"
        source: dict[str, Any]
        if m.kind == "hostPath":
            source = {"hostPath": {"path": m.source}}
        elif m.kind == "volume":
            source = {"persistentVolumeClaim": {"claimName": m.source}}
        elif m.kind == "tmpfs":
            source = {"emptyDir": {"medium": "Memory"}}
        else:
            source = {"emptyDir": {}}
        self.items.append({"name": name, **source})
        if m.source:
            self.by_source[key] = name
        return name


def _container(
    facts: ContainerFacts, name: str, volumes: _Volumes, warnings: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": facts.image}
    command, args = _command(facts)
    if command:
        out["command"] = list(command)
    if args:
        out["args"] = list(args)
    env = _env(facts)
    if env:
        out["env"] = [{"name": k, "value": v} for k, v in env]
    if facts.workdir != (facts.image_workdir or "/"):
        out["workingDir"] = facts.workdir
    ports = []
    for host_ip, host_port, port, proto in facts.ports:
        entry: dict[str, Any] = {"containerPort": port, "hostPort": host_port}
        if host_ip:
            entry["hostIP"] = host_ip
        entry["protocol"] = proto.upper()
        ports.append(entry)
    if ports:
        out["ports"] = ports
    if facts.health and facts.health != facts.image_health:
        from rootless.kube.probes import liveness_probe

        out["livenessProbe"] = liveness_probe(facts.health)
    security = _security(facts, warnings)
    if security:
        out["securityContext"] = security
    if facts.interactive:
        out["stdin"] = True
    mounts = []
    for m in facts.mounts:
        entry = {"name": volumes.add(m), "mountPath": m.target}
        if m.read_only:
            entry["readOnly"] = True
        mounts.append(entry)
    if mounts:
        out["volumeMounts"] = mounts
    return out


def _command(facts: ContainerFacts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(command, args): empty where the image's ENTRYPOINT or CMD already say it."""
    ep, argv = facts.image_entrypoint, facts.argv
    if argv == ep + facts.image_cmd:
        return (), ()
    rest = argv[len(ep) :]
    if ep and argv[: len(ep)] == ep and rest:
        return (), rest
    return argv, ()


def _env(facts: ContainerFacts) -> list[tuple[str, str]]:
    from rootless.runtime.spec import DEFAULT_PATH

    image = set(facts.image_env)
    if not any(e.startswith("PATH=") for e in image):
        image.add(f"PATH={DEFAULT_PATH}")
    out = []
    for entry in facts.env:
        key, _, value = entry.partition("=")
        if entry not in image and key not in _ENGINE_ENV:
            out.append((key, value))
    return out


def _security(facts: ContainerFacts, warnings: list[str]) -> dict[str, Any]:
    from rootless.runtime.capabilities import DEFAULT_CAPABILITIES

    out: dict[str, Any] = {}
    if facts.user:
        uid, _, gid = facts.user.partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            out["runAsUser"] = int(uid)
            if gid:
                out["runAsGroup"] = int(gid)
        else:
            warnings.append(
                f"container {facts.name}: user {facts.user} is a name, and Kubernetes takes "
                "numeric IDs: not in the YAML (the image's user applies)"
            )
    if facts.read_only:
        out["readOnlyRootFilesystem"] = True
    out["allowPrivilegeEscalation"] = not facts.no_new_privileges
    if facts.capabilities is not None:
        have = {c.removeprefix("CAP_") for c in facts.capabilities}
        caps = {}
        add = sorted(have - set(DEFAULT_CAPABILITIES))
        drop = sorted(set(DEFAULT_CAPABILITIES) - have)
        if add:
            caps["add"] = add
        if drop:
            caps["drop"] = drop
        if caps:
            out["capabilities"] = caps
    return out


def mount_facts(
    mounts: Sequence[tuple[str, str, str, tuple[str, ...]]],
    *,
    own_files: str,
    volumes_root: str,
    anonymous: frozenset[str] = frozenset(),
) -> tuple[tuple[MountFact, ...], list[str]]:
    """The user's mounts among a spec's (destination, type, source, options), and what
    could not be expressed. ``own_files`` is the container's directory (its /etc files),
    ``volumes_root`` the volume store (``ROOT/NAME/_data`` is volume NAME)."""
    from rootless.engine.containers import INIT_PATH
    from rootless.runtime.mounts import default_mounts

    defaults = {m.destination for m in default_mounts(own_network=True)}
    facts: list[MountFact] = []
    unsupported: list[str] = []
    for dest, kind, source, options in mounts:
        ro = "ro" in options
        if dest in defaults or dest == INIT_PATH or _under(source, own_files):
            continue
        if dest == "/run/secrets" or dest.startswith("/run/secrets/"):
            unsupported.append(f"secret at {dest} is not in the YAML")
        elif kind == "tmpfs":
            facts.append(MountFact("tmpfs", "", dest, ro))
        elif kind != "bind":
            unsupported.append(f"{kind} mount at {dest} is not in the YAML")
        elif dest.startswith("/dev/"):
            unsupported.append(f"device {dest} is not in the YAML")
        elif posixpath.basename(source) == "_data" and _under(source, volumes_root):
            volume = posixpath.basename(posixpath.dirname(source))
            if volume in anonymous:
                facts.append(MountFact("emptyDir", "", dest, ro))
            else:
                facts.append(MountFact("volume", volume, dest, ro))
        else:
            facts.append(MountFact("hostPath", source, dest, ro))
    return tuple(facts), unsupported


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
