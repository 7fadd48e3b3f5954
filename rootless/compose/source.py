"""Compose files as plain data plus where each value came from (file and line).

PyYAML's safe composer builds the node tree; this module turns it into dicts,
lists and scalars and records, for every key path, the file and line it was
written on, so that errors can say ``compose.yaml:12: services.web.ports[0]: ...``.
Anchors, aliases and ``<<`` merge keys work as in any YAML; the Compose tags
``!reset`` and ``!override`` are kept as markers for merging.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from rootless.errors import ConfigError

if TYPE_CHECKING:
    import yaml

KeyPath = tuple[str | int, ...]


@attrs.frozen
class Where:
    file: str
    line: int  # 1-based


class Reset:
    """``!reset``: the value is removed from what earlier files said."""

    def __repr__(self) -> str:
        return "RESET"


RESET = Reset()


@attrs.frozen
class Override:
    """``!override VALUE``: replaces what earlier files said instead of merging with it."""

    value: Any


@attrs.frozen
class Source:
    """One compose file's data with the location of every key path in it."""

    data: Any
    locations: Mapping[KeyPath, Where]


def dotted(path: KeyPath) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def locate(locations: Mapping[KeyPath, Where], path: KeyPath) -> Where | None:
    """Where ``path`` was written, or its nearest ancestor when it has no line of its own."""
    for n in range(len(path), -1, -1):
        where = locations.get(path[:n])
        if where is not None:
            return where
    return None


def error_at(locations: Mapping[KeyPath, Where], path: KeyPath, message: str) -> ConfigError:
    """A ConfigError that starts with ``file:line: key.path:``."""
    return ConfigError(f"{prefix(locations, path)}{message}")


def prefix(locations: Mapping[KeyPath, Where], path: KeyPath) -> str:
    where = locate(locations, path)
    head = f"{where.file}:{where.line}: " if where else ""
    return f"{head}{dotted(path)}: " if path else head


def parse_yaml(text: str, file: str) -> Source:
    """Parse one compose file with PyYAML's safe loader; ``file`` names it in errors."""
    import yaml

    loader = yaml.SafeLoader(text)
    with yaml_errors(file, loader):
        node = loader.get_single_node()
        locations: dict[KeyPath, Where] = {}
        data = convert_node(loader, node, (), locations, file) if node is not None else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}:1: the top level must be a mapping of keys (services: ...)")
    return Source(data, locations)


@contextlib.contextmanager
def yaml_errors(file: str, loader: yaml.SafeLoader) -> Iterator[None]:
    """PyYAML's errors while ``loader`` reads ``file`` as ConfigErrors with its line;
    the loader is disposed of at the end. Shared with Kubernetes files."""
    import yaml

    try:
        yield
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"{mark.line + 1}:" if mark else ""
        raise ConfigError(f"{file}:{line} invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: invalid YAML: {e}") from None
    finally:
        loader.dispose()


def convert_node(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    locations: dict[KeyPath, Where],
    file: str,
) -> Any:
    """``node`` as plain data (YAML 1.2 scalars, as Compose reads them), recording the
    file and line of every key path in ``locations``."""
    import yaml

    locations[path] = Where(file, node.start_mark.line + 1)
    if node.tag == "!reset":
        return RESET
    if node.tag == "!override":
        value = node.value if isinstance(node, yaml.ScalarNode) else None
        node.tag = loader.resolve(type(node), value, (True, False))  # type: ignore[no-untyped-call]
        return Override(convert_node(loader, node, path, locations, file))
    if isinstance(node, yaml.MappingNode):
        own: set[str] = set()
        for key_node, _ in node.value:
            key = _scalar_key(loader, key_node, path, file)
            if key in own and key != "<<":
                where = f"{file}:{key_node.start_mark.line + 1}: "
                raise ConfigError(f"{where}{dotted((*path, key))}: duplicate key")
            own.add(key)
        # ``<<: *anchor`` merge keys: their entries come first, so the node's own win
        loader.flatten_mapping(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(loader, key_node, path, file)
            out[key] = convert_node(loader, value_node, (*path, key), locations, file)
            # the key's own line is the better place to point at than its value's
            locations[(*path, key)] = Where(file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            convert_node(loader, item, (*path, i), locations, file)
            for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    # Compose reads YAML 1.2: "22:22" is not a base-60 number, "yes"/"on" are not booleans.
    if isinstance(value, bool) and node.value.lower() not in ("true", "false"):
        return node.value
    if isinstance(value, int) and ":" in node.value:
        return node.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(node.value)  # timestamps and binary stay as written


def _scalar_key(loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, file: str) -> str:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{file}:{node.start_mark.line + 1}: {dotted(path)}: keys must be text")
    if node.tag == "tag:yaml.org,2002:merge":
        return "<<"
    value = loader.construct_object(node)
    if isinstance(value, bool):
        return "true" if value else "false"  # `y:`/`on:` style keys keep their meaning as text
    return str(value) if value is not None else "null"


def walk_strings(data: Any, path: KeyPath, fn: Callable[[str, KeyPath], str]) -> Any:
    """``data`` with every string value (not key) replaced by ``fn(value, path)``."""
    if isinstance(data, str):
        return fn(data, path)
    if isinstance(data, dict):
        return {k: walk_strings(v, (*path, k), fn) for k, v in data.items()}
    if isinstance(data, list):
        return [walk_strings(v, (*path, i), fn) for i, v in enumerate(data)]
    if isinstance(data, Override):
        return Override(walk_strings(data.value, path, fn))
    return data
