"""pytest fixtures that start rootless containers for a test and always remove them.

Loaded through the ``pytest11`` entry point (or ``-p rootless.pytest_plugin``). The
storage roots are a temporary directory per test session unless ``--rootless-root``
(or the ``rootless_root`` ini option) names one; ``user`` means the user's own roots.
See docs/api.md.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Unpack

import pytest

if TYPE_CHECKING:
    from rootless._paths import StoragePaths
    from rootless.api import Client, RunKwargs, SyncClient, SyncContainer

USER_ROOTS = "user"


class ContainerFactory(Protocol):
    """The ``rootless_container`` fixture: start a detached container, removed at teardown."""

    def __call__(
        self, image: str, command: Sequence[str] = (), **options: Unpack[RunKwargs]
    ) -> SyncContainer: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rootless")
    help_text = (
        "storage roots of the rootless fixtures: a directory, or 'user' for your own "
        "(default: a temporary directory per session)"
    )
    group.addoption("--rootless-root", metavar="DIR", help=help_text)
    parser.addini("rootless_root", help_text)


def roots_under(base: Path) -> StoragePaths:
    """The four storage roots inside ``base``, created (the runtime one private)."""
    from rootless._paths import StoragePaths

    paths = StoragePaths(base / "data", base / "runtime", base / "config", base / "cache")
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    paths.runtime.chmod(0o700)
    return paths


@pytest.fixture(scope="session")
def rootless_paths(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoragePaths | None]:
    """The storage roots the fixtures use; None means the user's own."""
    chosen = request.config.getoption("rootless_root") or request.config.getini("rootless_root")
    if chosen == USER_ROOTS:
        yield None
        return
    temporary = not chosen
    paths = roots_under(tmp_path_factory.mktemp("rootless") if temporary else Path(chosen))
    yield paths
    if temporary:
        _remove_all(paths)


def _remove_all(paths: StoragePaths) -> None:
    """End the session's leftovers: containers the tests started without the factory."""
    from rootless.api import SyncClient
    from rootless.errors import RootlessError

    client = SyncClient(paths)
    try:
        ids = client._call("ps", "--all", "--quiet", "--no-trunc").stdout.decode().split()
        for cid in ids:
            client.container(cid).remove(force=True)
    except RootlessError as e:
        warnings.warn(f"rootless: cannot clean up {paths.data}: {e}", stacklevel=1)


@pytest.fixture(scope="session")
def rootless_client(rootless_paths: StoragePaths | None) -> Iterator[SyncClient]:
    """A :class:`rootless.SyncClient` on the session's storage roots; its runner process
    ends with the session."""
    from rootless.api import SyncClient

    with SyncClient(rootless_paths) as client:
        yield client


@pytest.fixture(scope="session")
def rootless_async_client(rootless_paths: StoragePaths | None) -> Iterator[Client]:
    """A :class:`rootless.Client` (trio) on the session's storage roots; its runner
    process ends with the session."""
    import trio

    from rootless.api import Client

    client = Client(rootless_paths)
    yield client
    trio.run(client.aclose)  # each test's trio run is over by now


@pytest.fixture
def rootless_container(rootless_client: SyncClient) -> Iterator[ContainerFactory]:
    """Call as ``rootless_container(image, command, **run_options)``: a detached
    container, removed (stopped first) when the test ends, whether it passed or not."""
    started: list[SyncContainer] = []

    def start(
        image: str, command: Sequence[str] = (), **options: Unpack[RunKwargs]
    ) -> SyncContainer:
        container = rootless_client.run(image, command, detach=True, **options)
        started.append(container)
        return container

    yield start
    _remove(started)


def _remove(containers: list[SyncContainer]) -> None:
    from rootless.container.records import NoSuchContainer
    from rootless.errors import RootlessError

    failures = []
    for container in reversed(containers):
        try:
            container.remove(force=True)
        except NoSuchContainer:
            continue  # gone already (rm=True, or the test removed it)
        except RootlessError as e:
            failures.append(f"{container.id[:12]}: {e}")
    if failures:
        pytest.fail("cannot remove containers: " + "; ".join(failures), pytrace=False)
