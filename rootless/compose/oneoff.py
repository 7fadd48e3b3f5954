"""``compose run``: a one-off container of a service (pure).

As in Compose, the user's options change a copy of the service (command,
entrypoint, environment, labels, user, working directory, volumes, ports), and
the container is made from that copy as :mod:`rootless.compose.to_run` makes a
replica. What sets it apart: it is named ``PROJECT-SERVICE-run-ID``, marked
``oneoff`` (label ``com.docker.compose.oneoff=True`` and in its ``compose``
option) so that ``up``/``start``/``stop`` leave it alone and ``down`` removes it,
publishes the service's ports only with ``--service-ports``, and takes no DNS
alias unless ``--use-aliases``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

import attrs

from rootless.compose.model import parse_port, parse_volume
from rootless.compose.to_run import LABEL_ONEOFF, ServiceRun, service_run
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.compose.model import Port, Project, ServiceVolume


class OneOff(NamedTuple):
    """What ``compose run`` was asked, besides the service."""

    command: tuple[str, ...] = ()  # empty: the service's command
    entrypoint: str | None = None  # split into words as a shell would ("" resets it)
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    user: str | None = None
    workdir: str | None = None
    volumes: tuple[str, ...] = ()  # the short syntax of the service's volumes
    publish: tuple[str, ...] = ()  # the short syntax of the service's ports
    service_ports: bool = False
    use_aliases: bool = False
    name: str | None = None
    rm: bool = False
    detach: bool = False
    tty: bool = False


def one_off_project(
    project: Project, service: str, request: OneOff, environ: Mapping[str, str]
) -> Project:
    """The project with ``service`` changed as ``request`` asks; bad ``-p``/``-v``
    values are errors here, before anything starts."""
    s = project.service(service)
    volumes = tuple(_volume(project, spec, environ) for spec in request.volumes)
    targets = {v.target for v in volumes}
    ports: tuple[Port, ...] = tuple(p for spec in request.publish for p in _ports(spec))
    changed = attrs.evolve(
        s,
        command=request.command or s.command,
        entrypoint=s.entrypoint if request.entrypoint is None else _words(request.entrypoint),
        environment=tuple({**dict(s.environment), **dict(request.env)}.items()),
        labels=tuple({**dict(s.labels), **dict(request.labels)}.items()),
        user=request.user or s.user,
        working_dir=request.workdir or s.working_dir,
        # a -v on a target the service mounts too replaces it, as files merge
        volumes=(*(v for v in s.volumes if v.target not in targets), *volumes),
        ports=(*(s.ports if request.service_ports else ()), *ports),
        restart=None if request.rm else s.restart,
        # the caller has started and waited for the dependencies (or was told not to)
        depends_on=(),
        container_name=None,
        replicas=1,
    )
    services = tuple(changed if x.name == service else x for x in project.services)
    return attrs.evolve(project, services=services)


def one_off_run(project: Project, service: str, request: OneOff, suffix: str) -> ServiceRun:
    """How to create the one-off container of ``service`` in ``project`` (as
    :func:`one_off_project` made it); ``suffix`` ends its default name."""
    run = service_run(project, service, 1)
    options = run.options
    extra = dict(options.extra)
    extra["labels"] = {**extra["labels"], LABEL_ONEOFF: "True"}
    extra["compose"] = {**extra["compose"], "oneoff": True}
    networks = run.networks
    if not request.use_aliases:  # other containers must not reach it by the service's name
        networks = tuple(n._replace(aliases=()) for n in networks)
    options = options._replace(
        name=request.name or f"{project.name}-{service}-run-{suffix}",
        rm=request.rm,
        detach=request.detach,
        interactive=not request.detach,
        tty=request.tty and not request.detach,
        extra=extra,
    )
    return run._replace(options=options, networks=networks)


def _words(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as e:
        raise ConfigError(
            f'invalid --entrypoint "{text}": {str(e).lower()}',
            hint="close the quotes, or quote the words",
        ) from None


def _ports(spec: str) -> tuple[Port, ...]:
    try:
        return parse_port(spec)
    except ConfigError as e:
        raise ConfigError(
            f"compose run --publish: {e.message}",
            hint="use [IP:][HOST:]CONTAINER[/tcp|udp], e.g. -p 8080:80 or -p 127.0.0.1:8080:80",
        ) from None


def _volume(project: Project, spec: str, environ: Mapping[str, str]) -> ServiceVolume:
    hint = (
        "use [SOURCE:]TARGET[:ro]: SOURCE a host path (/abs, ./relative to "
        f"{project.directory}, ~/...) or a volume of the top-level volumes, TARGET absolute"
    )
    try:
        volume = parse_volume(spec, directory=project.directory, env=environ)
    except ConfigError as e:
        which = "" if f'"{spec}"' in e.message else f' "{spec}"'
        raise ConfigError(f"compose run --volume{which}: {e.message}", hint=hint) from None
    declared = {v.key for v in project.volumes}
    if volume.type == "volume" and volume.source and volume.source not in declared:
        raise ConfigError(
            f'compose run --volume "{spec}": volume "{volume.source}" is not declared in '
            "the top-level volumes section",
            hint=f"declare it under volumes: in the compose file, or write a host path "
            f"(./{volume.source} or an absolute path) to bind a directory",
        )
    return volume
