"""A compose project on the engine: up, down, start, stop, and finding its containers.

The CLI creates the containers; one detached process per project, the project
supervisor (``rootless.supervise.project``), starts them in dependency order and
owns them all in one trio nursery. The project is the set of container records
whose ``compose`` option names it (``to_run`` puts it there, with the service, the
replica number and the configuration hash), so any later command finds it again
from the records alone, and a repeated ``up`` recreates exactly the containers
whose hash changed (and restarts the running dependents that declare
``restart: true`` on a recreated service). ``stop`` and ``rm`` act on the
containers as on any other.

Services join the project's user networks with their service name (and
aliases) as DNS names, also those that publish ports (the network's holder
forwards them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootless._paths import StoragePaths
from rootless.compose.plan import (
    container_names,
    restart_dependents,
    select_services,
    stop_order,
)
from rootless.compose.to_run import (
    LABEL_PROJECT,
    ServiceRun,
    image_name,
    service_limits,
    service_run,
)
from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.compose.model import Dependency, Project, Service
    from rootless.compose.model import Secret as ComposeSecret
    from rootless.compose.oneoff import OneOff
    from rootless.container.records import ContainerRecord, ContainerStore
    from rootless.secrets import SecretStore
    from rootless.supervise.project_client import ProjectSupervisor, Spawned, StartEntry

Report = Callable[[str], None]
HEALTH_TIMEOUT = 300.0  # seconds a dependent waits for service_healthy / completed


def _quiet(_: str) -> None:
    pass


def compose_info(record: ContainerRecord) -> dict[str, Any]:
    """The ``compose`` option of a record (project, service, number, config_hash), or {}."""
    info = record.options.get("compose")
    return dict(info) if isinstance(info, dict) else {}


def project_records(project: str, containers: ContainerStore) -> list[ContainerRecord]:
    """The containers of project ``project``, by service and replica number."""
    found = [r for r in containers.list() if compose_info(r).get("project") == project]
    return sorted(found, key=lambda r: (compose_info(r)["service"], compose_info(r)["number"]))


def service_records(
    project: str, service: str, containers: ContainerStore
) -> list[ContainerRecord]:
    """The replicas of ``service`` (not its one-off ``compose run`` containers)."""
    return [
        r
        for r in project_records(project, containers)
        if compose_info(r)["service"] == service and not compose_info(r).get("oneoff")
    ]


# -- resources -------------------------------------------------------------------------


def ensure_resources(project: Project, services: Sequence[str], paths: StoragePaths) -> None:
    """Create the project networks and named volumes ``services`` use (external ones
    must exist already)."""
    from rootless.network.netstore import NetworkStore
    from rootless.volumes import create_volume, volume_store

    nets = NetworkStore(paths)
    label = {LABEL_PROJECT: project.name}
    for key in dict.fromkeys(n.name for s in services for n in project.service(s).networks):
        net = project.network(key)
        if net.external:
            nets.get(net.name)  # fails, naming the network, when it is missing
        elif not nets.exists(net.name):
            nets.create(net.name, internal=net.internal, labels={**dict(net.labels), **label})
    keys = {v.source for s in services for v in project.service(s).volumes if v.type == "volume"}
    vols = volume_store(paths)
    for vol in project.volumes:
        if vol.key not in keys:
            continue
        if vol.external:
            if vols.find(vol.name) is None:
                raise ConfigError(
                    f'external volume "{vol.name}" not found',
                    hint=f"create it first: rootless volume create {vol.name}",
                )
        else:
            create_volume(paths, vol.name, labels={**dict(vol.labels), **label},
                          ignore_existing=True)  # fmt: skip


def run_options(run: ServiceRun, report: Report = _quiet) -> Any:
    """The ``RunOptions`` to create: on the first network with the service's names as
    aliases (its ports are published from there)."""
    options = run.options
    net = options.network
    if net is None or not run.networks:
        return options
    first, *others = run.networks
    aliases = ",".join(f"alias={a}" for a in dict.fromkeys(first.aliases))
    mode = f"{first.network}:{aliases}" if aliases else first.network
    options = options._replace(network=net._replace(mode=mode))
    if others and not net.publish:
        # the other networks, connected at every start (as `network connect` leaves them)
        more = {a.network: {"aliases": list(dict.fromkeys(a.aliases)), "ip": None} for a in others}
        options = options._replace(extra={**options.extra, "connected_networks": more})
    return options


# -- up --------------------------------------------------------------------------------


def up(
    project: Project,
    requested: Sequence[str] = (),
    *,
    profiles: Sequence[str] = (),
    no_deps: bool = False,
    force_recreate: bool = False,
    build: bool = False,
    pull: str | None = None,
    paths: StoragePaths | None = None,
    report: Report = _quiet,
    health_timeout: float = HEALTH_TIMEOUT,
    spare: Spawned | None = None,
) -> tuple[str, ...]:
    """Create the services' containers (with their dependencies'; after pulling and
    building their images, :func:`ensure_images`), then have the project supervisor
    start them in dependency order; the names of the project's containers for them, in
    start order. ``spare``: a supervisor the caller spawned early, used if none runs
    for the project."""
    from rootless.engine.containers import containers_store
    from rootless.supervise.project_client import ProjectSupervisor

    paths = paths or StoragePaths.from_env()
    names = select_services(
        project, requested, profiles=profiles, no_deps=no_deps, warn=_warner(report)
    )
    for service in names:
        _check_limits(project.service(service))
    images = ensure_images(project, names, paths, build=build, pull=pull, report=report)
    ensure_resources(project, names, paths)
    networks = dict.fromkeys(project.network(n.name).name for s in names
                             for n in project.service(s).networks)  # fmt: skip
    # Found or spawned before the containers are made: a new supervisor starts up, and
    # the networks' holders start, meanwhile.
    with ProjectSupervisor(project.name, paths, tuple(networks), spare) as supervisor:
        containers = containers_store(paths)
        made: list[tuple[ContainerRecord, ServiceRun]] = []
        bounced: set[str] = set()  # services (re)created or restarted by this up
        for service in names:
            # a container joining a recreated (or restarted) one's network needs the new one
            joined = (project.service(service).network_mode or "").removeprefix("service:")
            ours, fresh = _create_service(
                project, service, containers, paths, force_recreate or joined in bounced,
                images.get(service), report,
            )  # fmt: skip
            depends_on = project.service(service).depends_on
            if any(d.restart and d.service in bounced for d in depends_on):
                # restart: true: the running ones are stopped now and started by the
                # supervisor once the new dependency's condition holds.
                for record, _ in ours:
                    _stop_record(record, paths, report, "Restarting")
                fresh = True
            if fresh:
                bounced.add(service)
            made += ours
        _start(project, [r for r, _ in made], supervisor, containers, paths, report,
               health_timeout)  # fmt: skip
    return tuple(record.name for record, _ in made)


def _check_limits(service: Service) -> None:
    """Resource limits fail ``up`` before anything is made, naming the service (they
    need cgroup delegation, as with Podman on cgroup v2), never ignored."""
    from rootless.engine.containers import refuse_limits

    limits = service_limits(service)
    if limits:
        keys = ", ".join(k for k in ("mem_limit", "cpus", "pids_limit") if getattr(service, k))
        refuse_limits(limits, f'the limits of service "{service.name}" ({keys})')


def ensure_images(
    project: Project,
    services: Sequence[str],
    paths: StoragePaths,
    *,
    build: bool = False,
    pull: str | None = None,
    report: Report = _quiet,
) -> dict[str, str]:
    """Give ``services`` their images as Compose does: first the pulls their pull
    policies ask for (``pull`` overrides them all), then the builds (every service with
    ``build:`` with ``build`` or policy ``build``, else those whose image is still
    missing, also after a failed pull). A service that may not pull and cannot build
    fails before any of that when its image is missing. The ID of each service's image
    now (a new one recreates the service's containers, as in Compose)."""
    import time

    from rootless.compose import images

    names = {s: image_name(project, project.service(s)) for s in services}
    local = images.present_images(names.values(), paths)
    images.check_never(project, services, local, policy=pull)
    steps = images.up_pull_steps(
        project, services, local, policy=pull, build=build, now=time.time()
    )
    for step in images.run_steps(steps, paths):
        report(f"Service {step.service}  Pull failed, building the image instead")
    if steps:
        local = images.present_images(names.values(), paths)
    builds = images.up_build_steps(project, services, local, policy=pull, build=build)
    images.run_steps(builds, paths)
    if builds:
        local = images.present_images(names.values(), paths)
    return {s: local[name].id for s, name in names.items() if name in local}


def _start(
    project: Project,
    records: Sequence[ContainerRecord],
    supervisor: ProjectSupervisor,
    containers: ContainerStore,
    paths: StoragePaths,
    report: Report,
    health_timeout: float,
) -> None:
    """Hand the containers that do not run to the supervisor, each with the
    dependency conditions it must wait for."""
    from rootless.engine.lifecycle import get

    entries: list[StartEntry] = []
    for record in records:
        if get(record.id, containers).status in ("running", "restarting"):
            report(f"Container {record.name}  Running")
            continue
        service = project.service(compose_info(record)["service"])
        after = [
            {
                "service": dep.service,
                "condition": dep.condition,
                "cids": [r.id for r in service_records(project.name, dep.service, containers)],
            }
            for dep in service.depends_on
        ]
        entries.append({"cid": record.id, "name": record.name, "after": after})
    if not entries:
        return

    def progress(message: dict[str, Any]) -> None:
        report(f"Container {message['name']}  {message['event']}")

    supervisor.start(entries, timeout=health_timeout, progress=progress)


def _create_service(
    project: Project,
    service: str,
    containers: ContainerStore,
    paths: StoragePaths,
    force_recreate: bool,
    image_id: str | None,
    report: Report,
) -> tuple[list[tuple[ContainerRecord, ServiceRun]], bool]:
    """The service's containers: kept when unchanged (configuration and image ID),
    else (re)created; and whether any was (re)created."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import create

    wanted = container_names(project, service)
    for old in service_records(project.name, service, containers):
        if old.name not in wanted:  # scaled down, or renamed by container_name
            lifecycle.rm(old.id, force=True, paths=paths)
            report(f"Container {old.name}  Removed")
    out = []
    fresh = False
    for number, name in enumerate(wanted, 1):
        run = service_run(project, service, number)
        digest = run.options.extra["compose"]["config_hash"]
        current = _find(name, containers)
        if current is not None and compose_info(current).get("project") != project.name:
            raise ConfigError(
                f'cannot create container {name} for service "{service}": the name is '
                "in use by a container outside the project",
                hint=f"remove or rename it: rootless rm -f {name}",
            )
        if current is not None and (
            force_recreate
            or compose_info(current).get("config_hash") != digest
            or (image_id is not None and current.image_id != image_id)
        ):
            lifecycle.rm(current.id, force=True, paths=paths)
            report(f"Container {name}  Recreated")
            current = None
        if current is None:
            _prepare_secrets(project, service, paths)
            for directory in run.host_dirs:
                Path(directory).mkdir(parents=True, exist_ok=True)
            current = create(run_options(run, report), paths).record
            report(f"Container {name}  Created")
            fresh = True
        out.append((current, run))
    return out, fresh


def _prepare_secrets(project: Project, service: str, paths: StoragePaths) -> None:
    """A file secret must exist; an environment secret is stored (again: the variable
    may have changed) for ``create`` to copy; an external one must be stored already."""
    import os

    from rootless.secrets import SecretNotFound, secret_store

    store = secret_store(paths)
    for used in project.service(service).secrets:
        secret = project.secret(used.source)
        what = f'cannot give secret "{secret.key}" to service "{service}"'
        if secret.file is not None:
            if not os.path.isfile(secret.file):
                raise ConfigError(
                    f"{what}: {secret.file} does not exist or is not a file",
                    hint="create the file, or fix the file: of the secret in the top-level secrets",
                )
        elif secret.environment is not None:
            _store_environment_secret(store, project, secret, secret.value_of(what), what)
        else:
            try:
                store.find(secret.name or "")
            except SecretNotFound:
                raise ConfigError(
                    f'{what}: it is external, and no secret "{secret.name}" is stored',
                    hint=f"create it first: rootless secret create {secret.name} FILE",
                ) from None


def _store_environment_secret(
    store: SecretStore, project: Project, secret: ComposeSecret, value: bytes, what: str
) -> None:
    """Store (again: the variable may have changed) the value of an environment secret
    under its name, labelled with the project; never over a secret made otherwise."""
    from rootless.secrets import SecretNotFound

    name = secret.name or ""
    try:
        old = store.find(name)
    except SecretNotFound:
        old = None
    if old is not None and old.name == name and (LABEL_PROJECT, project.name) not in old.labels:
        raise ConfigError(
            f'{what}: a secret "{name}" is stored already, not made by this project',
            hint=f"give the secret another name: (name: in the top-level secrets), or use it "
            f"with external: true, or remove it: rootless secret rm {name}",
        )
    store.create(name, value, replace=True, labels={LABEL_PROJECT: project.name})


def _warner(report: Report) -> Report:
    return lambda message: report(f"WARN: {message}")


def _find(name: str, containers: ContainerStore) -> ContainerRecord | None:
    from rootless.container.records import NoSuchContainer

    try:
        return containers.get(name)
    except NoSuchContainer:
        return None


def wait_condition(
    project: Project,
    dep: Dependency,
    containers: ContainerStore,
    timeout: float = HEALTH_TIMEOUT,
    report: Report = _quiet,
) -> None:
    """Block until every container of ``dep.service`` meets ``dep.condition``."""
    from rootless.engine.lifecycle import get
    from rootless.supervise.conditions import condition_met, met_word, not_met_in_time

    if dep.condition == "service_started":
        return
    deadline = time.monotonic() + timeout
    for record in service_records(project.name, dep.service, containers):
        report(f"Container {record.name}  Waiting")
        while not condition_met(get(record.id, containers), dep.condition, dep.service):
            if time.monotonic() > deadline:
                raise not_met_in_time(record, dep.condition, timeout)
            time.sleep(0.1)
        report(f"Container {record.name}  {met_word(dep.condition)}")


def run_one_off(
    project: Project,
    service: str,
    request: OneOff,
    *,
    no_deps: bool = False,
    build: bool = False,
    profiles: Sequence[str] = (),
    pull: str | None = None,
    paths: StoragePaths | None = None,
    report: Report = _quiet,
) -> int:
    """``compose run``: start the dependencies (not with ``no_deps``), then run a new
    container of the service changed as ``request`` asks: in the foreground (its exit
    code), or with ``request.detach`` under the project supervisor (its ID printed)."""
    import os

    from rootless.compose.oneoff import one_off_project, one_off_run
    from rootless.engine.containers import containers_store, create, run

    paths = paths or StoragePaths.from_env()
    # Every option is checked before anything starts.
    altered = one_off_project(project, service, request, os.environ)
    plan = one_off_run(altered, service, request, os.urandom(6).hex())
    deps = select_services(project, [service], profiles=profiles, warn=_warner(report))[:-1]
    if deps and not no_deps:
        up(project, deps, profiles=profiles, pull=pull, paths=paths, report=report)
        containers = containers_store(paths)
        for dep in project.service(service).depends_on:
            if dep.service in deps:
                wait_condition(project, dep, containers, report=report)
    ensure_images(project, [service], paths, build=build, pull=pull, report=report)
    ensure_resources(altered, [service], paths)
    _prepare_secrets(altered, service, paths)
    for directory in plan.host_dirs:
        Path(directory).mkdir(parents=True, exist_ok=True)
    options = run_options(plan)
    if not request.detach:
        return run(options, paths)
    from rootless.supervise.project_client import ProjectSupervisor

    networks = [attachment.network for attachment in plan.networks]
    with ProjectSupervisor(project.name, paths, networks) as supervisor:
        record = create(options, paths).record
        containers = containers_store(paths)
        _start(altered, [record], supervisor, containers, paths, report, HEALTH_TIMEOUT)
    print(record.id)
    return 0


# -- start, stop, down -----------------------------------------------------------------


def ordered_records(
    project: Project,
    containers: ContainerStore,
    services: Sequence[str] = (),
    *,
    one_off: bool = True,
) -> list[ContainerRecord]:
    """The project's containers (of ``services``, or all; ``one_off``: with the
    ``compose run`` ones) in stop order; containers of services no longer in the file
    (orphans) first."""
    records = project_records(project.name, containers)
    if not one_off:
        records = [r for r in records if not compose_info(r).get("oneoff")]
    known = {s.name for s in project.services}
    chosen = set(services) or {compose_info(r)["service"] for r in records}
    rank = {name: i for i, name in enumerate(stop_order(project, known & chosen))}
    picked = [r for r in records if compose_info(r)["service"] in chosen]
    return sorted(picked, key=lambda r: rank.get(compose_info(r)["service"], -1))


def stop(
    project: Project,
    services: Sequence[str] = (),
    *,
    paths: StoragePaths | None = None,
    timeout: float | None = None,
    report: Report = _quiet,
    one_off: bool = False,
) -> list[str]:
    """Stop the services' containers (``one_off``: the ``compose run`` ones too) in
    reverse dependency order, each with its grace period."""
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    out = []
    for record in ordered_records(project, containers_store(paths), services, one_off=one_off):
        _stop_record(record, paths, report, timeout=timeout)
        out.append(record.name)
    return out


def _stop_record(
    record: ContainerRecord,
    paths: StoragePaths,
    report: Report,
    word: str = "Stopped",
    timeout: float | None = None,
) -> None:
    from rootless.engine import lifecycle

    if record.status in ("running", "restarting"):
        lifecycle.stop(record.id, timeout=timeout, paths=paths)
        report(f"Container {record.name}  {word}")


def kill(
    project: Project,
    services: Sequence[str] = (),
    *,
    paths: StoragePaths | None = None,
    report: Report = _quiet,
) -> None:
    """SIGKILL every running container of ``services`` (or all) at once, waiting for
    none: a second Ctrl-C of foreground ``up``. A container waiting to be restarted
    is stopped for good."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store
    from rootless.errors import ContainerStartError

    paths = paths or StoragePaths.from_env()
    containers = containers_store(paths)
    for record in ordered_records(project, containers, services, one_off=False):
        status = lifecycle.get(record.id, containers).status
        if status == "restarting":
            lifecycle.stop(record.id, timeout=0, paths=paths)
        elif status == "running":
            try:
                lifecycle.kill(record.id, paths=paths)
            except ContainerStartError:  # it exited meanwhile
                continue
        else:
            continue
        report(f"Container {record.name}  Killed")


