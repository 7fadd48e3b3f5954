"""``login`` (credentials checked against the registry, then saved) and ``logout``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rootless.errors import ImageError
from rootless.registry._client import RegistryClient
from rootless.registry.authfile import (
    AuthFiles,
    Credentials,
    normalize_key,
    remove_credentials,
    store_credentials,
)

if TYPE_CHECKING:
    import httpx


async def login(
    registry: str,
    username: str,
    password: str,
    *,
    tls_verify: bool = True,
    auth_files: AuthFiles | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Check *username*/*password* against *registry*; save them only if it accepts them.

    *registry* is ``host[:port]``, or ``host[:port]/namespace`` to keep credentials that
    apply only to repositories under that namespace.
    """
    creds = Credentials(username, password)
    host = normalize_key(registry).partition("/")[0]
    async with RegistryClient(
        host, credentials=creds, tls_verify=tls_verify, transport=transport
    ) as client:
        await client.check_credentials(f"cannot log in to {registry}")
    store_credentials(auth_files or AuthFiles.from_env(), registry, creds)


def logout(registry: str | None, *, auth_files: AuthFiles | None = None) -> None:
    """Forget the credentials of *registry*, or of every registry when it is None."""
    files = auth_files or AuthFiles.from_env()
    if not remove_credentials(files, registry) and registry is not None:
        raise ImageError(f"cannot log out of {registry}: not logged in (in {files.write_path})")
