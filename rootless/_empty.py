"""A shared, read-only empty mapping: the default for mapping fields of NamedTuples."""

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})
