"""Registry fixtures: docker-registry without auth, with htpasswd, and behind a token service."""

from __future__ import annotations

import http.server
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from rootless.image.store import Store
from tests.registry._servers import TokenService, htpasswd_yaml, run_registry, send, serve

USER, PASSWORD = "alice", "s3cret"


@attrs.frozen
class TokenRegistry:
    host: str
    tokens: TokenService


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """An open docker-registry; yields "127.0.0.1:<port>"."""
    with run_registry(tmp_path / "registry") as host:
        yield host


@pytest.fixture
def basic_registry(tmp_path: Path) -> Iterator[str]:
    """A docker-registry with htpasswd basic auth for alice / s3cret."""
    root = tmp_path / "basic-registry"
    root.mkdir()
    with run_registry(root, htpasswd_yaml(root, {USER: PASSWORD})) as host:
        yield host


@pytest.fixture
def token_registry(tmp_path: Path) -> Iterator[TokenRegistry]:
    """A docker-registry with ``auth: token``, served by a token service in this process."""
    root = tmp_path / "token-registry"
    root.mkdir()
    tokens = TokenService(root, {USER: PASSWORD})

    def token(h: http.server.BaseHTTPRequestHandler) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        status, body = tokens.answer(
            h.headers.get("Authorization", ""),
            query.get("service", [""])[0],
            query.get("scope", []),
        )
        send(h, status, body)

    with (
        serve({"GET /token": token}) as auth_host,
        run_registry(root, tokens.yaml(f"http://{auth_host}/token")) as host,
    ):
        yield TokenRegistry(host, tokens)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")
