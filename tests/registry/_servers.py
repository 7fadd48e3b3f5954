"""Peers for registry tests: Debian's docker-registry, a token service, a hostile fake.

Everything here is plain threads and subprocesses, stopped by the fixtures that start them.
"""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

# free_port is re-exported: tests elsewhere import it from here.
from tests.docker_registry import RegistryStartError
from tests.docker_registry import free_port as free_port
from tests.docker_registry import run_registry as _run_registry


@contextmanager
def run_registry(root: Path, auth_yaml: str = "") -> Iterator[str]:
    """tests.docker_registry's registry; a start failure is a pytest failure without a traceback."""
    with ExitStack() as stack:
        try:
            host = stack.enter_context(_run_registry(root, auth_yaml))
        except RegistryStartError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield host


def htpasswd_yaml(root: Path, users: dict[str, str]) -> str:
    if shutil.which("htpasswd") is None:
        pytest.fail("htpasswd not found; run: sudo apt-get install apache2-utils", pytrace=False)
    lines = [
        subprocess.run(
            ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
        ).stdout.strip()
        for user, password in users.items()
    ]
    path = root / "htpasswd"
    path.write_text("\n".join(lines) + "\n")
    return f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {path}\n"


# --- bearer tokens ---------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    """A token server for docker-registry's ``auth: token``: RS256 JWTs signed with openssl.

    ``users`` may push and pull everything; anonymous callers may pull ``public/*`` only.
    """

    def __init__(self, root: Path, users: dict[str, str]) -> None:
        self.users = users
        self.key = root / "token.key"
        self.cert = root / "token.crt"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
                *("-subj", "/CN=token-issuer", "-keyout", str(self.key), "-out", str(self.cert)),
            ],
            check=True,
            capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[dict[str, Any]] = []

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def answer(self, authorization: str, service: str, scopes: list[str]) -> tuple[int, bytes]:
        user = None
        if authorization.startswith("Basic "):
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if self.users.get(name) != password:
                body = {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]}
                return 401, json.dumps(body).encode()
            user = name
        self.requests.append({"user": user, "scopes": scopes})
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            wanted = actions.split(",")
            granted = (
                wanted
                if user
                else [a for a in wanted if name.startswith("public/") and a == "pull"]
            )
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": "test-issuer",
            "sub": user or "",
            "aud": service,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": f"{now}-{len(self.requests)}",
            "access": access,
        }
        return 200, json.dumps({"token": self.sign(claims), "expires_in": 300}).encode()

    def yaml(self, realm: str) -> str:
        return (
            "auth:\n  token:\n"
            f"    realm: {realm}\n    service: test-registry\n    issuer: test-issuer\n"
            f"    rootcertbundle: {self.cert}\n"
        )


# --- a programmable fake HTTP server ---------------------------------------------------

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextmanager
def serve(routes: Mapping[str, Handler]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1; ``routes`` maps "METHOD /path" (path without query) to a
    handler; unknown routes get 404. Yields "127.0.0.1:<port>"."""

    class _Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _route(self) -> None:
            key = f"{self.command} {self.path.split('?')[0]}"
            handler = routes.get(key)
            if handler is None:
                send(self, 404, b'{"errors":[{"code":"NOT_FOUND","message":"no route"}]}')
            else:
                handler(self)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _route

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def send(
    h: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
) -> None:
    """Answer with *body*; *length* may claim a different Content-Length (a truncated body)."""
    h.send_response(status)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    for k, v in all_headers.items():
        h.send_header(k, v)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    if length is not None and length != len(body):
        h.send_header("Connection", "close")
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)
    if length is not None and length != len(body):
        h.close_connection = True
