"""``registries.conf`` (containers-registries.conf(5)): search registries, insecure hosts, aliases.

Files read, later ones overriding earlier ones:

1. ``$XDG_CONFIG_HOME/containers/registries.conf`` if it exists, else
   ``/etc/containers/registries.conf``;
2. ``*.conf`` in ``/etc/containers/registries.conf.d`` then in the user's
   ``registries.conf.d``, in name order.

A drop-in replaces ``unqualified-search-registries`` when it sets it, adds
aliases, and replaces a ``[[registry]]`` with the same prefix. Mirrors and the
short-name mode are not supported: names resolve to the first search registry that
has them, without prompting.
"""

from __future__ import annotations

import contextlib
import marshal
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard

from rootless._empty import EMPTY_MAP
from rootless._record import Record
from rootless.errors import ConfigError
from rootless.image.reference import DOCKER_HUB, Reference, candidates, is_qualified

SYSTEM_CONF = Path("/etc/containers/registries.conf")


class RegistryEntry(Record):
    """One ``[[registry]]`` table: where a prefix is served from and how."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False


class RegistriesConf(Record):
    # None when no file configures it: then Docker's default, docker.io, applies.
    search_registries: tuple[str, ...] | None = None
    registries: tuple[RegistryEntry, ...] = ()
    aliases: Mapping[str, str] = EMPTY_MAP

    def unqualified_search(self) -> tuple[str, ...]:
        return (DOCKER_HUB,) if self.search_registries is None else self.search_registries

    def entry_for(self, name: str) -> RegistryEntry | None:
        """The ``[[registry]]`` whose prefix matches ``name`` (``host/repo``) longest."""
        best: RegistryEntry | None = None
        for entry in self.registries:
            p = entry.prefix
            matches = name == p or name.startswith(p + "/")
            if matches and (best is None or len(p) > len(best.prefix)):
                best = entry
        return best

    def is_insecure(self, registry: str) -> bool:
        """True if plain http / unverified TLS is allowed for ``registry`` (a host[:port])."""
        entry = self.entry_for(registry)
        return entry is not None and entry.insecure

    def is_blocked(self, ref: Reference) -> bool:
        entry = self.entry_for(ref.name)
        return entry is not None and entry.blocked

    def rewrite(self, ref: Reference) -> Reference:
        """Apply a ``location`` that serves ``prefix`` from another place."""
        entry = self.entry_for(ref.name)
        if entry is None or entry.location == entry.prefix:
            return ref
        new_name = entry.location + ref.name[len(entry.prefix) :]
        registry, _, repository = new_name.partition("/")
        return ref._replace(registry=registry, repository=repository)

    def candidates(self, text: str) -> list[Reference]:
        """References to try for ``text``: an alias first, else each search registry."""
        if not is_qualified(text):
            base, suffix = _split_name(text)
            alias = self.aliases.get(base)
            if alias is not None:
                return candidates(alias + suffix)
        return candidates(text, search_registries=self.unqualified_search())


def _split_name(text: str) -> tuple[str, str]:
    """Split ``name[:tag][@digest]`` into the name and the rest."""
    at = text.find("@")
    name = text if at < 0 else text[:at]
    colon = name.rfind(":")
    cut = colon if colon > name.rfind("/") else len(name)
    return text[:cut], text[cut:]


def default_paths(env: Mapping[str, str] | None = None, system: Path = SYSTEM_CONF) -> list[Path]:
    """The files to read, in order, for the user described by ``env``."""
    env = os.environ if env is None else env
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "/"), ".config")
    user = Path(config_home) / "containers" / "registries.conf"
    paths = [user if user.exists() else system]
    for directory in (system.with_name("registries.conf.d"), user.with_name("registries.conf.d")):
        if directory.is_dir():
            paths.extend(sorted(directory.glob("*.conf")))
    return paths


def load(paths: Iterable[Path] | None = None) -> RegistriesConf:
    """Read and merge ``paths`` (default: :func:`default_paths`); missing files are skipped.

    The default files' merged result is cached in the runtime directory, keyed by each
    file's identity and mtime: parsing the TOML (and importing tomllib) on every
    ``run`` with a short name cost ~7 ms.
    """
    if paths is not None:
        return _load(paths)
    from rootless._paths import StoragePaths

    paths = default_paths()
    cache = StoragePaths.from_env().runtime / "registries.conf.cache"
    key = tuple(_identity(path) for path in paths)
    with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
        cached_key, (search, entries, aliases) = marshal.loads(cache.read_bytes())
        if cached_key == key:
            return RegistriesConf(search, tuple(RegistryEntry._make(e) for e in entries), aliases)
    conf = _load(paths)
    data = (conf.search_registries, [tuple(e) for e in conf.registries], dict(conf.aliases))
    with contextlib.suppress(OSError):
        from rootless._atomic import atomic_write

        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(cache, marshal.dumps((key, data)), durable=False)  # a cache: may be lost
    return conf


def _identity(path: Path) -> tuple[str, int, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), 0, 0, 0)
    return (str(path), st.st_ino, st.st_size, st.st_mtime_ns)


def _load(paths: Iterable[Path]) -> RegistriesConf:
    import tomllib

    search: tuple[str, ...] | None = None
    entries: dict[str, RegistryEntry] = {}
    aliases: dict[str, str] = {}
    for path in paths:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read registries configuration {path}: {exc}") from None
        found = _parse(path, data)
        if found.search_registries is not None:
            search = found.search_registries
        entries.update((e.prefix, e) for e in found.registries)
        aliases.update(found.aliases)
    return RegistriesConf(search, tuple(entries.values()), aliases)


def _parse(path: Path, data: Mapping[str, Any]) -> RegistriesConf:
    search = data.get("unqualified-search-registries")
    if search is not None and not _is_str_list(search):
        raise ConfigError(f"bad {path}: unqualified-search-registries must be a list of strings")
    v1 = data.get("registries")
    if isinstance(v1, Mapping):
        return _parse_v1(path, v1)
    raw_entries = data.get("registry", [])
    if not isinstance(raw_entries, list):
        raise ConfigError(f"bad {path}: [[registry]] must be an array of tables")
    entries = [_parse_entry(path, raw) for raw in raw_entries]
    raw_aliases = data.get("aliases", {})
    if not isinstance(raw_aliases, Mapping) or not all(
        isinstance(v, str) for v in raw_aliases.values()
    ):
        raise ConfigError(f"bad {path}: [aliases] values must be strings")
    return RegistriesConf(
        None if search is None else tuple(search), tuple(entries), dict(raw_aliases)
    )


def _parse_entry(path: Path, raw: Any) -> RegistryEntry:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"bad {path}: each [[registry]] must be a table")
    location = raw.get("location", "")
    prefix = raw.get("prefix", location)
    if not isinstance(location, str) or not isinstance(prefix, str) or not prefix:
        raise ConfigError(f"bad {path}: a [[registry]] needs a location or prefix string")
    insecure, blocked = raw.get("insecure", False), raw.get("blocked", False)
    if not isinstance(insecure, bool) or not isinstance(blocked, bool):
        raise ConfigError(f"bad {path}: insecure and blocked in [[registry]] must be true or false")
    return RegistryEntry(prefix, location or prefix, insecure, blocked)


def _parse_v1(path: Path, v1: Mapping[str, Any]) -> RegistriesConf:
    # The old format: [registries.search] registries = [...], same for insecure/block.
    def hosts(key: str) -> list[str]:
        table = v1.get(key, {})
        value = table.get("registries", []) if isinstance(table, Mapping) else None
        if not _is_str_list(value):
            raise ConfigError(f"bad {path}: registries.{key}.registries must be a list of strings")
        return list(value)

    search = hosts("search")
    entries = {h: RegistryEntry(h, h, insecure=True) for h in hosts("insecure")}
    for h in hosts("block"):
        entries[h] = entries.get(h, RegistryEntry(h, h))._replace(blocked=True)
    return RegistriesConf(tuple(search) if search else None, tuple(entries.values()))


def _is_str_list(value: Any) -> TypeGuard[list[str]]:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(v, str) for v in value)
    )
