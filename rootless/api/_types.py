"""The values the API returns."""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

C = TypeVar("C")


@attrs.frozen
class Image:
    """An image in the local store: its ID (hex, no ``sha256:``) and the name it was asked by."""

    id: str
    name: str


@attrs.frozen
class CompletedRun:
    """A command that ran to its end in a container: its exit code and its output."""

    exit_code: int
    stdout: bytes
    stderr: bytes


@attrs.frozen
class Logs:
    """A container's output so far, from its log file."""

    stdout: bytes
    stderr: bytes


class Handle(Generic[C]):
    """A container by ID or name, and the client whose runner acts on it."""

    def __init__(self, client: C, id: str) -> None:
        self.client = client
        self.id = id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id[:12]!r})"
