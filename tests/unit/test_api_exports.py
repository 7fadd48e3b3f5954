"""Pins the public Python API: what ``import rootless`` offers and what it costs."""

from __future__ import annotations

import inspect
import subprocess
import sys

import rootless
import rootless.api

PUBLIC = {
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
}

OPERATIONS = {"pull", "build", "run", "container", "compose_up", "compose_down"}
METHODS = {
    "Client": {*OPERATIONS, "aclose"},
    "SyncClient": {*OPERATIONS, "close"},
    "Container": {"exec", "logs", "stop", "wait", "remove", "inspect", "ports"},
    "SyncContainer": {"exec", "logs", "stop", "wait", "remove", "inspect", "ports"},
}


def test_all_is_the_pinned_set() -> None:
    assert set(rootless.__all__) == PUBLIC
    assert set(rootless.api.__all__) == PUBLIC - {"RootlessError", "__version__"}


def test_every_public_name_resolves_to_the_api_object() -> None:
    for name in PUBLIC - {"__version__"}:
        value = getattr(rootless, name)
        assert value is getattr(rootless.api if name != "RootlessError" else rootless.errors, name)
    assert set(dir(rootless)) >= PUBLIC


def test_unknown_names_raise_attribute_error() -> None:
    try:
        _ = rootless.NoSuchThing  # type: ignore[attr-defined]
    except AttributeError as e:
        assert "NoSuchThing" in str(e)
    else:
        raise AssertionError("rootless.NoSuchThing resolved")


def test_public_methods_are_pinned_and_sync_mirrors_async() -> None:
    for cls_name, methods in METHODS.items():
        cls = getattr(rootless, cls_name)
        public = {
            n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")
        }
        assert public == methods, cls_name
    for name in OPERATIONS:
        async_sig = inspect.signature(getattr(rootless.Client, name))
        sync_sig = inspect.signature(getattr(rootless.SyncClient, name))
        assert list(async_sig.parameters) == list(sync_sig.parameters), name
    assert all(
        inspect.iscoroutinefunction(getattr(rootless.Client, n))
        for n in METHODS["Client"] - {"container"}
    )


def test_import_rootless_stays_light() -> None:
    code = (
        "import sys, rootless; "
        "print(sorted(m for m in ('trio', 'attrs', 'rootless.api', 'rootless.errors') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_sync_api_does_not_import_trio() -> None:
    code = "import sys, rootless; rootless.SyncClient(); print('trio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
