"""One replica of a compose service -> the :class:`RunOptions` that create it (pure).

The supervisor creates the networks and volumes named in :class:`ServiceRun`
(and the missing bind-mount directories) first, then passes ``options`` to
``rootless.engine.containers.create``/``run``. Compose metadata travels in
``options.extra``: ``labels`` (the service's plus ``com.docker.compose.*``) and
``compose`` (project, service, number, config hash), so that ``ps`` can group
containers and a later ``up`` can tell changed services by their hash.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from rootless.compose.plan import config_hash, container_names
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.compose.model import Healthcheck, Project, Service, ServiceVolume
    from rootless.engine.containers import RunOptions

LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_NUMBER = "com.docker.compose.container-number"
LABEL_HASH = "com.docker.compose.config-hash"
LABEL_ONEOFF = "com.docker.compose.oneoff"  # "True" on a `compose run` container


class NetworkAttachment(NamedTuple):
    network: str  # the engine's network name
    aliases: tuple[str, ...]  # names other containers of that network resolve


class ServiceRun(NamedTuple):
    options: RunOptions
    networks: tuple[NetworkAttachment, ...]
    volumes: tuple[str, ...]  # engine names of the named volumes it mounts
    host_dirs: tuple[str, ...]  # bind sources to create when missing (Compose does)


def image_name(project: Project, service: Service) -> str:
    """The image to run: ``image:``, or ``PROJECT-SERVICE`` for a service that is built."""
    return service.image or f"{project.name}-{service.name}"


def service_run(project: Project, service_name: str, number: int = 1) -> ServiceRun:
    """How to create replica ``number`` (1-based) of ``service_name``."""
    from rootless.engine.containers import RunOptions
    from rootless.engine.network import NetworkRequest
    from rootless.runtime.plan import parse_security_opts, parse_ulimit
    from rootless.supervise.logfile import parse_log_opts
    from rootless.volumes import MountRequest

    s = project.service(service_name)
    names = container_names(project, service_name)
    if not 1 <= number <= len(names):
        raise ConfigError(f'service "{service_name}" has no replica {number} (1-{len(names)})')
    name = names[number - 1]
    given = [(sec, project.secret(sec.source)) for sec in s.secrets]
    mounts = tuple(_mount_flag(project, v) for v in s.volumes) + tuple(
        _flag("bind", top.file, sec.target, "ro") for sec, top in given if top.file is not None
    )
    # a stored secret goes as `run --secret` does: a private copy, only its name recorded
    secrets = tuple(
        f"{top.name},target={sec.target},mode={0o444 if sec.mode is None else sec.mode:04o}"
        for sec, top in given
        if top.stored
    )
    networks = tuple(
        NetworkAttachment(project.network(n.name).name, (s.name, *n.aliases)) for n in s.networks
    )
    digest = config_hash(project, service_name)
    labels = {
        **dict(s.labels),
        LABEL_PROJECT: project.name,
        LABEL_SERVICE: s.name,
        LABEL_NUMBER: str(number),
        LABEL_HASH: digest,
        LABEL_ONEOFF: "False",
    }
    extra: dict[str, Any] = {
        "labels": labels,
        "compose": {
            "project": project.name,
            "service": s.name,
            "number": number,
            "config_hash": digest,
        },
    }
    if s.restart:
        extra["restart"] = s.restart
    if s.stop_grace_period is not None:
        extra["stop_timeout"] = s.stop_grace_period
    if s.stop_signal:
        extra["stop_signal"] = s.stop_signal
    if s.healthcheck is not None:
        extra["health_flags"] = _health_flags(s.healthcheck)
    if s.logging is not None:
        extra.update(parse_log_opts(f"{k}={v}" for k, v in s.logging.options))
    seccomp, no_new_privileges, unmask = parse_security_opts(s.security_opt)
    cap_add = s.cap_add
    if s.privileged:
        # what rootless can do of --privileged: every capability (of the user namespace),
        # no seccomp filter, nothing masked; host devices still need devices:
        cap_add, seccomp, unmask = ("ALL",), None, ("ALL",)
    entrypoint, command = _argv(s)
    options = RunOptions(
        command=command,
        image=image_name(project, s),
        name=name,
        env=tuple((k, v) for k, v in s.environment if v is not None),
        workdir=s.working_dir,
        user=s.user,
        hostname=s.hostname,
        entrypoint=entrypoint,
        cap_add=cap_add,
        cap_drop=s.cap_drop,
        seccomp=seccomp,
        no_new_privileges=no_new_privileges,
        unmask=unmask,
        read_only=s.read_only,
        interactive=s.stdin_open,
        tty=s.tty,
        devices=s.devices,
        mounts=MountRequest(mounts=mounts, tmpfs=s.tmpfs),
        network=NetworkRequest(
            mode=networks[0].network if networks else _network_mode(project, s),
            publish=tuple(p.publish_spec() for p in s.ports),
            dns=s.dns,
            dns_search=s.dns_search,
            dns_options=s.dns_opt,
            add_hosts=s.extra_hosts,
            mac_address=s.mac_address,
        ),
        ulimits=tuple(parse_ulimit(u) for u in s.ulimits),
        shm_size=s.shm_size,
        init=s.init,
        secrets=secrets,
        limits=service_limits(s),
        extra=extra,
    )
    volumes = tuple(
        project.volume(v.source).name for v in s.volumes if v.type == "volume" and v.source
    )
    host_dirs = tuple(
        v.source for v in s.volumes if v.type == "bind" and v.create_host_path and v.source
    )
    return ServiceRun(options, networks, tuple(dict.fromkeys(volumes)), host_dirs)


def _network_mode(project: Project, s: Service) -> str:
    """``network_mode`` as ``--network``: ``service:NAME`` joins that service's first
    replica."""
    mode = s.network_mode or "none"
    if mode.startswith("service:"):
        return f"container:{container_names(project, mode.removeprefix('service:'))[0]}"
    return mode


def service_limits(s: Service) -> dict[str, str]:
    """The resource limits as ``run``'s ``--memory``, ``--cpus``, ``--pids-limit``."""
    limits = {"memory": s.mem_limit, "cpus": s.cpus, "pids-limit": s.pids_limit}
    return {k: f"{v:g}" if isinstance(v, float) else str(v) for k, v in limits.items() if v}


