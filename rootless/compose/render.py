"""The normalised model as Compose-shaped plain data, for ``compose config`` (pure).

Every service is written in the long syntax (ports, volumes, depends_on,
networks as mappings), paths are absolute and variables are resolved, so the
output is a compose file that needs no ``.env`` and no override files.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rootless.compose.model import (
    Build,
    Healthcheck,
    Port,
    Project,
    Secret,
    Service,
    ServiceVolume,
)


def project_dict(project: Project, services: Iterable[str] | None = None) -> dict[str, Any]:
    """``services`` (default: all) and the networks, volumes and secrets they use."""
    chosen = [project.service(n) for n in services] if services is not None else project.services
    used_networks = {n.name for s in chosen for n in s.networks}
    used_volumes = {v.source for s in chosen for v in s.volumes if v.type == "volume"}
    used_secrets = {sec.source for s in chosen for sec in s.secrets}
    used_secrets |= {sec.source for s in chosen if s.build for sec in s.build.secrets}
    out: dict[str, Any] = {
        "name": project.name,
        "services": {s.name: service_dict(s) for s in chosen},
    }
    networks = {
        n.key: _resource(n.name, n.external, n.driver, n.labels, internal=n.internal)
        for n in project.networks
        if n.key in used_networks
    }
    volumes = {
        v.key: _resource(v.name, v.external, v.driver, v.labels)
        for v in project.volumes
        if v.key in used_volumes
    }
    secrets = {s.key: _secret(s) for s in project.secrets if s.key in used_secrets}
    for key, value in (("networks", networks), ("volumes", volumes), ("secrets", secrets)):
        if value:
            out[key] = value
    return out


def _resource(
    name: str, external: bool, driver: str | None, labels: tuple[tuple[str, str], ...],
    *, internal: bool = False,
) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"name": name}
    if external:
        out["external"] = True
    if driver:
        out["driver"] = driver
    if internal:
        out["internal"] = True
    if labels:
        out["labels"] = dict(labels)
    return out


def service_dict(s: Service) -> dict[str, Any]:
    out: dict[str, Any] = {}
    simple = (
        "image", "hostname", "working_dir", "user", "restart", "stop_signal", "container_name",
        "shm_size", "mac_address", "mem_limit", "cpus", "pids_limit", "network_mode",
    )  # fmt: skip
    for key in simple:
        if getattr(s, key) is not None:
            out[key] = getattr(s, key)
    for key in ("command", "entrypoint"):
        if getattr(s, key) is not None:
            out[key] = list(getattr(s, key))
    lists = (
        "expose", "tmpfs", "cap_add", "cap_drop", "profiles", "env_file", "dns", "dns_search",
        "dns_opt", "security_opt", "devices",
    )  # fmt: skip
    for key in lists:
        if getattr(s, key):
            out[key] = list(getattr(s, key))
    for key in ("read_only", "init", "tty", "stdin_open", "privileged"):
        if getattr(s, key):
            out[key] = True
    if s.extra_hosts:
        out["extra_hosts"] = _extra_hosts(s.extra_hosts)
    if s.ulimits:
        out["ulimits"] = _ulimits(s.ulimits)
    if s.logging is not None:
        out["logging"] = {
            **({"driver": s.logging.driver} if s.logging.driver else {}),
            **({"options": dict(s.logging.options)} if s.logging.options else {}),
        }
    if s.build is not None:
        out["build"] = _build(s.build)
    if s.pull_policy is not None:
        out["pull_policy"] = s.pull_policy
    if s.environment:
        out["environment"] = dict(s.environment)
    if s.labels:
        out["labels"] = dict(s.labels)
    if s.ports:
        out["ports"] = [_port(p) for p in s.ports]
    if s.volumes:
        out["volumes"] = [_volume(v) for v in s.volumes]
    if s.depends_on:
        out["depends_on"] = {
            d.service: {"condition": d.condition, "restart": d.restart, "required": d.required}
            for d in s.depends_on
        }
    if s.healthcheck is not None:
        out["healthcheck"] = _healthcheck(s.healthcheck)
    if s.networks:  # none with network_mode
        out["networks"] = {
            n.name: {"aliases": list(n.aliases)} if n.aliases else None for n in s.networks
        }
    if s.stop_grace_period is not None:
        out["stop_grace_period"] = format_duration(s.stop_grace_period)
    if s.replicas != 1:
        out["deploy"] = {"replicas": s.replicas}
    if s.secrets:
        out["secrets"] = [
            {"source": sec.source, "target": sec.target}
            | ({"mode": f"{sec.mode:04o}"} if sec.mode is not None else {})
            for sec in s.secrets
        ]
    return dict(sorted(out.items()))


def _secret(s: Secret) -> dict[str, Any]:
    """Where the value comes from; never the value itself."""
    if s.file is not None:
        return {"file": s.file}
    if s.environment is not None:
        return {"environment": s.environment, "name": s.name}
    return {"external": True, "name": s.name}


def _build(b: Build) -> dict[str, Any]:
    out: dict[str, Any] = {"context": b.context}
    for key in ("dockerfile", "dockerfile_inline", "target", "network"):
        if getattr(b, key) is not None:
            out[key] = getattr(b, key)
    if b.args:
        out["args"] = dict(b.args)
    if b.labels:
        out["labels"] = dict(b.labels)
    for key in ("no_cache", "pull"):
        if getattr(b, key):
            out[key] = True
    if b.secrets:
        out["secrets"] = [{"source": x.source, "target": x.target} for x in b.secrets]
    if b.tags:
        out["tags"] = list(b.tags)
    if b.extra_hosts:
        out["extra_hosts"] = _extra_hosts(b.extra_hosts)
    if b.shm_size is not None:
        out["shm_size"] = b.shm_size
    if b.ulimits:
        out["ulimits"] = _ulimits(b.ulimits)
    if b.ssh:
        out["ssh"] = list(b.ssh)
    return out


def _extra_hosts(hosts: tuple[str, ...]) -> list[str]:
    """``NAME:IP`` -> ``NAME=IP`` (an IPv6 address has colons of its own)."""
    return ["=".join(h.partition(":")[::2]) for h in hosts]


def _ulimits(ulimits: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=SOFT:HARD`` -> ``{NAME: {soft, hard}}``."""
    return {
        name: dict(zip(("soft", "hard"), map(int, limits.split(":")), strict=True))
        for name, _, limits in (u.partition("=") for u in ulimits)
    }