def restart(
    project: Project,
    services: Sequence[str] = (),
    *,
    paths: StoragePaths | None = None,
    timeout: float | None = None,
    report: Report = _quiet,
) -> None:
    """Stop, then start ``services`` (or all) and the services that depend on them
    with ``restart: true``."""
    chosen = restart_dependents(project, services) if services else ()
    stop(project, chosen, paths=paths, timeout=timeout, report=report)
    _start_existing(project, chosen, paths, report)


def start(
    project: Project,
    services: Sequence[str] = (),
    *,
    profiles: Sequence[str] = (),
    paths: StoragePaths | None = None,
    report: Report = _quiet,
    health_timeout: float = HEALTH_TIMEOUT,
) -> list[str]:
    """Start the project's existing containers of ``services`` (or all) and of their
    dependencies, as ``up -d`` starts them."""
    chosen = (
        select_services(project, services, profiles=profiles, warn=_warner(report))
        if services
        else ()
    )
    return _start_existing(project, chosen, paths, report, health_timeout)


def _start_existing(
    project: Project,
    services: Sequence[str],
    paths: StoragePaths | None,
    report: Report,
    health_timeout: float = HEALTH_TIMEOUT,
) -> list[str]:
    """Start the existing containers of ``services`` (or all) under the project
    supervisor (spawned when none runs, as after ``stop``), in dependency order with
    their ``depends_on`` conditions waited for (each start connects a container to its
    other networks again: they are in its record)."""
    from rootless.engine.containers import containers_store
    from rootless.supervise.project_client import ProjectSupervisor

    paths = paths or StoragePaths.from_env()
    containers = containers_store(paths)
    records = list(reversed(ordered_records(project, containers, services, one_off=False)))
    known = {s.name for s in project.services}
    made = [(r, _current_run(project, r)) for r in records if compose_info(r)["service"] in known]
    networks = dict.fromkeys(a.network for _, run in made if run for a in run.networks)
    with ProjectSupervisor(project.name, paths, tuple(networks)) as supervisor:
        _start(project, [r for r, _ in made], supervisor, containers, paths, report,
               health_timeout)  # fmt: skip
    return [r.name for r in records]


