"""Compose: compose-spec projects, parsed, merged and planned (pure parts).

- :mod:`files` finds and reads the files, interpolates and merges them:
  :func:`load_project`;
- :mod:`model` is the normalised data (:class:`Project`, :class:`Service`, ...);
- :mod:`plan` orders services, names containers and hashes configurations;
- :mod:`to_run` turns one replica into ``RunOptions`` for the engine;
- :mod:`render` writes the model back as Compose-shaped data (``compose config``).
"""

from rootless.compose.files import Loaded, find_compose_files, load_project
from rootless.compose.model import Project, Service
from rootless.compose.plan import (
    config_hash,
    container_names,
    diff_projects,
    select_services,
    start_order,
    stop_order,
)

__all__ = [
    "Loaded",
    "Project",
    "Service",
    "config_hash",
    "container_names",
    "diff_projects",
    "find_compose_files",
    "load_project",
    "select_services",
    "start_order",
    "stop_order",
]
