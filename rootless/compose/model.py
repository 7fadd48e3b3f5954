"""The normalised compose model: frozen data a supervisor can run (pure).

:func:`build_project` checks a merged, interpolated :class:`Source` and turns
each service's short and long syntaxes into one form: commands are argv tuples,
environment and labels are sorted (name, value) pairs, ports and volumes are
records, paths are absolute, durations are seconds. Errors name the file, the
line and the key; unknown keys are reported through ``warn``, never dropped in
silence.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from rootless.compose.interpolate import parse_env_file
from rootless.compose.plan import find_cycle
from rootless.compose.source import KeyPath, Source, error_at, prefix
from rootless.errors import ConfigError

DEPENDENCY_CONDITIONS = (
    "service_started",
    "service_healthy",
    "service_completed_successfully",
)
DEFAULT_NETWORK = "default"


@attrs.frozen
class BuildSecret:
    source: str  # the key in the top-level `secrets:`
    target: str  # the secret's id in the build (RUN --mount=type=secret,id=TARGET)


@attrs.frozen
class Build:
    context: str  # absolute
    dockerfile: str | None = None
    args: tuple[tuple[str, str | None], ...] = ()
    target: str | None = None
    dockerfile_inline: str | None = None  # the Containerfile's text itself
    labels: tuple[tuple[str, str], ...] = ()
    no_cache: bool = False
    pull: bool = False
    network: str | None = None  # host or none; None: the builder's default
    secrets: tuple[BuildSecret, ...] = ()
    tags: tuple[str, ...] = ()  # more names for the built image
    # For the RUN steps, in build's flag forms:
    extra_hosts: tuple[str, ...] = ()  # NAME:IP
    shm_size: int | None = None  # bytes
    ulimits: tuple[str, ...] = ()  # NAME=SOFT:HARD
    ssh: tuple[str, ...] = ()  # default, or ID=SOCKET (absolute)


PULL_POLICIES = ("always", "never", "missing", "build")


@attrs.frozen
class Port:
    target: int
    published: int | None = None  # None: any free host port
    host_ip: str | None = None
    protocol: str = "tcp"

    def publish_spec(self) -> str:
        """The ``-p`` form: ``[ip:][host:]container/proto``."""
        ip = f"[{self.host_ip}]" if self.host_ip and ":" in self.host_ip else self.host_ip
        host = (
            f"{ip}:{self.published or ''}:" if ip else f"{self.published}:" * bool(self.published)
        )
        return f"{host}{self.target}/{self.protocol}"


@attrs.frozen
class ServiceVolume:
    type: str  # bind, volume, tmpfs
    target: str
    source: str | None = None  # bind: absolute host path; volume: the key in `volumes:`
    read_only: bool = False
    nocopy: bool = False
    create_host_path: bool = True  # bind: make a missing host directory
    propagation: str | None = None
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None


@attrs.frozen
class Dependency:
    service: str
    condition: str = "service_started"
    restart: bool = False
    required: bool = True


@attrs.frozen
class Healthcheck:
    test: tuple[str, ...] | None = None  # ("CMD", ...), ("CMD-SHELL", line), ("NONE",)
    interval: float | None = None  # seconds; None: the default
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None


@attrs.frozen
class ServiceNetwork:
    name: str  # the key in `networks:`
    aliases: tuple[str, ...] = ()


@attrs.frozen
class ServiceSecret:
    source: str  # the key in `secrets:`
    target: str  # absolute path in the container
    mode: int | None = None  # stored secrets (environment, external) only; None: 0444


@attrs.frozen
class Logging:
    driver: str | None = None  # json-file or k8s-file (rootless writes k8s-file)
    options: tuple[tuple[str, str], ...] = ()  # max-size, max-file


@attrs.frozen
class Service:
    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str | None], ...] = ()
    env_file: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[ServiceVolume, ...] = ()
    tmpfs: tuple[str, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: str | None = None
    networks: tuple[ServiceNetwork, ...] = ()
    hostname: str | None = None
    working_dir: str | None = None
    user: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    read_only: bool = False
    init: bool = False
    stop_signal: str | None = None
    stop_grace_period: float | None = None
    labels: tuple[tuple[str, str], ...] = ()
    container_name: str | None = None
    replicas: int = 1
    profiles: tuple[str, ...] = ()
    secrets: tuple[ServiceSecret, ...] = ()
    pull_policy: str | None = None  # PULL_POLICIES, daily, weekly, every_DURATION; None: unset
    # what `rootless run` flags do:
    extra_hosts: tuple[str, ...] = ()  # NAME:IP (--add-host)
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    ulimits: tuple[str, ...] = ()  # NAME=SOFT:HARD
    shm_size: int | None = None  # bytes
    mac_address: str | None = None
    tty: bool = False
    stdin_open: bool = False
    security_opt: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()  # HOST[:CTR[:rwm]] or a CDI name
    privileged: bool = False
    mem_limit: int | None = None  # bytes; with deploy.resources.limits.memory
    cpus: float | None = None
    pids_limit: int | None = None
    # none, host, slirp4netns[:OPTS], pasta[:OPTS], service:NAME, container:NAME
    network_mode: str | None = None
    logging: Logging | None = None


@attrs.frozen
class Volume:
    key: str
    name: str  # the engine's volume name
    external: bool = False
    driver: str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Network:
    key: str
    name: str  # the engine's network name
    external: bool = False
    driver: str | None = None
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Secret:
    """A top-level secret: a host file (bound as it is), or a value kept in the user's
    secret store (``rootless secret``) under ``name``: taken from the variable
    ``environment`` (stored by ``up``, removed by ``down``), or ``external`` (there
    already)."""

    key: str
    file: str | None = None  # absolute host path
    environment: str | None = None  # the variable the value comes from
    external: bool = False
    name: str | None = None  # the stored secret's name (environment, external)
    # the variable's value (None: unset); kept out of repr so that no message shows it
    value: str | None = attrs.field(default=None, repr=False)

    @property
    def stored(self) -> bool:
        return self.file is None

    def value_of(self, what: str) -> bytes:
        """An environment secret's value; ``what`` failed when its variable is unset or
        empty."""
        if not self.value:
            state = "empty" if self.value is not None else "not set"
            raise ConfigError(
                f"{what}: the variable {self.environment} of its environment: is {state}",
                hint=f"set {self.environment} in the environment or in .env",
            )
        return self.value.encode()


@attrs.frozen
class Project:
    name: str
    directory: str
    services: tuple[Service, ...]
    volumes: tuple[Volume, ...] = ()
    networks: tuple[Network, ...] = ()
    secrets: tuple[Secret, ...] = ()

    def service(self, name: str) -> Service:
        for s in self.services:
            if s.name == name:
                return s
        raise ConfigError(f'no such service: "{name}"', hint=f"services: {self.service_list()}")

    def service_list(self) -> str:
        return ", ".join(s.name for s in self.services) or "(none)"

    def network(self, key: str) -> Network:
        return next(n for n in self.networks if n.key == key)

    def volume(self, key: str) -> Volume:
        return next(v for v in self.volumes if v.key == key)

    def secret(self, key: str) -> Secret:
        return next(s for s in self.secrets if s.key == key)


# ---------------------------------------------------------------------------


Warn = Callable[[str], None]
ReadText = Callable[[str], str]

_TOP_KEYS = frozenset({"name", "services", "volumes", "networks", "secrets"})
_UNSUPPORTED = frozenset(
    {
        "blkio_config", "cgroup_parent", "configs", "cpu_count", "cpu_percent", "cpu_shares",
        "cpu_period", "cpu_quota", "cpuset", "device_cgroup_rules", "domainname", "extends",
        "external_links", "group_add", "ipc", "isolation", "links", "mem_reservation",
        "mem_swappiness", "memswap_limit", "oom_kill_disable", "oom_score_adj", "pid",
        "platform", "runtime", "storage_opt", "sysctls", "userns_mode", "uts", "volumes_from",
        "annotations", "attach", "develop", "post_start", "pre_stop", "gpus", "models",
        "provider", "use_api_socket", "label_file", "credential_spec",
    }
)  # fmt: skip
_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_VOLUME_MODES = frozenset(
    {"ro", "rw", "z", "Z", "nocopy", "copy", "cached", "delegated", "consistent"}
)
_BIND_KEYS = frozenset({"propagation", "create_host_path", "selinux"})
_PROPAGATION = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})


@attrs.frozen
class _Ctx:
    source: Source
    env: Mapping[str, str]
    directory: str
    warn: Warn
    read_text: ReadText
    services: frozenset[str]
    volumes: frozenset[str]
    networks: frozenset[str]
    secrets: frozenset[str]
    stored_secrets: frozenset[str] = frozenset()  # environment and external ones
    external_secrets: frozenset[str] = frozenset()

    def err(self, path: KeyPath, message: str) -> ConfigError:
        return error_at(self.source.locations, path, message)

    def unknown(self, path: KeyPath, why: str = "unknown key, ignored") -> None:
        self.warn(f"{prefix(self.source.locations, path)}{why}")

    def path(self, text: str) -> str:
        """A host path relative to the project directory (``~`` is $HOME), made absolute."""
        if text == "~" or text.startswith("~/"):
            text = self.env.get("HOME", "/") + text[1:]
        return posixpath.normpath(posixpath.join(self.directory, text))


def build_project(
    source: Source,
    *,
    name: str,
    directory: str,
    env: Mapping[str, str],
    warn: Warn,
    read_text: ReadText,
) -> Project:
    """The project a merged and interpolated source describes.

    ``env`` resolves bare ``environment`` names and ``~``; ``read_text(path)`` reads an
    ``env_file`` (raising ConfigError when it cannot).
    """
    data = source.data
    for key in data:
        if key == "version":
            warn(f"{prefix(source.locations, (key,))}obsolete, ignored")
        elif key not in _TOP_KEYS and not key.startswith("x-"):
            warn(f"{prefix(source.locations, (key,))}unknown key, ignored")
    services = data.get("services")
    if services is None:
        raise error_at(source.locations, (), "no services: the file must define services:")
    if not isinstance(services, dict):
        raise error_at(source.locations, ("services",), "must be a mapping of service names")
    tops = {k: _top_mapping(source, data, k) for k in ("volumes", "networks", "secrets")}
    ctx = _Ctx(
        source=source,
        env=env,
        directory=directory,
        warn=warn,
        read_text=read_text,
        services=frozenset(services),
        volumes=frozenset(tops["volumes"]),
        networks=frozenset(tops["networks"]) | {DEFAULT_NETWORK},
        secrets=frozenset(tops["secrets"]),
    )
    secrets = tuple(_secret(ctx, name, k, v) for k, v in tops["secrets"].items())
    ctx = attrs.evolve(
        ctx,
        stored_secrets=frozenset(s.key for s in secrets if s.stored),
        external_secrets=frozenset(s.key for s in secrets if s.external),
    )
    parsed = tuple(_service(ctx, n, body) for n, body in services.items())
    cycle = find_cycle({s.name: [d.service for d in s.depends_on] for s in parsed})
    if cycle:
        raise ctx.err(
            ("services", cycle[0], "depends_on"), f"dependency cycle: {' -> '.join(cycle)}"
        )
    networks = _networks(ctx, name, tops["networks"], parsed)
    return Project(
        name=name,
        directory=directory,
        services=parsed,
        volumes=tuple(
            _named_resource(ctx, Volume, name, "volumes", k, v) for k, v in tops["volumes"].items()
        ),
        networks=networks,
        secrets=secrets,
    )


def check_project_name(text: str, origin: str) -> str:
    if not _PROJECT_NAME.fullmatch(text):
        raise ConfigError(
            f'invalid project name "{text}" ({origin})',
            hint="use lower-case letters, digits, '-' and '_', starting with a letter or digit",
        )
    return text


def _top_mapping(source: Source, data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error_at(source.locations, (key,), f"must be a mapping of {key} names")
    return value


# --- scalars --------------------------------------------------------------------------


def _text(ctx: _Ctx, value: Any, path: KeyPath) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ctx.err(path, f"must be a string, not {_kind(value)}")


def _opt_text(ctx: _Ctx, body: Mapping[str, Any], key: str, path: KeyPath) -> str | None:
    value = body.get(key)
    return None if value is None else _text(ctx, value, (*path, key))


def _bool(ctx: _Ctx, value: Any, path: KeyPath) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ctx.err(path, f"must be true or false, not {_describe(value)}")


def _int(ctx: _Ctx, value: Any, path: KeyPath, *, minimum: int = 0) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ctx.err(path, f"must be a whole number of at least {minimum}, not {_describe(value)}")
    return value


def _duration(ctx: _Ctx, value: Any, path: KeyPath) -> float:
    from rootless._units import parse_duration

    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if not isinstance(value, str):
        raise ctx.err(path, f"must be a duration like 10s or 1m30s, not {_describe(value)}")
    try:
        return parse_duration(value)
    except ConfigError:
        raise ctx.err(
            path, f'invalid duration "{value}": use a duration like 10s or 1m30s'
        ) from None


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else "a string"


def _describe(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else _kind(value)


def _texts(ctx: _Ctx, value: Any, path: KeyPath, *, single: bool = True) -> tuple[str, ...]:
    """A list of strings (or, if ``single``, one string standing for a list of one)."""
    if single and isinstance(value, str | int) and not isinstance(value, bool):
        return (str(value),)
    if not isinstance(value, list):
        raise ctx.err(path, f"must be a list of strings, not {_kind(value)}")
    return tuple(_text(ctx, v, (*path, i)) for i, v in enumerate(value))


def _argv(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...] | None:
    """``command``/``entrypoint``: a list, or a string split like a shell would (no shell)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as e:
            raise ctx.err(path, f'cannot split "{value}": {e}') from None
    return _texts(ctx, value, path, single=False)