def _current_run(project: Project, record: ContainerRecord) -> ServiceRun | None:
    """How the file makes this replica now (for its networks); None for a replica
    the file no longer has."""
    info = compose_info(record)
    try:
        return service_run(project, info["service"], int(info["number"]))
    except ConfigError:
        return None


def down(
    project: Project,
    *,
    volumes: bool = False,
    rmi: str | None = None,
    paths: StoragePaths | None = None,
    timeout: float | None = None,
    report: Report = _quiet,
) -> None:
    """Stop and remove the project's containers, then its networks (and with ``volumes``
    its named volumes, with ``rmi`` its images: ``all`` or ``local``); external
    networks and volumes stay."""
    from rootless.engine import lifecycle
    from rootless.engine.containers import containers_store

    paths = paths or StoragePaths.from_env()
    stop(project, paths=paths, timeout=timeout, report=report, one_off=True)
    for record in ordered_records(project, containers_store(paths)):
        lifecycle.rm(record.id, force=True, paths=paths)
        report(f"Container {record.name}  Removed")
    _remove_networks((n.name for n in project.networks if not n.external), paths, report)
    _remove_secrets(project, paths, report)
    if volumes:
        from rootless.volumes import remove_volumes, volume_store

        store = volume_store(paths)
        doomed = [
            v.name for v in project.volumes if not v.external and store.find(v.name) is not None
        ]
        if doomed:
            remove_volumes(paths, doomed)
            for name in doomed:
                report(f"Volume {name}  Removed")
    if rmi is not None:
        from rootless.compose.images import remove_images, rmi_images

        for image in remove_images(rmi_images(project, rmi), paths):
            report(f"Image {image}  Removed")


def _remove_secrets(project: Project, paths: StoragePaths, report: Report) -> None:
    """The stored copies of the environment secrets (``up`` made them)."""
    from rootless.secrets import SecretNotFound, secret_store

    store = secret_store(paths)
    for secret in project.secrets:
        if secret.environment is None or secret.name is None:
            continue
        try:
            stored = store.find(secret.name)
            if stored.name != secret.name or (LABEL_PROJECT, project.name) not in stored.labels:
                continue  # not ours to remove
            store.remove(stored.id)
        except SecretNotFound:
            continue
        report(f"Secret {secret.name}  Removed")


def _remove_networks(names: Iterable[str], paths: StoragePaths, report: Report) -> None:
    """Remove the networks; their holders are told to exit at once (``remove_network``),
    and one that still counts a container that just exited gets a moment."""
    from rootless.network.netops import remove_network
    from rootless.network.netstore import NetworkStore

    store = NetworkStore(paths)
    for name in names:
        if not store.exists(name):
            continue
        deadline = time.monotonic() + 10
        while True:
            try:
                remove_network(name, paths=paths)
                break
            except ConfigError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        report(f"Network {name}  Removed")