def _port(p: Port) -> dict[str, Any]:
    out: dict[str, Any] = {"target": p.target, "protocol": p.protocol, "mode": "ingress"}
    if p.published is not None:
        out["published"] = str(p.published)
    if p.host_ip:
        out["host_ip"] = p.host_ip
    return out


def _volume(v: ServiceVolume) -> dict[str, Any]:
    out: dict[str, Any] = {"type": v.type}
    if v.source is not None:
        out["source"] = v.source
    out["target"] = v.target
    if v.read_only:
        out["read_only"] = True
    if v.type == "bind":
        out["bind"] = {"create_host_path": v.create_host_path}
        if v.propagation:
            out["bind"]["propagation"] = v.propagation
    elif v.type == "volume" and v.nocopy:
        out["volume"] = {"nocopy": True}
    elif v.type == "tmpfs" and (v.tmpfs_size is not None or v.tmpfs_mode is not None):
        out["tmpfs"] = {
            k: val for k, val in (("size", v.tmpfs_size), ("mode", v.tmpfs_mode)) if val is not None
        }
    return out


def _healthcheck(h: Healthcheck) -> dict[str, Any]:
    if h.test == ("NONE",):
        return {"disable": True}
    out: dict[str, Any] = {}
    if h.test is not None:
        out["test"] = list(h.test)
    for key in ("interval", "timeout", "start_period"):
        value = getattr(h, key)
        if value is not None:
            out[key] = format_duration(value)
    if h.retries is not None:
        out["retries"] = h.retries
    return out


def format_duration(seconds: float) -> str:
    """Go's duration style: ``90.0`` -> ``1m30s``, ``0.5`` -> ``500ms``."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    total = ms // 1000
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return text + (f"{secs}s" if secs or not text else "")
