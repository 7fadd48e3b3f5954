"""Typed reads of one Kubernetes document, with errors and warnings at their line (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rootless.compose.source import KeyPath, Source, error_at, prefix
from rootless.errors import ConfigError

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Keys with no local meaning that are dropped without a warning.
_QUIET = frozenset({"status"})
_QUIET_META = frozenset(
    {"namespace", "creationTimestamp", "uid", "resourceVersion", "generation", "managedFields"}
)


class Doc:
    """One document: typed reads of its values, with errors and warnings at their line."""

    def __init__(self, src: Source, warnings: list[str]) -> None:
        self.src = src
        self.warnings = warnings

    def error(self, path: KeyPath, message: str, hint: str | None = None) -> ConfigError:
        if hint is None:
            return error_at(self.src.locations, path, message)
        return ConfigError(f"{prefix(self.src.locations, path)}{message}", hint=hint)

    def warn(self, path: KeyPath, message: str) -> None:
        self.warnings.append(f"{prefix(self.src.locations, path)}{message}")

    def mapping(self, value: Any, path: KeyPath, known: Sequence[str]) -> dict[str, Any]:
        """``value`` as a mapping (None: empty); keys outside ``known`` are warned about
        unless they are empty (then nothing is lost)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, "must be a mapping")
        quiet = _QUIET_META if path[-1:] == ("metadata",) else _QUIET
        for key, item in value.items():
            if key not in known and key not in quiet and item not in (None, {}, [], ""):
                self.warn((*path, key), "not supported by kube play, ignored")
        return value

    def items(self, value: Any, path: KeyPath) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, "must be a list")
        return value

    def string(self, value: Any, path: KeyPath, *, required: bool = False) -> str:
        if value is None:
            if required:
                raise self.error(path, "is required")
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(path, "must be a string")
        return str(value)

    def strings(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        return tuple(self.string(v, (*path, i)) for i, v in enumerate(self.items(value, path)))

    def integer(self, value: Any, path: KeyPath, *, low: int = 0, high: int = 2**31 - 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, "must be a whole number")
        if not low <= value <= high:
            raise self.error(path, f"must be between {low} and {high}")
        return value

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(path, "must be true or false")
        return value

    def name(self, value: Any, path: KeyPath, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(value, path, required=True)
        if len(text) > 63 or not pattern.fullmatch(text):
            raise self.error(
                path,
                f'"{text}" is not a valid {what}: use at most 63 lower-case letters, digits '
                "and '-', starting and ending with a letter or digit",
            )
        return text