def _argv(s: Service) -> tuple[str | None, tuple[str, ...]]:
    """(``--entrypoint``, command) giving ENTRYPOINT + CMD as Compose does.

    ``--entrypoint`` takes one word, so a longer entrypoint puts its other words in
    front of the command; an entrypoint drops the image's CMD either way.
    """
    command = s.command or ()
    if s.entrypoint is None:
        return None, command
    if not s.entrypoint:
        return "", command
    return s.entrypoint[0], (*s.entrypoint[1:], *command)


def _flag(kind: str, source: str | None, target: str, *opts: str) -> str:
    for text in (source or "", target):
        if "," in text:
            raise ConfigError(
                f'cannot mount "{text}": paths with a comma are not supported',
                hint="rename the path or mount its parent directory",
            )
    parts = [f"type={kind}", *([f"source={source}"] if source else []), f"target={target}"]
    return ",".join([*parts, *opts])


def _mount_flag(project: Project, v: ServiceVolume) -> str:
    """The ``--mount`` value for one service volume."""
    ro = ("ro",) if v.read_only else ()
    if v.type == "bind":
        prop = (f"bind-propagation={v.propagation}",) if v.propagation else ()
        return _flag("bind", v.source, v.target, *ro, *prop)
    if v.type == "volume":
        source = project.volume(v.source).name if v.source else None
        nocopy = ("volume-nocopy=true",) if v.nocopy else ()
        return _flag("volume", source, v.target, *ro, *nocopy)
    size = (f"tmpfs-size={v.tmpfs_size}",) if v.tmpfs_size is not None else ()
    mode = (f"tmpfs-mode={v.tmpfs_mode:o}",) if v.tmpfs_mode is not None else ()
    return _flag("tmpfs", None, v.target, *ro, *size, *mode)


def _health_flags(h: Healthcheck) -> dict[str, Any]:
    """The ``--health-*`` flags of ``run`` that stand for a compose healthcheck."""
    if h.test == ("NONE",):
        return {"disabled": True}

    def ms(seconds: float | None) -> str | None:
        return None if seconds is None else f"{round(seconds * 1000)}ms"

    cmd = None
    if h.test is not None:
        cmd = h.test[1] if h.test[0] == "CMD-SHELL" else json.dumps(list(h.test))
    return {
        "cmd": cmd,
        "interval": ms(h.interval),
        "timeout": ms(h.timeout),
        "retries": h.retries,
        "start_period": ms(h.start_period),
        "disabled": False,
    }
