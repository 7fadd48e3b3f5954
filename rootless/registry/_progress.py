"""Progress events of pulls and pushes; the CLI decides how to draw them."""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs


class Phase(enum.Enum):
    START = "start"  # transfer begins; total is the expected size
    ADVANCE = "advance"  # done bytes so far
    DONE = "done"  # transferred and verified
    EXISTS = "exists"  # already present (in the store, or on the registry for a push)
    MOUNTED = "mounted"  # push: mounted from another repository of the registry
    RETRY = "retry"  # transfer restarts after a dropped connection or a 5xx


@attrs.frozen
class ProgressEvent:
    kind: str  # "manifest", "config", "layer" or "blob"
    digest: str
    phase: Phase
    done: int = 0
    total: int = 0


ProgressCallback = Callable[[ProgressEvent], None]


def ignore_progress(event: ProgressEvent) -> None:
    """The default callback: report nothing."""
