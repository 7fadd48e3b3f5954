"""The Python API: :class:`Client` (async, trio) and :class:`SyncClient` (blocking).

See docs/api.md. ``import rootless`` re-exports these names lazily.
"""

from rootless.api._async import Client, Container
from rootless.api._cli import RunKwargs
from rootless.api._sync import SyncClient, SyncContainer
from rootless.api._types import CompletedRun, Image, Logs

__all__ = [
    "Client",
    "CompletedRun",
    "Container",
    "Image",
    "Logs",
    "RunKwargs",
    "SyncClient",
    "SyncContainer",
]
