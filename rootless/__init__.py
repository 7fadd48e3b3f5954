"""rootless: a rootless, daemonless OCI container engine.

The Python API (docs/api.md) is re-exported here lazily: ``import rootless`` stays
cheap because the CLI imports this package first, and the API's modules (attrs, and
trio when an async method runs) load on first use of a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rootless.api import (
        Client,
        CompletedRun,
        Container,
        Image,
        Logs,
        RunKwargs,
        SyncClient,
        SyncContainer,
    )
    from rootless.errors import RootlessError

# public name -> the module that defines it
_LAZY = {
    "Client": "rootless.api",
    "CompletedRun": "rootless.api",
    "Container": "rootless.api",
    "Image": "rootless.api",
    "Logs": "rootless.api",
    "RunKwargs": "rootless.api",
    "SyncClient": "rootless.api",
    "SyncContainer": "rootless.api",
    "RootlessError": "rootless.errors",
}

__all__ = [
    "Client",
    "CompletedRun",
    "Container",
    "Image",
    "Logs",
    "RootlessError",
    "RunKwargs",
    "SyncClient",
    "SyncContainer",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rootless' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