def _pairs(
    ctx: _Ctx, value: Any, path: KeyPath, *, what: str
) -> list[tuple[str, str | None, KeyPath]]:
    """``["K=V", "K"]`` or ``{K: V}`` -> (K, V or None, path of the entry)."""
    out: list[tuple[str, str | None, KeyPath]] = []
    if isinstance(value, dict):
        for key, v in value.items():
            p = (*path, key)
            if isinstance(v, bool):
                v = "true" if v else "false"
            out.append((key, None if v is None else _text(ctx, v, p), p))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            key, sep, v = _text(ctx, item, (*path, i)).partition("=")
            if not key:
                raise ctx.err((*path, i), f'invalid {what} "{item}": use NAME=VALUE')
            out.append((key, v if sep else None, (*path, i)))
    else:
        raise ctx.err(path, f"must be a mapping or a list of NAME=VALUE, not {_kind(value)}")
    return out


def _mapping(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.err(path, f"must be a mapping, not {_kind(value)}")
    return value


def _check_keys(ctx: _Ctx, body: Mapping[str, Any], path: KeyPath, known: frozenset[str]) -> None:
    for key in body:
        if key not in known and not key.startswith("x-"):
            ctx.unknown((*path, key))


# --- services -------------------------------------------------------------------------


def _service(ctx: _Ctx, name: str, body: Any) -> Service:
    path: KeyPath = ("services", name)
    if not re.fullmatch(r"[a-zA-Z0-9._-]+", name):
        raise ctx.err(path, "invalid service name: use letters, digits, '.', '_' and '-'")
    body = {} if body is None else _mapping(ctx, body, path)
    fields: dict[str, Any] = {"name": name}
    for key, value in body.items():
        p = (*path, key)
        parse = _SERVICE_KEYS.get(key)
        if parse is not None:
            if value is not None:
                fields.update(parse(ctx, value, p))
        elif key in _UNSUPPORTED:
            ctx.unknown(p, "not supported by rootless, ignored")
        elif not key.startswith("x-"):
            ctx.unknown(p)
    if "image" not in fields and "build" not in fields:
        raise ctx.err(path, "has neither an image nor a build section")
    if fields.get("pull_policy") == "build" and "build" not in fields:
        raise ctx.err((*path, "pull_policy"), "pull_policy build needs a build section")
    fields["environment"] = _environment(ctx, body, path)
    _merge_limits(ctx, fields, path)
    mode = fields.get("network_mode")
    if mode is not None:
        if "networks" in fields:
            raise ctx.err((*path, "network_mode"), "give network_mode or networks, not both")
        fields["networks"] = ()
        shared = mode.partition(":")[0] in ("service", "container")
        for key in ("extra_hosts", "dns", "dns_search", "dns_opt"):
            if shared and fields.get(key):
                raise ctx.err(
                    (*path, key),
                    f"cannot be used with network_mode {mode}: the service shares the "
                    "/etc/hosts and /etc/resolv.conf of the container whose network it joins",
                )
        joined = mode.removeprefix("service:")
        deps = fields.get("depends_on", ())
        if joined != mode and all(d.service != joined for d in deps):
            # as in Compose: the service whose network it joins starts first
            fields["depends_on"] = (*deps, Dependency(joined))
    if "networks" not in fields:
        fields["networks"] = (ServiceNetwork(DEFAULT_NETWORK),)
    if fields.get("container_name") and fields.get("replicas", 1) > 1:
        raise ctx.err(
            (*path, "container_name"),
            f"{fields['replicas']} replicas cannot share one container_name",
        )
    return Service(**fields)


def _one(field: str, fn: Callable[[_Ctx, Any, KeyPath], Any]) -> Any:
    return lambda ctx, value, path: {field: fn(ctx, value, path)}


def _image(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    image = _text(ctx, value, path)
    if not image or image != image.strip():
        raise ctx.err(path, f'invalid image "{image}"')
    return {"image": image}


_BUILD_KEYS = frozenset(
    {"context", "dockerfile", "dockerfile_inline", "args", "target", "labels", "no_cache",
     "pull", "network", "secrets", "tags", "extra_hosts", "shm_size", "ulimits", "ssh"}
)  # fmt: skip
_BUILD_UNSUPPORTED = frozenset(
    {"cache_from", "cache_to", "platforms", "additional_contexts", "isolation", "privileged",
     "entitlements", "provenance", "sbom"}
)  # fmt: skip
_BUILD_NETWORKS = ("host", "none")


def _build(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    if isinstance(value, str):
        return {"build": Build(context=ctx.path(value))}
    body = _mapping(ctx, value, path)
    for key in body:
        if key in _BUILD_UNSUPPORTED:
            ctx.unknown((*path, key), "not supported by rootless, ignored")
        elif key not in _BUILD_KEYS and not key.startswith("x-"):
            ctx.unknown((*path, key))
    if body.get("dockerfile") is not None and body.get("dockerfile_inline") is not None:
        raise ctx.err(
            (*path, "dockerfile_inline"), "give dockerfile or dockerfile_inline, not both"
        )
    args = body.get("args")
    network = _opt_text(ctx, body, "network", path)
    if network == "default":
        network = None
    if network is not None and network not in _BUILD_NETWORKS:
        raise ctx.err(
            (*path, "network"),
            f'unsupported build network "{network}": rootless builds with host, none or default',
        )

    def flag(key: str) -> bool:
        return _bool(ctx, body.get(key, False), (*path, key))

    return {
        "build": Build(
            context=ctx.path(_opt_text(ctx, body, "context", path) or "."),
            dockerfile=_opt_text(ctx, body, "dockerfile", path),
            dockerfile_inline=_opt_text(ctx, body, "dockerfile_inline", path),
            args=tuple(
                sorted((k, v) for k, v, _ in _pairs(ctx, args, (*path, "args"), what="build arg"))
            )
            if args is not None
            else (),
            target=_opt_text(ctx, body, "target", path),
            labels=_labels(ctx, body["labels"], (*path, "labels")) if body.get("labels") else (),
            no_cache=flag("no_cache"),
            pull=flag("pull"),
            network=network,
            secrets=_build_secrets(ctx, body.get("secrets"), (*path, "secrets")),
            tags=_tags(ctx, body.get("tags"), (*path, "tags")),
            extra_hosts=_extra_hosts(ctx, body.get("extra_hosts"), (*path, "extra_hosts")),
            shm_size=_size(ctx, body.get("shm_size"), (*path, "shm_size")),
            ulimits=_ulimits(ctx, body.get("ulimits"), (*path, "ulimits")),
            ssh=_ssh(ctx, body.get("ssh"), (*path, "ssh")),
        )
    }


def _extra_hosts(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    """``["name=ip", "name:ip"]`` or ``{name: ip or [ips]}`` -> ``NAME:IP`` each."""
    from rootless.network.etcfiles import parse_add_host

    entries: list[tuple[str, str, KeyPath]] = []
    if isinstance(value, dict):
        for name, ips in value.items():
            for i, ip in enumerate(ips if isinstance(ips, list) else [ips]):
                p = (*path, name, i) if isinstance(ips, list) else (*path, name)
                entries.append((str(name), _text(ctx, ip, p), p))
    elif value is not None:
        for i, item in enumerate(_texts(ctx, value, path, single=False)):
            sep = "=" if "=" in item else ":"
            name, _, ip = item.partition(sep)
            entries.append((name, ip, (*path, i)))
    out = []
    for name, ip, p in entries:
        try:
            parse_add_host(f"{name}:{ip}")
        except ConfigError:
            raise ctx.err(p, f'invalid extra host "{name}" "{ip}": use NAME=IP') from None
        out.append(f"{name}:{ip}")
    return tuple(out)


def _size(ctx: _Ctx, value: Any, path: KeyPath) -> int | None:
    """Bytes, or a size like ``2gb`` / ``512m``."""
    from rootless._units import parse_size

    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _int(ctx, value, path, minimum=1)
    try:
        return parse_size(_text(ctx, value, path))
    except ConfigError:
        raise ctx.err(path, f'invalid size "{value}": use bytes or a size like 64m or 1g') from None


def _ulimits(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    """``{nofile: N}`` or ``{nofile: {soft: N, hard: M}}`` -> ``NAME=SOFT:HARD`` each."""
    from rootless.runtime.plan import parse_ulimit

    out = []
    for name, limit in _mapping(ctx, value or {}, path).items():
        p = (*path, name)
        if isinstance(limit, dict):
            _check_keys(ctx, limit, p, frozenset({"soft", "hard"}))
            soft = _int(ctx, limit.get("soft"), (*p, "soft"), minimum=-1)
            hard = _int(ctx, limit.get("hard"), (*p, "hard"), minimum=-1)
        else:
            soft = hard = _int(ctx, limit, p, minimum=-1)
        text = f"{name}={soft}:{hard}"
        try:
            parse_ulimit(text)
        except ConfigError as e:
            raise ctx.err(p, e.message) from None
        out.append(text)
    return tuple(out)


def _ssh(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    """``["default", "id=path"]`` or ``{id: path}`` -> ``default`` / ``ID=PATH`` (the path
    absolute, relative to the project directory)."""
    if value is None:
        return ()
    if isinstance(value, dict):
        pairs = [
            (str(k), None if v is None else _text(ctx, v, (*path, k))) for k, v in value.items()
        ]
    else:
        pairs = []
        for i, item in enumerate(_texts(ctx, value, path, single=False)):
            key, sep, val = item.partition("=")
            if not key:
                raise ctx.err((*path, i), f'invalid ssh "{item}": use default or ID=PATH')
            pairs.append((key, val if sep else None))
    return tuple(key if val is None else f"{key}={ctx.path(val)}" for key, val in pairs)


def _build_secrets(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[BuildSecret, ...]:
    """``[name]`` or ``[{source, target}]``: the target is the secret's id in the build."""
    if value is None:
        return ()
    out = []
    for p, body, source, target in _secret_refs(ctx, value, path):
        for key in ("uid", "gid", "mode"):
            if key in body:
                ctx.unknown((*p, key), "not supported for build secrets, ignored")
        if source in ctx.external_secrets:
            raise ctx.err(
                p, f'secret "{source}" is external: builds take file and environment secrets'
            )
        if not target or "/" in target or "," in target:
            raise ctx.err(p, f'invalid build secret id "{target}": use a name without / or ,')
        out.append(BuildSecret(source, target))
    return tuple(out)


def _secret_refs(
    ctx: _Ctx, value: Any, path: KeyPath
) -> list[tuple[KeyPath, Mapping[str, Any], str, str]]:
    """A service's or a build's references to top-level secrets, short (``name``) or
    long (``{source, target, uid, gid, mode}``): (key path, the long body or {}, source,
    target)."""
    if not isinstance(value, list):
        raise ctx.err(path, f"must be a list, not {_kind(value)}")
    out: list[tuple[KeyPath, Mapping[str, Any], str, str]] = []
    for i, item in enumerate(value):
        p = (*path, i)
        body: Mapping[str, Any] = {}
        if isinstance(item, dict):
            _check_keys(ctx, item, p, frozenset({"source", "target", "uid", "gid", "mode"}))
            body = item
            source = _text(ctx, item.get("source"), (*p, "source"))
            target = _opt_text(ctx, item, "target", p) or source
        else:
            source = target = _text(ctx, item, p)
        if source not in ctx.secrets:
            raise ctx.err(p, f'secret "{source}" is not declared in the top-level secrets section')
        out.append((p, body, source, target))
    return out


def _tags(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    if value is None:
        return ()
    tags = _texts(ctx, value, path, single=False)
    for i, tag in enumerate(tags):
        if not tag or tag != tag.strip():
            raise ctx.err((*path, i), f'invalid tag "{tag}"')
    return tags


_REFRESH = re.compile(r"every_(\d+)([dw])")


def refresh_seconds(policy: str | None) -> float | None:
    """How old a pulled image may get under ``daily``, ``weekly`` or ``every_DURATION``
    (``every_12h``, ``every_2d``, ``every_1w``); None for the other policies. Pure."""
    from rootless._units import parse_duration

    if policy == "daily":
        return 86400.0
    if policy == "weekly":
        return 7 * 86400.0
    if policy is None or not policy.startswith("every_"):
        return None
    m = _REFRESH.fullmatch(policy)
    if m:
        return int(m[1]) * (86400.0 if m[2] == "d" else 7 * 86400.0)
    return parse_duration(policy.removeprefix("every_"), what="pull_policy")


def _pull_policy(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    text = _text(ctx, value, path)
    policy = "missing" if text == "if_not_present" else text
    if policy not in PULL_POLICIES:
        try:
            seconds = refresh_seconds(policy)
        except ConfigError:
            seconds = None
        if not seconds:
            raise ctx.err(
                path,
                f'unknown pull_policy "{text}": use always, never, missing (if_not_present), '
                "build, daily, weekly or every_DURATION (every_12h, every_2d)",
            )
    return {"pull_policy": policy}


def _environment(
    ctx: _Ctx, body: Mapping[str, Any], path: KeyPath
) -> tuple[tuple[str, str | None], ...]:
    """env_file entries first, then ``environment`` over them; bare names from ``ctx.env``."""
    values: dict[str, str | None] = {}
    for i, file in enumerate(_env_files(ctx, body.get("env_file"), (*path, "env_file"))):
        fpath, required = file
        try:
            text = ctx.read_text(fpath)
        except ConfigError as e:
            if not required:
                continue
            raise ctx.err((*path, "env_file", i), e.message) from None
        for key, value in parse_env_file(text, file=fpath, env=ctx.env):
            values[key] = value if value is not None else ctx.env.get(key)
    env = body.get("environment")
    if env is not None:
        for key, value, _ in _pairs(ctx, env, (*path, "environment"), what="environment entry"):
            values[key] = value if value is not None else ctx.env.get(key)
    return tuple(sorted(values.items()))


def _env_files(ctx: _Ctx, value: Any, path: KeyPath) -> list[tuple[str, bool]]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ctx.err(path, f"must be a path or a list of paths, not {_kind(value)}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            p = (*path, i)
            _check_keys(ctx, item, p, frozenset({"path", "required", "format"}))
            if "path" not in item:
                raise ctx.err(p, "needs a path")
            required = _bool(ctx, item.get("required", True), (*p, "required"))
            out.append((ctx.path(_text(ctx, item["path"], (*p, "path"))), required))
        else:
            out.append((ctx.path(_text(ctx, item, (*path, i))), True))
    return out


def _env_file_field(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    return {"env_file": tuple(p for p, _ in _env_files(ctx, value, path))}


def _port_number(text: str) -> range | None:
    first, sep, last = text.partition("-")
    if not (first.isdigit() and (not sep or last.isdigit())):
        return None
    lo, hi = int(first), int(last) if sep else int(first)
    if not (1 <= lo <= hi <= 65535):
        return None
    return range(lo, hi + 1)


def _ports(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    if not isinstance(value, list):
        raise ctx.err(path, f"must be a list, not {_kind(value)}")
    out: list[Port] = []
    for i, item in enumerate(value):
        p = (*path, i)
        if isinstance(item, dict):
            out.append(_port_long(ctx, item, p))
        else:
            out.extend(_port_short(ctx, _text(ctx, item, p), p))
    return {"ports": tuple(out)}


def _port_short(ctx: _Ctx, spec: str, path: KeyPath) -> list[Port]:
    def bad(why: str) -> ConfigError:
        return ctx.err(path, f'invalid port "{spec}": {why}')

    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise bad(f'protocol "{proto}" is not tcp or udp')
    host_ip: str | None = None
    if rest.startswith("["):
        host_ip, sep, rest = rest[1:].partition("]:")
        if not sep:
            raise bad("an IPv6 address must be written as [addr]:port")
    elif rest.count(":") == 2:
        host_ip, rest = rest.split(":", 1)
    elif rest.count(":") > 2:
        raise bad("too many ':'")
    published_text, _, target_text = rest.rpartition(":")
    targets = _port_number(target_text)
    if targets is None:
        raise bad(f'"{target_text}" is not a port or a range of ports (1-65535)')
    if not published_text:
        return [Port(t, None, host_ip or None, proto) for t in targets]
    published = _port_number(published_text)
    if published is None:
        raise bad(f'"{published_text}" is not a port or a range of ports (1-65535)')
    if len(published) != len(targets):
        raise bad(f"host range has {len(published)} ports, container range {len(targets)}")
    return [Port(t, h, host_ip or None, proto) for h, t in zip(published, targets, strict=True)]


def _port_long(ctx: _Ctx, body: Mapping[str, Any], path: KeyPath) -> Port:
    known = frozenset(
        {"target", "published", "host_ip", "protocol", "mode", "name", "app_protocol"}
    )
    _check_keys(ctx, body, path, known)
    if "target" not in body:
        raise ctx.err(path, "needs a target (the container port)")
    target = _int(ctx, body["target"], (*path, "target"), minimum=1)
    if target > 65535:
        raise ctx.err((*path, "target"), f"port {target} is out of range 1-65535")
    published = None
    if body.get("published") not in (None, ""):
        text = _text(ctx, body["published"], (*path, "published"))
        ports = _port_number(text)
        if ports is None or len(ports) != 1:
            raise ctx.err((*path, "published"), f'"{text}" is not a port (1-65535)')
        published = ports[0]
    protocol = _opt_text(ctx, body, "protocol", path) or "tcp"
    if protocol not in ("tcp", "udp"):
        raise ctx.err((*path, "protocol"), f'"{protocol}" is not tcp or udp')
    return Port(target, published, _opt_text(ctx, body, "host_ip", path), protocol)


def _expose(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    out = []
    for i, item in enumerate(_texts(ctx, value, path, single=False)):
        port, _, proto = item.partition("/")
        if _port_number(port) is None or proto not in ("", "tcp", "udp"):
            raise ctx.err((*path, i), f'invalid port "{item}": use PORT[/tcp|udp] or a range')
        out.append(item)
    return {"expose": tuple(out)}


def _volumes(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    if not isinstance(value, list):
        raise ctx.err(path, f"must be a list, not {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        p = (*path, i)
        vol = _volume_long(ctx, item, p) if isinstance(item, dict) else _volume_short(ctx, item, p)
        if vol.type == "volume" and vol.source is not None and vol.source not in ctx.volumes:
            raise ctx.err(
                p, f'volume "{vol.source}" is not declared in the top-level volumes section'
            )
        out.append(vol)
    return {"volumes": tuple(out)}


def _target(ctx: _Ctx, text: str, path: KeyPath) -> str:
    if not text.startswith("/"):
        raise ctx.err(path, f'container path "{text}" is not absolute')
    return posixpath.normpath(text)


def _volume_short(ctx: _Ctx, item: Any, path: KeyPath) -> ServiceVolume:
    spec = _text(ctx, item, path)
    parts = spec.split(":")
    if len(parts) == 1:
        return ServiceVolume("volume", _target(ctx, spec, path))
    if len(parts) > 3 or not parts[0]:
        raise ctx.err(path, f'invalid volume "{spec}": use [SOURCE:]TARGET[:MODE]')
    source, target = parts[0], _target(ctx, parts[1], path)
    modes = parts[2].split(",") if len(parts) == 3 else []
    for mode in modes:
        if mode not in _VOLUME_MODES and mode not in _PROPAGATION:
            raise ctx.err(path, f'invalid volume "{spec}": unknown mode "{mode}"')
    read_only = "ro" in modes
    propagation = next((m for m in modes if m in _PROPAGATION), None)
    if source.startswith(("/", ".", "~")):
        return ServiceVolume("bind", target, ctx.path(source), read_only, propagation=propagation)
    return ServiceVolume("volume", target, source, read_only, nocopy="nocopy" in modes)


def parse_port(spec: str) -> tuple[Port, ...]:
    """A port in the short syntax of ``ports`` (``compose run -p``); a range gives several."""
    return tuple(_port_short(_option_ctx("/", {}), spec, ()))


def parse_volume(spec: str, *, directory: str, env: Mapping[str, str]) -> ServiceVolume:
    """A volume in the short syntax of ``volumes`` (``compose run -v``): host paths
    relative to ``directory``, ``~`` from ``env``."""
    return _volume_short(_option_ctx(directory, env), spec, ())


def _option_ctx(directory: str, env: Mapping[str, str]) -> _Ctx:
    """A context for a value given on the command line: no file, so errors name no line."""
    return _Ctx(
        source=Source({}, {}),
        env=env,
        directory=directory,
        warn=lambda _: None,
        read_text=lambda _: "",
        services=frozenset(),
        volumes=frozenset(),
        networks=frozenset(),
        secrets=frozenset(),
    )


def _volume_long(ctx: _Ctx, body: Mapping[str, Any], path: KeyPath) -> ServiceVolume:
    known = frozenset(
        {"type", "source", "target", "read_only", "bind", "volume", "tmpfs", "consistency"}
    )
    _check_keys(ctx, body, path, known)
    kind = _opt_text(ctx, body, "type", path)
    if kind not in ("bind", "volume", "tmpfs"):
        raise ctx.err((*path, "type"), f'must be bind, volume or tmpfs, not "{kind}"')
    if "target" not in body:
        raise ctx.err(path, "needs a target (the path in the container)")
    target = _target(ctx, _text(ctx, body["target"], (*path, "target")), (*path, "target"))
    source = _opt_text(ctx, body, "source", path)
    read_only = _bool(ctx, body.get("read_only", False), (*path, "read_only"))
    if kind == "bind":
        if not source:
            raise ctx.err(path, "a bind mount needs a source")
        opts = _mapping(ctx, body.get("bind") or {}, (*path, "bind"))
        _check_keys(ctx, opts, (*path, "bind"), _BIND_KEYS)
        prop = _opt_text(ctx, opts, "propagation", (*path, "bind"))
        if prop is not None and prop not in _PROPAGATION:
            raise ctx.err((*path, "bind", "propagation"), f'unknown propagation "{prop}"')
        create = _bool(ctx, opts.get("create_host_path", True), (*path, "bind", "create_host_path"))
        return ServiceVolume(
            "bind", target, ctx.path(source), read_only, create_host_path=create, propagation=prop
        )
    if kind == "volume":
        opts = _mapping(ctx, body.get("volume") or {}, (*path, "volume"))
        _check_keys(ctx, opts, (*path, "volume"), frozenset({"nocopy"}))
        nocopy = _bool(ctx, opts.get("nocopy", False), (*path, "volume", "nocopy"))
        return ServiceVolume("volume", target, source or None, read_only, nocopy=nocopy)
    if source:
        raise ctx.err((*path, "source"), "a tmpfs mount takes no source")
    opts = _mapping(ctx, body.get("tmpfs") or {}, (*path, "tmpfs"))
    _check_keys(ctx, opts, (*path, "tmpfs"), frozenset({"size", "mode"}))
    size = None
    if opts.get("size") is not None:
        from rootless._units import parse_size

        try:
            size = parse_size(str(opts["size"]))
        except ConfigError:
            raise ctx.err((*path, "tmpfs", "size"), f'invalid size "{opts["size"]}"') from None
    mode = None
    if opts.get("mode") is not None:
        raw = opts["mode"]
        mode = raw if isinstance(raw, int) else None
        if isinstance(raw, str) and re.fullmatch(r"0?[0-7]{1,4}", raw):
            mode = int(raw, 8)
        if mode is None:
            raise ctx.err((*path, "tmpfs", "mode"), f"invalid mode {_describe(raw)}")
    return ServiceVolume("tmpfs", target, None, read_only, tmpfs_size=size, tmpfs_mode=mode)


def _depends_on(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    deps: list[Dependency] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            deps.append(Dependency(_dep_name(ctx, _text(ctx, item, (*path, i)), (*path, i))))
    elif isinstance(value, dict):
        for name, opts in value.items():
            p = (*path, name)
            opts = _mapping(ctx, opts or {}, p)
            _check_keys(ctx, opts, p, frozenset({"condition", "restart", "required"}))
            condition = _opt_text(ctx, opts, "condition", p) or "service_started"
            if condition not in DEPENDENCY_CONDITIONS:
                raise ctx.err(
                    (*p, "condition"),
                    f'unknown condition "{condition}": use {", ".join(DEPENDENCY_CONDITIONS)}',
                )
            deps.append(
                Dependency(
                    _dep_name(ctx, name, p),
                    condition,
                    _bool(ctx, opts.get("restart", False), (*p, "restart")),
                    _bool(ctx, opts.get("required", True), (*p, "required")),
                )
            )
    else:
        raise ctx.err(path, f"must be a list or a mapping of services, not {_kind(value)}")
    return {"depends_on": tuple(deps)}


def _dep_name(ctx: _Ctx, name: str, path: KeyPath) -> str:
    if name not in ctx.services:
        raise ctx.err(path, f'depends on undefined service "{name}"')
    if name == path[1]:
        raise ctx.err(path, "a service cannot depend on itself")
    return name


def _healthcheck(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    body = _mapping(ctx, value, path)
    known = frozenset(
        {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
    )
    _check_keys(ctx, body, path, known)
    if "start_interval" in body:
        ctx.unknown((*path, "start_interval"), "not supported by rootless, ignored")
    if _bool(ctx, body.get("disable", False), (*path, "disable")):
        return {"healthcheck": Healthcheck(test=("NONE",))}
    test: tuple[str, ...] | None = None
    raw = body.get("test")
    if isinstance(raw, str):
        test = ("CMD-SHELL", raw)
    elif raw is not None:
        test = _texts(ctx, raw, (*path, "test"), single=False)
        kind = test[0] if test else ""
        if kind not in ("CMD", "CMD-SHELL", "NONE") or (kind == "CMD" and len(test) < 2) or (
            kind == "CMD-SHELL" and len(test) != 2
        ):  # fmt: skip
            raise ctx.err(
                (*path, "test"),
                'use a string, ["CMD", ARG...], ["CMD-SHELL", "LINE"] or ["NONE"]',
            )

    def seconds(key: str) -> float | None:
        return None if body.get(key) is None else _duration(ctx, body[key], (*path, key))

    retries = body.get("retries")
    return {
        "healthcheck": Healthcheck(
            test=test,
            interval=seconds("interval"),
            timeout=seconds("timeout"),
            retries=None if retries is None else _int(ctx, retries, (*path, "retries")),
            start_period=seconds("start_period"),
        )
    }


def _restart(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    from rootless.supervise.policy import parse_restart

    text = "no" if value is False else _text(ctx, value, path)
    try:
        parse_restart(text)
    except ConfigError as e:
        raise ctx.err(path, f"{e.message} ({e.hint})") from None
    return {"restart": text}


def _networks(
    ctx: _Ctx, project: str, top: Mapping[str, Any], services: tuple[Service, ...]
) -> tuple[Network, ...]:
    used = {n.name for s in services for n in s.networks}
    out = [_named_resource(ctx, Network, project, "networks", k, v) for k, v in top.items()]
    if DEFAULT_NETWORK in used and DEFAULT_NETWORK not in top:
        out.insert(0, Network(DEFAULT_NETWORK, f"{project}_{DEFAULT_NETWORK}"))
    return tuple(out)


def _service_networks(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    out = []
    if isinstance(value, list):
        items: list[tuple[str, Any, KeyPath]] = [
            (_text(ctx, v, (*path, i)), None, (*path, i)) for i, v in enumerate(value)
        ]
    elif isinstance(value, dict):
        items = [(k, v, (*path, k)) for k, v in value.items()]
    else:
        raise ctx.err(path, f"must be a list or a mapping of networks, not {_kind(value)}")
    for name, opts, p in items:
        if name not in ctx.networks:
            raise ctx.err(p, f'network "{name}" is not declared in the top-level networks section')
        opts = _mapping(ctx, opts or {}, p)
        _check_keys(ctx, opts, p, frozenset({"aliases"}))
        aliases = _texts(ctx, opts["aliases"], (*p, "aliases")) if opts.get("aliases") else ()
        out.append(ServiceNetwork(name, aliases))
    return {"networks": tuple(out)}


def _labels(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v or "") for k, v, _ in _pairs(ctx, value, path, what="label")))


def _container_name(ctx: _Ctx, value: Any, path: KeyPath) -> str:
    name = _text(ctx, value, path)
    if not _CONTAINER_NAME.fullmatch(name):
        raise ctx.err(path, f'invalid container name "{name}"')
    return name


def _stop_signal(ctx: _Ctx, value: Any, path: KeyPath) -> str:
    from rootless.runtime.signals import parse_signal

    text = _text(ctx, value, path)
    try:
        parse_signal(text)
    except ConfigError as e:
        raise ctx.err(path, e.message) from None
    return text


def _deploy(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    body = _mapping(ctx, value, path)
    for key in body:
        if key not in ("replicas", "resources") and not key.startswith("x-"):
            ctx.unknown((*path, key), "not supported by rootless, ignored")
    out: dict[str, Any] = {}
    if body.get("replicas") is not None:
        out["replicas"] = _int(ctx, body["replicas"], (*path, "replicas"))
    if body.get("resources") is not None:
        out["deploy_limits"] = _resources(ctx, body["resources"], (*path, "resources"))
    return out


_DEPLOY_LIMITS = {"memory": "mem_limit", "cpus": "cpus", "pids": "pids_limit"}


def _resources(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, tuple[Any, KeyPath]]:
    """``deploy.resources.limits`` as service fields: {field: (value, key path)}."""
    body = _mapping(ctx, value, path)
    for key in body:
        if key != "limits" and not key.startswith("x-"):
            ctx.unknown((*path, key), "not supported by rootless, ignored")
    limits = _mapping(ctx, body.get("limits") or {}, (*path, "limits"))
    out = {}
    for key, v in limits.items():
        p = (*path, "limits", key)
        field = _DEPLOY_LIMITS.get(key)
        if field is None:
            ctx.unknown(p, "not supported by rootless, ignored")
        elif v is not None:
            out[field] = (_SERVICE_KEYS[field](ctx, v, p)[field], p)
    return out


def _merge_limits(ctx: _Ctx, fields: dict[str, Any], path: KeyPath) -> None:
    """``deploy.resources.limits`` into ``mem_limit``, ``cpus`` and ``pids_limit``; two
    different values for one limit are refused, as Compose does."""
    for field, (value, p) in fields.pop("deploy_limits", {}).items():
        if fields.get(field) not in (None, value):
            raise ctx.err(p, f"differs from {field}: give the limit once, or the same value")
        fields[field] = value


def _cpus(ctx: _Ctx, value: Any, path: KeyPath) -> float:
    try:
        cpus = float(_text(ctx, value, path))
    except ValueError:
        cpus = 0.0
    if not cpus > 0:
        raise ctx.err(
            path, f"must be a number of CPUs above 0, such as 0.5, not {_describe(value)}"
        )
    return cpus


def _pids_limit(ctx: _Ctx, value: Any, path: KeyPath) -> int | None:
    limit = _int(ctx, value, path, minimum=-1)
    return limit if limit > 0 else None  # 0 and -1: unlimited


def _dns(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    import ipaddress

    servers = _texts(ctx, value, path)
    for i, server in enumerate(servers):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            p = path if isinstance(value, str | int) else (*path, i)
            raise ctx.err(p, f'"{server}" is not an IP address') from None
    return servers


def _mac_address(ctx: _Ctx, value: Any, path: KeyPath) -> str:
    from rootless.network.mode import parse_mac

    try:
        return parse_mac(_text(ctx, value, path))
    except ConfigError as e:
        raise ctx.err(path, f"{e.message} ({e.hint})") from None


def _security_opt(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    from rootless.runtime.plan import parse_security_opts

    opts = _texts(ctx, value, path, single=False)
    for i, opt in enumerate(opts):
        try:
            parse_security_opts([opt])
        except ConfigError as e:
            raise ctx.err((*path, i), f"{e.message} ({e.hint})") from None
    return opts


def _devices(ctx: _Ctx, value: Any, path: KeyPath) -> tuple[str, ...]:
    """``HOST[:CTR[:rwm]]``, a CDI name, or ``{source, target, permissions}``."""
    from rootless.devices import is_cdi_name, parse_device

    if not isinstance(value, list):
        raise ctx.err(path, f"must be a list, not {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        p = (*path, i)
        if isinstance(item, dict):
            _check_keys(ctx, item, p, frozenset({"source", "target", "permissions"}))
            source = _text(ctx, item.get("source"), (*p, "source"))
            target = _opt_text(ctx, item, "target", p) or source
            spec = f"{source}:{target}:{_opt_text(ctx, item, 'permissions', p) or 'rwm'}"
        else:
            spec = _text(ctx, item, p)
        if not is_cdi_name(spec):
            try:
                parse_device(spec)
            except ConfigError as e:
                raise ctx.err(p, e.message + (f" ({e.hint})" if e.hint else "")) from None
        out.append(spec)
    return tuple(out)


_NETWORK_MODES = (
    "none, host, slirp4netns[:OPTIONS], pasta[:OPTIONS], service:NAME or container:NAME"
)


def _network_mode(ctx: _Ctx, value: Any, path: KeyPath) -> str:
    from rootless.network.mode import parse_network

    mode = _text(ctx, value, path)
    kind, _, name = mode.partition(":")
    if kind == "service":
        if name not in ctx.services:
            raise ctx.err(path, f'joins the network of undefined service "{name}"')
        if name == path[1]:
            raise ctx.err(path, "a service cannot join its own network")
        return mode
    try:
        parsed = parse_network(mode)
    except ConfigError as e:
        raise ctx.err(path, e.message) from None
    if parsed.kind == "network":
        raise ctx.err(
            path,
            f'unsupported network_mode "{mode}": use {_NETWORK_MODES}, or networks: '
            "for the project's networks",
        )
    return mode


_LOG_DRIVERS = ("json-file", "k8s-file")  # both: the k8s-file log rootless keeps


def _logging(ctx: _Ctx, value: Any, path: KeyPath) -> Logging:
    from rootless.supervise.logfile import parse_log_opts

    body = _mapping(ctx, value, path)
    _check_keys(ctx, body, path, frozenset({"driver", "options"}))
    driver = _opt_text(ctx, body, "driver", path)
    if driver is not None and driver not in _LOG_DRIVERS:
        ctx.unknown(
            (*path, "driver"),
            f'driver "{driver}" is not supported by rootless, ignored: the output goes '
            "to the container's k8s-file log",
        )
        driver = None
    options = []
    raw = body.get("options")
    for key, v, p in _pairs(ctx, raw, (*path, "options"), what="log option") if raw else ():
        if key not in ("max-size", "max-file"):
            ctx.unknown(p, "not supported by rootless, ignored")
            continue
        try:
            parse_log_opts([f"{key}={v}"])
        except ConfigError:
            raise ctx.err(p, f'invalid {key} "{v}"') from None
        options.append((key, v or ""))
    return Logging(driver, tuple(sorted(options)))


def _secrets(ctx: _Ctx, value: Any, path: KeyPath) -> dict[str, Any]:
    out = []
    for p, body, source, target in _secret_refs(ctx, value, path):
        stored = source in ctx.stored_secrets
        for key in ("uid", "gid", "mode"):
            if key in body and not (stored and key == "mode"):
                # a host file is bound as it is, as Compose does; a stored secret's
                # copy belongs to the user (container root)
                why = "stored secrets" if stored else "secrets from a file"
                ctx.unknown((*p, key), f"not supported for {why}, ignored")
        mode = _file_mode(ctx, body["mode"], (*p, "mode")) if stored and "mode" in body else None
        path_in = target if target.startswith("/") else f"/run/secrets/{target}"
        if "," in path_in:
            raise ctx.err(p, f'invalid secret target "{target}": a path without ","')
        out.append(ServiceSecret(source, posixpath.normpath(path_in), mode))
    return {"secrets": tuple(out)}


def _named_resource(
    ctx: _Ctx, cls: Any, project: str, section: str, key: str, body: Any
) -> Any:  # fmt: skip
    """A top-level volume or network: its engine name is ``PROJECT_KEY`` unless named."""
    path: KeyPath = (section, key)
    body = {} if body is None else _mapping(ctx, body, path)
    known = {"name", "external", "driver", "labels", "driver_opts"}
    if section == "networks":
        known |= {"internal", "ipam", "enable_ipv6", "attachable"}
    _check_keys(ctx, body, path, frozenset(known))
    external = _bool(ctx, body.get("external", False), (*path, "external"))
    name = _opt_text(ctx, body, "name", path) or (key if external else f"{project}_{key}")
    fields: dict[str, Any] = {
        "key": key,
        "name": name,
        "external": external,
        "driver": _opt_text(ctx, body, "driver", path),
        "labels": _labels(ctx, body["labels"], (*path, "labels")) if body.get("labels") else (),
    }
    if section == "networks":
        fields["internal"] = _bool(ctx, body.get("internal", False), (*path, "internal"))
    return cls(**fields)


def _secret(ctx: _Ctx, project: str, key: str, body: Any) -> Secret:
    """``file:``, ``environment:`` (stored as ``PROJECT_KEY`` unless ``name:``) or
    ``external: true`` (the stored secret ``name:``, else ``KEY``)."""
    path: KeyPath = ("secrets", key)
    body = _mapping(ctx, body, path)
    _check_keys(ctx, body, path, frozenset({"file", "external", "name", "environment"}))
    kinds = [k for k in ("file", "environment", "external") if body.get(k) not in (None, False)]
    if len(kinds) != 1:
        raise ctx.err(path, "needs one of file, environment and external: true")
    name = _opt_text(ctx, body, "name", path)
    if kinds == ["file"]:
        return Secret(key, file=ctx.path(_text(ctx, body["file"], (*path, "file"))))
    if kinds == ["external"]:
        _bool(ctx, body["external"], (*path, "external"))
        return Secret(key, external=True, name=name or key)
    variable = _text(ctx, body["environment"], (*path, "environment"))
    return Secret(
        key, environment=variable, name=name or f"{project}_{key}", value=ctx.env.get(variable)
    )


def _file_mode(ctx: _Ctx, raw: Any, path: KeyPath) -> int:
    """``0440`` (YAML reads it as octal), or the strings ``"0440"``, ``"0o440"``."""
    mode = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and re.fullmatch(r"(0o?)?[0-7]{1,3}", raw):
        mode = int(raw.removeprefix("0o"), 8)
    if mode is None or not 0 <= mode <= 0o777:
        raise ctx.err(path, f"invalid mode {_describe(raw)}: use an octal file mode such as 0440")
    return mode


_SERVICE_KEYS: dict[str, Callable[[_Ctx, Any, KeyPath], dict[str, Any]]] = {
    "image": _image,
    "build": _build,
    "command": _one("command", _argv),
    "entrypoint": _one("entrypoint", _argv),
    "environment": lambda ctx, value, path: {},  # read with env_file in _environment
    "env_file": _env_file_field,
    "ports": _ports,
    "expose": _expose,
    "volumes": _volumes,
    "tmpfs": _one("tmpfs", _texts),
    "depends_on": _depends_on,
    "healthcheck": _healthcheck,
    "restart": _restart,
    "networks": _service_networks,
    "hostname": _one("hostname", _text),
    "working_dir": _one("working_dir", _text),
    "user": _one("user", _text),
    "cap_add": _one("cap_add", lambda c, v, p: _texts(c, v, p, single=False)),
    "cap_drop": _one("cap_drop", lambda c, v, p: _texts(c, v, p, single=False)),
    "read_only": _one("read_only", _bool),
    "init": _one("init", _bool),
    "stop_signal": _one("stop_signal", _stop_signal),
    "stop_grace_period": _one("stop_grace_period", _duration),
    "labels": _one("labels", _labels),
    "container_name": _one("container_name", _container_name),
    "deploy": _deploy,
    "scale": _one("replicas", _int),
    "profiles": _one("profiles", lambda c, v, p: _texts(c, v, p, single=False)),
    "secrets": _secrets,
    "pull_policy": _pull_policy,
    "extra_hosts": _one("extra_hosts", _extra_hosts),
    "dns": _one("dns", _dns),
    "dns_search": _one("dns_search", _texts),
    "dns_opt": _one("dns_opt", _texts),
    "ulimits": _one("ulimits", _ulimits),
    "shm_size": _one("shm_size", _size),
    "mac_address": _one("mac_address", _mac_address),
    "tty": _one("tty", _bool),
    "stdin_open": _one("stdin_open", _bool),
    "security_opt": _one("security_opt", _security_opt),
    "devices": _one("devices", _devices),
    "privileged": _one("privileged", _bool),
    "mem_limit": _one("mem_limit", _size),
    "cpus": _one("cpus", _cpus),
    "pids_limit": _one("pids_limit", _pids_limit),
    "network_mode": _one("network_mode", _network_mode),
    "logging": _one("logging", _logging),
}
