"""Kubernetes YAML files as plain data plus the file and line of every key (pure).

A file holds one or more documents (``---``); each becomes a compose-style
:class:`~rootless.compose.source.Source`, so errors and warnings can say
``pod.yaml:12: spec.containers[0].ports[0]: ...`` as compose's do.
"""

from __future__ import annotations

from rootless.compose.source import KeyPath, Source, Where, convert_node, yaml_errors
from rootless.errors import ConfigError


def parse_documents(text: str, file: str) -> list[Source]:
    """The non-empty documents of ``text``; ``file`` names it in errors."""
    import yaml

    loader = yaml.SafeLoader(text)
    docs: list[Source] = []
    with yaml_errors(file, loader):
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            locations: dict[KeyPath, Where] = {}
            data = convert_node(loader, node, (), locations, file)
            if data is None:
                continue
            if not isinstance(data, dict):
                line = node.start_mark.line + 1
                raise ConfigError(
                    f"{file}:{line}: a document must be a mapping (apiVersion, kind, ...)"
                )
            docs.append(Source(data, locations))
    return docs
