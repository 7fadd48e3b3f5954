"""Kubernetes YAML files as plain data plus the file and line of every key (pure).

A file holds one or more documents (``---``); each becomes a compose-style
:class:`~rootless.compose.source.Source`, so errors and warnings can say
``pod.yaml:12: spec.containers[0].ports[0]: ...`` as compose's do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rootless.compose.source import KeyPath, Source, Where, dotted
from rootless.errors import ConfigError

if TYPE_CHECKING:
    import yaml


def parse_documents(text: str, file: str) -> list[Source]:
    """The non-empty documents of ``text``; ``file`` names it in errors."""
    import yaml

    loader = yaml.SafeLoader(text)
    docs: list[Source] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            locations: dict[KeyPath, Where] = {}
            data = _convert(loader, node, (), locations, file)
            if data is None:
                continue
            if not isinstance(data, dict):
                line = node.start_mark.line + 1
                raise ConfigError(
                    f"{file}:{line}: a document must be a mapping (apiVersion, kind, ...)"
                )
            docs.append(Source(data, locations))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f"{mark.line + 1}:" if mark else ""
        raise ConfigError(f"{file}:{line} invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return docs


def _convert(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: KeyPath,
    locations: dict[KeyPath, Where],
    file: str,
) -> Any:
    import yaml

    locations.setdefault(path, Where(file, node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # ``<<: *anchor`` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                where = f"{file}:{key_node.start_mark.line + 1}"
                raise ConfigError(f"{where}: keys must be text, not {key!r}")
            if key in out:
                where = f"{file}:{key_node.start_mark.line + 1}"
                raise ConfigError(f"{where}: {dotted((*path, key))}: duplicate key")
            # the key's own line is the better place to point at than its value's
            locations[(*path, key)] = Where(file, key_node.start_mark.line + 1)
            out[key] = _convert(loader, value_node, (*path, key), locations, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*path, i), locations, file) for i, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(node.value)  # timestamps and binary stay as written
