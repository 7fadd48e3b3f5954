"""Login, logout and authenticated pulls/pushes: htpasswd (basic) and a bearer token service."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest

from rootless.errors import ImageError
from rootless.image.reference import parse_reference
from rootless.image.store import Store
from rootless.registry import AuthFiles, Credentials, login, logout, pull_image, push_image
from tests.registry._images import (
    make_image,
    sha256,
    small_layer,
    store_image,
)
from tests.registry.conftest import PASSWORD, USER, TokenRegistry


@pytest.fixture
def auth_files(tmp_path: Path) -> AuthFiles:
    runtime = tmp_path / "run" / "containers" / "auth.json"
    docker = tmp_path / "home" / ".docker" / "config.json"
    return AuthFiles(runtime, (runtime, docker))


async def test_login_checks_then_saves(basic_registry: str, auth_files: AuthFiles) -> None:
    await login(basic_registry, USER, PASSWORD, tls_verify=False, auth_files=auth_files)
    path = auth_files.write_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc == {
        "auths": {
            basic_registry: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
        }
    }
    assert [p.name for p in path.parent.iterdir()] == ["auth.json", "auth.json.lock"]

    logout(basic_registry, auth_files=auth_files)
    assert json.loads(path.read_text()) == {"auths": {}}
    with pytest.raises(ImageError) as err:
        logout(basic_registry, auth_files=auth_files)
    assert str(err.value) == f"cannot log out of {basic_registry}: not logged in (in {path})"


async def test_login_with_wrong_password(basic_registry: str, auth_files: AuthFiles) -> None:
    with pytest.raises(ImageError) as err:
        await login(basic_registry, USER, "wrong", tls_verify=False, auth_files=auth_files)
    assert str(err.value) == (
        f"cannot log in to {basic_registry}: unauthorized: {basic_registry} rejected the "
        f'credentials of user "{USER}" (UNAUTHORIZED: authentication required); '
        f"check the password and run: rootless login {basic_registry}"
    )
    assert not auth_files.write_path.exists()


async def test_basic_auth_push_pull(
    basic_registry: str, auth_files: AuthFiles, store: Store, tmp_path: Path
) -> None:
    image = make_image([small_layer("basic")])
    store_image(store, image)
    ref = parse_reference(f"{basic_registry}/team/app:1")
    with pytest.raises(ImageError) as err:
        await push_image(
            ref, store, image.manifest, image.media_type, tls_verify=False, auth_files=auth_files
        )
    # Blobs go up in parallel, so the config or the layer may be the first to fail.
    blobs = "|".join(sha256(b) for b in (image.config, image.layers[0]))
    assert re.fullmatch(
        f"cannot push (config|layer) ({blobs}) to {basic_registry}/team/app: unauthorized: "
        f"{basic_registry} requires authentication; run: rootless login {basic_registry}",
        str(err.value),
    )
    # Credentials found in Docker's config.json, under Docker's key spelling.
    docker = auth_files.read_paths[1]
    docker.parent.mkdir(parents=True)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    docker.write_text(json.dumps({"auths": {f"http://{basic_registry}/v1/": {"auth": token}}}))
    await push_image(
        ref, store, image.manifest, image.media_type, tls_verify=False, auth_files=auth_files
    )
    fresh = Store(tmp_path / "fresh")
    await pull_image(ref, fresh, tls_verify=False, auth_files=auth_files)
    assert fresh.read_blob(sha256(image.layers[0])) == image.layers[0]


async def test_bearer_token_flow(
    token_registry: TokenRegistry, store: Store, tmp_path: Path
) -> None:
    host, tokens = token_registry.host, token_registry.tokens
    image = make_image([small_layer("token"), small_layer("two")])
    store_image(store, image)
    creds = Credentials(USER, PASSWORD)
    ref = parse_reference(f"{host}/public/app:1")
    await push_image(
        ref, store, image.manifest, image.media_type, tls_verify=False, credentials=creds
    )
    # One token for the whole push, fetched with the credentials, cached for every blob.
    assert tokens.requests == [{"user": USER, "scopes": ["repository:public/app:pull,push"]}]

    tokens.requests.clear()
    anonymous = AuthFiles(tmp_path / "none.json", (tmp_path / "none.json",))
    fresh = Store(tmp_path / "fresh")
    await pull_image(ref, fresh, tls_verify=False, auth_files=anonymous)
    assert tokens.requests == [{"user": None, "scopes": ["repository:public/app:pull"]}]
    for blob in image.layers:
        assert fresh.read_blob(sha256(blob)) == blob

    private = parse_reference(f"{host}/private/app:1")
    await push_image(
        private, store, image.manifest, image.media_type, tls_verify=False, credentials=creds
    )
    with pytest.raises(ImageError) as err:
        await pull_image(private, Store(tmp_path / "anon"), tls_verify=False, auth_files=anonymous)
    assert str(err.value).startswith(
        f"cannot pull manifest {host}/private/app:1: unauthorized: {host} requires authentication"
    )
    assert str(err.value).endswith(f"; run: rootless login {host}")


async def test_bearer_wrong_credentials(token_registry: TokenRegistry, tmp_path: Path) -> None:
    host = token_registry.host
    files = AuthFiles(tmp_path / "auth.json", (tmp_path / "auth.json",))
    with pytest.raises(ImageError) as err:
        await login(host, USER, "nope", tls_verify=False, auth_files=files)
    assert str(err.value) == (
        f'cannot log in to {host}: unauthorized: {host} rejected the credentials of user "{USER}"'
        f" (UNAUTHORIZED: invalid credentials); check the password and run: rootless login {host}"
    )
    assert not files.write_path.exists()
    await login(host, USER, PASSWORD, tls_verify=False, auth_files=files)
    assert files.write_path.exists()
