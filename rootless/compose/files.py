"""Find, read, interpolate and merge compose files into a :class:`Project`.

Compose's rules: without ``-f`` the first of ``compose.yaml``, ``compose.yml``,
``docker-compose.yaml``, ``docker-compose.yml`` in the working directory or the
nearest parent is used, plus its ``.override`` file beside it; ``COMPOSE_FILE``
(``:``-separated) stands in for ``-f``. The project directory is the first file's
directory; variables come from ``.env`` there (or the ``--env-file`` files) with
the process environment taking precedence. The project name is ``-p``, else
``COMPOSE_PROJECT_NAME``, else ``name:``, else the directory's name made valid
(lower case, only ``a-z0-9_-``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from rootless.compose.interpolate import interpolate, parse_env_file
from rootless.compose.merge import merge_sources
from rootless.compose.model import Project, build_project, check_project_name
from rootless.compose.source import KeyPath, Source, error_at, parse_yaml, prefix, walk_strings
from rootless.errors import ConfigError

FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


class Loaded(NamedTuple):
    project: Project
    files: tuple[Path, ...]
    profiles: tuple[str, ...]  # --profile and COMPOSE_PROFILES
    warnings: tuple[str, ...]


def find_compose_files(start: Path) -> tuple[Path, ...]:
    """The compose file (and its override) nearest to ``start``, looking upwards."""
    for directory in (start, *start.parents):
        found = [directory / n for n in FILE_NAMES if (directory / n).is_file()]
        if found:
            base = found[0].name.split(".")[0]  # "compose" or "docker-compose"
            overrides = [directory / f"{base}.override.{ext}" for ext in ("yaml", "yml")]
            override = next((o for o in overrides if o.is_file()), None)
            return (found[0], override) if override else (found[0],)
    raise ConfigError(
        f"no compose file found in {start} or any parent directory",
        hint=f"create one of {', '.join(FILE_NAMES)}, or give one with -f FILE",
    )


def normalize_project_name(text: str) -> str:
    """A directory name made a valid project name, as Compose does: ``My App!`` -> ``myapp``."""
    kept = "".join(re.findall(r"[a-z0-9_-]", text.lower()))
    return kept.lstrip("_-")


def display_name(path: Path, cwd: Path) -> str:
    """How errors name a file: relative to the working directory when inside it."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None


def load_project(
    files: Sequence[str] = (),
    *,
    cwd: Path,
    environ: Mapping[str, str],
    project_name: str | None = None,
    env_files: Sequence[str] = (),
    profiles: Sequence[str] = (),
) -> Loaded:
    """Read the compose files (or find them from ``cwd``) and build the project."""
    warnings: list[str] = []
    paths = _compose_paths(files, cwd, environ)
    directory = paths[0].parent
    env = _environment(directory, cwd, env_files, environ)
    sources = [_load_one(p, cwd, env, warnings) for p in paths]
    merged = merge_sources(sources)
    name = _project_name(project_name, env, merged, directory)
    project = build_project(
        merged,
        name=name,
        directory=str(directory),
        env=env,
        warn=warnings.append,
        read_text=read_text,
    )
    wanted = [*profiles]
    wanted += [p for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()]
    return Loaded(project, paths, tuple(dict.fromkeys(wanted)), tuple(dict.fromkeys(warnings)))


def _compose_paths(files: Sequence[str], cwd: Path, environ: Mapping[str, str]) -> tuple[Path, ...]:
    given = list(files)
    if not given and environ.get("COMPOSE_FILE"):
        given = [f for f in environ["COMPOSE_FILE"].split(os.pathsep) if f]
    if not given:
        return find_compose_files(cwd)
    out = []
    for f in given:
        path = Path(os.path.normpath(cwd / f))
        if not path.is_file():
            raise ConfigError(f"compose file {f} not found", hint="check the path given with -f")
        out.append(path)
    return tuple(out)


def _environment(
    directory: Path, cwd: Path, env_files: Sequence[str], environ: Mapping[str, str]
) -> dict[str, str]:
    """The variables for interpolation: .env (or --env-file), then the process environment."""
    chosen = [cwd / f for f in env_files] or [directory / ".env"]
    values: dict[str, str] = {}
    for path in chosen:
        if not env_files and not path.is_file():
            continue  # .env is optional; an --env-file given must exist
        text = read_text(str(path))
        for key, value in parse_env_file(
            text, file=display_name(path, cwd), env={**values, **environ}
        ):
            if value is not None:
                values[key] = value
    return {**values, **environ}


def _load_one(path: Path, cwd: Path, env: Mapping[str, str], warnings: list[str]) -> Source:
    shown = display_name(path, cwd)
    source = parse_yaml(read_text(str(path)), shown)

    def expand(text: str, at: KeyPath) -> str:
        def missing(name: str) -> None:
            warnings.append(f'{prefix(source.locations, at)}variable "{name}" is not set, using ""')

        try:
            return interpolate(text, env, missing)
        except ConfigError as e:
            raise error_at(source.locations, at, e.message) from None

    return Source(walk_strings(source.data, (), expand), source.locations)


def _project_name(
    explicit: str | None, env: Mapping[str, str], merged: Source, directory: Path
) -> str:
    if explicit:
        return check_project_name(explicit, "from -p")
    if env.get("COMPOSE_PROJECT_NAME"):
        return check_project_name(env["COMPOSE_PROJECT_NAME"], "from COMPOSE_PROJECT_NAME")
    named = merged.data.get("name")
    if named is not None:
        if not isinstance(named, str) or not named:
            raise error_at(merged.locations, ("name",), "must be a non-empty string")
        return check_project_name(named, f"{prefix(merged.locations, ('name',))[:-2]}")
    name = normalize_project_name(directory.name)
    if not name:
        raise ConfigError(
            f'cannot make a project name from the directory "{directory.name}"',
            hint="give one with -p NAME or name: in the compose file",
        )
    return name
