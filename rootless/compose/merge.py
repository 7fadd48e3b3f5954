"""Merge several compose files (``-f a.yaml -f b.yaml``) the way Compose does (pure).

Later files override earlier ones:

- mappings merge key by key, recursively; a scalar or a list in a later file
  replaces the earlier value, except for the service keys below;
- ``environment``, ``labels``, ``annotations``, ``extra_hosts``, ``sysctls`` and
  ``build.args`` merge by variable name (list and mapping forms may be mixed);
- ``depends_on`` and ``networks`` merge by service / network name;
- ``volumes`` (and ``tmpfs`` mounts of the long syntax) merge by target path,
  ``secrets`` and ``configs`` by target; ``ports`` are concatenated without
  duplicates; ``cap_add``, ``cap_drop``, ``expose``, ``env_file``, ``tmpfs``,
  ``dns``, ``dns_search``, ``profiles`` are appended without duplicates;
- ``command``, ``entrypoint`` and ``healthcheck.test`` are replaced whole;
- ``!reset`` removes a value, ``!override`` replaces it without merging.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rootless.compose.source import RESET, KeyPath, Override, Source, Where

_BY_NAME = frozenset({"environment", "labels", "annotations", "extra_hosts", "sysctls"})
_BY_KEY = frozenset({"depends_on", "networks"})
_APPEND = frozenset(
    {"cap_add", "cap_drop", "expose", "env_file", "tmpfs", "dns", "dns_search", "profiles"}
)
_REPLACE = frozenset({"command", "entrypoint"})


def merge_sources(sources: Sequence[Source]) -> Source:
    """One source from several, in order; markers (``!reset``, ``!override``) resolved."""
    combined: list[KeyPath] = []
    data: dict[str, Any] = {}
    for source in sources:
        data = _merge_top(data, source.data, combined)
    locations: dict[KeyPath, Where] = {}
    for source in sources:
        locations.update(source.locations)
    # Inside values built from several files, item positions no longer match one file:
    # point at the key instead (its line in the last file that set it).
    for path in combined:
        for p in [p for p in locations if len(p) > len(path) and p[: len(path)] == path]:
            del locations[p]
    return Source(data, locations)


def strip(value: Any) -> Any:
    """``value`` without merge markers: ``!reset`` entries dropped, ``!override`` unwrapped."""
    if isinstance(value, Override):
        return strip(value.value)
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        return [strip(v) for v in value if v is not RESET]
    return None if value is RESET else value


def _merge_top(base: dict[str, Any], over: dict[str, Any], combined: list[KeyPath]) -> Any:
    out = dict(base)
    for key, value in over.items():
        if key == "services" and isinstance(value, dict) and isinstance(out.get(key), dict):
            services = dict(out[key])
            for name, svc in value.items():
                path = ("services", name)
                if isinstance(svc, dict) and isinstance(services.get(name), dict):
                    services[name] = _merge_service(services[name], svc, path, combined)
                elif svc is RESET:
                    services.pop(name, None)
                else:
                    services[name] = strip(svc)
            out[key] = services
        else:
            _set(out, key, value, (key,), combined, _merge_generic)
    return out


def _set(out: dict[str, Any], key: str, value: Any, path: KeyPath, combined: list[KeyPath],
         merge: Any) -> None:  # fmt: skip
    if value is RESET:
        out.pop(key, None)
    elif isinstance(value, Override) or key not in out:
        out[key] = strip(value)
    else:
        out[key] = merge(out[key], value, path, combined)


def _merge_generic(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            _set(out, key, value, (*path, key), combined, _merge_generic)
        return out
    return strip(over)


def _merge_service(
    base: dict[str, Any], over: dict[str, Any], path: KeyPath, combined: list[KeyPath]
) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        _set(out, key, value, (*path, key), combined, _service_key_merger(key))
    return out


def _service_key_merger(key: str) -> Any:
    if key in _REPLACE:
        return lambda base, over, path, combined: strip(over)
    if key in _BY_NAME:
        return _by_name
    if key in _BY_KEY:
        return _by_key
    if key in _APPEND or key == "ports":
        return _append
    if key in ("volumes", "secrets", "configs"):
        return _by_target
    if key == "build":
        return _merge_build
    return _merge_generic


def _as_name_map(value: Any) -> dict[str, Any]:
    """``["A=1", "B"]`` or ``{A: 1}`` -> ``{"A": "1", "B": None}``."""
    if isinstance(value, dict):
        return dict(value)
    out: dict[str, Any] = {}
    for item in value if isinstance(value, list) else []:
        key, sep, val = str(item).partition("=")
        out[key] = val if sep else None
    return out


def _by_name(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    combined.append(path)
    return strip({**_as_name_map(base), **_as_name_map(over)})


def _as_key_map(value: Any) -> dict[str, Any]:
    """``[a, b]`` or ``{a: {...}}`` -> ``{"a": None, "b": None}`` / the mapping."""
    if isinstance(value, dict):
        return dict(value)
    return {str(v): None for v in value} if isinstance(value, list) else {}


def _by_key(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    combined.append(path)
    if not (isinstance(base, dict | list) and isinstance(over, dict | list)):
        return strip(over)
    return _merge_generic(_as_key_map(base), _as_key_map(over), path, combined)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _append(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    combined.append(path)
    out = list(_as_list(base))
    for item in _as_list(strip(over)):
        if item not in out:
            out.append(item)
    return out


def _target_of(item: Any) -> Any:
    """The identity of a volume/secret/config entry: its target, or the entry itself."""
    if isinstance(item, dict):
        return item.get("target") or item.get("source") or repr(sorted(item.items()))
    if isinstance(item, str):
        parts = item.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return repr(item)


def _by_target(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    if not (isinstance(base, list) and isinstance(over, list)):
        return strip(over)
    combined.append(path)
    merged = {_target_of(item): item for item in base}
    for item in strip(over):
        merged[_target_of(item)] = item
    return list(merged.values())


def _merge_build(base: Any, over: Any, path: KeyPath, combined: list[KeyPath]) -> Any:
    base = {"context": base} if isinstance(base, str) else base
    over = {"context": over} if isinstance(over, str) else over
    if not (isinstance(base, dict) and isinstance(over, dict)):
        return strip(over)
    out = dict(base)
    for key, value in over.items():
        merge = _by_name if key == "args" else _merge_generic
        _set(out, key, value, (*path, key), combined, merge)
    return out
