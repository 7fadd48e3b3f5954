"""What to start, in which order, under which names (pure).

- Profiles: a service with ``profiles`` is enabled only when one of them is
  asked for (``--profile``, ``COMPOSE_PROFILES``; ``*`` enables all). Naming a
  service on the command line enables its profiles too, as in Compose.
- Order: dependencies start first; ties keep the file's order. Stopping runs
  the same order backwards. Cycles are refused.
- Restarts: a dependent that declares ``restart: true`` on a dependency is restarted
  when that dependency is recreated by ``up`` or restarted by ``restart``.
- Names: replica N of service S in project P is the container ``P-S-N``, unless
  the service sets ``container_name``.
- Changes: a hash of each service's configuration tells a re-run of ``up``
  which containers to recreate; replicas, profiles and depends_on do not count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from rootless.errors import ConfigError

if TYPE_CHECKING:
    from rootless.compose.model import Project


def find_cycle(deps: Mapping[str, Sequence[str]]) -> tuple[str, ...] | None:
    """A dependency cycle as ``(a, b, a)``, or None; ``deps`` maps a service to what it needs."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    trail: list[str] = []

    def visit(name: str) -> tuple[str, ...] | None:
        state[name] = 1
        trail.append(name)
        for dep in deps.get(name, ()):
            if state.get(dep) == 1:
                return (*trail[trail.index(dep) :], dep)
            if dep not in state and (found := visit(dep)):
                return found
        trail.pop()
        state[name] = 2
        return None

    for name in deps:
        if name not in state and (found := visit(name)):
            return found
    return None


def enabled_services(project: Project, profiles: Collection[str]) -> tuple[str, ...]:
    """Services without profiles, or with one of ``profiles`` (``*``: every profile)."""
    every = "*" in profiles
    return tuple(
        s.name
        for s in project.services
        if not s.profiles or every or any(p in profiles for p in s.profiles)
    )


def select_services(
    project: Project,
    requested: Sequence[str] = (),
    *,
    profiles: Collection[str] = (),
    no_deps: bool = False,
    warn: Callable[[str], None] | None = None,
) -> tuple[str, ...]:
    """The services an ``up``/``config`` acts on, in start order.

    ``requested`` names services (all enabled ones when empty); their dependencies
    come along unless ``no_deps``. A dependency whose profile is not enabled is an
    error, unless it is marked ``required: false`` (then it is left out, and ``warn``
    hears of it).
    """
    for name in requested:
        project.service(name)  # unknown names fail here
    active = set(profiles)
    for name in requested:
        active.update(project.service(name).profiles)
    enabled = set(enabled_services(project, active))
    chosen = set(requested) if requested else set(enabled)
    if not no_deps:
        todo = list(chosen)
        while todo:
            service = project.service(todo.pop())
            for dep in service.depends_on:
                if dep.service in chosen:
                    continue
                if dep.service not in enabled:
                    if not dep.required:
                        if warn is not None:
                            warn(
                                f'service "{service.name}" depends on "{dep.service}", whose '
                                "profile is not enabled: starting without it (required: false)"
                            )
                        continue
                    wanted = ", ".join(project.service(dep.service).profiles)
                    raise ConfigError(
                        f'service "{service.name}" depends on "{dep.service}", '
                        f"whose profile is not enabled",
                        hint=f"add --profile {wanted.split(', ')[0]} (its profiles: {wanted})",
                    )
                chosen.add(dep.service)
                todo.append(dep.service)
    return start_order(project, chosen)


def start_order(project: Project, names: Iterable[str] | None = None) -> tuple[str, ...]:
    """``names`` (default: all services) with each one's dependencies before it."""
    wanted = set(names) if names is not None else {s.name for s in project.services}
    position = {s.name: i for i, s in enumerate(project.services)}
    deps = {
        s.name: [d.service for d in s.depends_on if d.service in wanted]
        for s in project.services
        if s.name in wanted
    }
    cycle = find_cycle(deps)
    if cycle:
        raise ConfigError(f"dependency cycle between services: {' -> '.join(cycle)}")
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(deps):
        ready = [n for n in deps if n not in done and all(d in done for d in deps[n])]
        for name in sorted(ready, key=position.__getitem__):
            order.append(name)
            done.add(name)
    return tuple(order)


def restart_dependents(project: Project, services: Iterable[str]) -> tuple[str, ...]:
    """``services`` and, transitively, the services that depend on one of them with
    ``restart: true``, in start order: what restarting ``services`` restarts."""
    out = set(services)
    grew = True
    while grew:
        grew = False
        for s in project.services:
            if s.name not in out and any(d.restart and d.service in out for d in s.depends_on):
                out.add(s.name)
                grew = True
    return start_order(project, out)


def stop_order(project: Project, names: Iterable[str] | None = None) -> tuple[str, ...]:
    """The reverse of :func:`start_order`: dependents stop before what they depend on."""
    return tuple(reversed(start_order(project, names)))


def container_names(project: Project, service: str) -> tuple[str, ...]:
    """The containers of ``service``: ``PROJECT-SERVICE-1`` .. ``-N``, or its container_name."""
    s = project.service(service)
    if s.container_name:
        return (s.container_name,)
    return tuple(f"{project.name}-{service}-{n}" for n in range(1, s.replicas + 1))


_NOT_HASHED = ("replicas", "profiles", "depends_on", "pull_policy")


def config_hash(project: Project, service: str) -> str:
    """A sha256 of what the service's containers are made from (hex)."""
    s = project.service(service)
    body: dict[str, Any] = attrs.asdict(s, recurse=True)
    for key in _NOT_HASHED:
        body.pop(key)
    body["networks"] = [
        [project.network(n.name).name, *n.aliases] for n in s.networks
    ]  # engine names: renaming a network recreates
    body["volumes"] = [
        {**v, "source": project.volume(v["source"]).name}
        if v["type"] == "volume" and v["source"]
        else v
        for v in body["volumes"]
    ]
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class ProjectDiff(NamedTuple):
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]


def diff_projects(old: Project, new: Project) -> ProjectDiff:
    """Which services of ``new`` are new, gone, changed or the same as in ``old``."""
    before = {s.name for s in old.services}
    after = [s.name for s in new.services]
    changed = [
        n for n in after if n in before and config_hash(old, n) != config_hash(new, n)
    ]  # fmt: skip
    return ProjectDiff(
        added=tuple(n for n in after if n not in before),
        removed=tuple(s.name for s in old.services if s.name not in set(after)),
        changed=tuple(changed),
        unchanged=tuple(n for n in after if n in before and n not in changed),
    )
