"""A session with one registry: scheme choice, authentication, retries and redirects.

Every request goes through :meth:`RegistryClient.send`, which

* pings ``/v2/`` once to learn the scheme and the authentication challenge;
* adds credentials: HTTP basic, or a bearer token fetched from the challenge's realm
  (anonymously or with the credentials) and cached per scope;
* follows redirects of GET and HEAD itself, sending ``Authorization`` only to the
  registry's own origin, never to the storage host it redirects to;
* retries with exponential backoff on HTTP 5xx and on connection errors, a bounded
  number of times.

httpx is imported here only inside methods; the transport is a parameter so tests can
swap in ``httpx.MockTransport``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypedDict

import attrs

from rootless.errors import ImageError
from rootless.registry._challenge import Challenge, parse_challenge
from rootless.registry._errors import connect_error, status_error
from rootless.registry.authfile import AuthFiles, Credentials, lookup

if TYPE_CHECKING:
    import httpx
    import trio
    from typing_extensions import Unpack

    from rootless.image.reference import Reference

RETRY_STATUSES = frozenset({500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
TOKEN_CAP = 1 << 20
ERROR_BODY_CAP = 64 << 10

Body = bytes | Callable[[], AsyncIterator[bytes]] | None


@attrs.frozen
class RetryPolicy:
    attempts: int = 3  # tries in all, so attempts - 1 retries
    backoff: float = 0.25  # seconds before the first retry, doubled each time

    def delay(self, attempt: int) -> float:
        return float(self.backoff * (2**attempt))


DEFAULT_RETRY = RetryPolicy()


def api_host(registry: str) -> str:
    """The host serving the API: Docker Hub's API is not at docker.io itself."""
    return "registry-1.docker.io" if registry == "docker.io" else registry


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port)


async def read_capped(resp: httpx.Response, cap: int, too_big: Callable[[], ImageError]) -> bytes:
    """Read a streamed response body of at most *cap* bytes, then close it."""
    try:
        length = resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > cap:
            raise too_big()
        buf = bytearray()
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) > cap:
                raise too_big()
        return bytes(buf)
    finally:
        await resp.aclose()


async def read_prefix(resp: httpx.Response, cap: int) -> bytes:
    """Read at most *cap* bytes of a body that is only for an error message, then close it."""
    buf = bytearray()
    try:
        async for chunk in resp.aiter_bytes():
            buf += chunk
            if len(buf) >= cap:
                break
    finally:
        await resp.aclose()
    return bytes(buf[:cap])


@attrs.frozen
class _Token:
    value: str
    expires: float


class RegistryClient:
    """One registry; use as ``async with RegistryClient("host:port") as client``."""

    def __init__(
        self,
        registry: str,
        *,
        credentials: Credentials | None = None,
        tls_verify: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.credentials = credentials
        self.tls_verify = tls_verify
        self.retry = retry
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._base: httpx.URL | None = None
        self._challenge: Challenge | None = None
        self._tokens: dict[str, _Token] = {}
        self._token_lock: trio.Lock | None = None

    async def __aenter__(self) -> RegistryClient:
        import httpx
        import trio

        self._token_lock = trio.Lock()
        self._http = httpx.AsyncClient(
            transport=self._transport,
            verify=self.tls_verify,
            timeout=httpx.Timeout(60.0, connect=15.0),
            follow_redirects=False,
            headers={"User-Agent": "rootless"},
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("RegistryClient used outside 'async with'")
        return self._http

    def url(self, path: str) -> httpx.URL:
        """The absolute URL of an API path such as ``/v2/name/manifests/tag``."""
        if self._base is None:
            raise RuntimeError("RegistryClient.url() before the ping")
        return self._base.join(path)

    async def ping(self) -> None:
        """GET /v2/ once: pick https (or http if TLS is not verified), learn the challenge."""
        import httpx
        import trio

        if self._base is not None:
            return
        schemes = ("https",) if self.tls_verify else ("https", "http")
        last: BaseException | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                await trio.sleep(self.retry.delay(attempt - 1))
            for scheme in schemes:
                base = httpx.URL(f"{scheme}://{self.host}")
                try:
                    resp = await self.http.get(base.join("/v2/"))
                except httpx.TransportError as exc:
                    last = exc
                    continue
                if resp.status_code in RETRY_STATUSES:
                    last = ImageError(f"{self.host} answered HTTP {resp.status_code} on /v2/")
                    break
                if resp.status_code not in (200, 401):
                    raise ImageError(
                        f"cannot use registry {self.host}: HTTP {resp.status_code} on /v2/",
                        hint="is this an OCI distribution (docker v2) registry?",
                    )
                self._base = base
                header = resp.headers.get("www-authenticate", "")
                self._challenge = parse_challenge(header) if resp.status_code == 401 else None
                return
        if isinstance(last, ImageError):
            raise last
        assert last is not None
        raise connect_error(self.host, last, tls_verify=self.tls_verify)

    def _sent_user(self) -> str | None:
        return self.credentials.username if self.credentials and self._challenge else None

    def _basic(self) -> dict[str, str]:
        if self.credentials is None:
            return {}
        raw = f"{self.credentials.username}:{self.credentials.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    async def _auth_headers(self, scope: str, action: str) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return self._basic()
        if challenge.scheme == "bearer":
            return {"Authorization": f"Bearer {await self._token(challenge, scope, action)}"}
        return {}

    async def _token(self, challenge: Challenge, scope: str, action: str) -> str:
        assert self._token_lock is not None
        async with self._token_lock:
            cached = self._tokens.get(scope)
            if cached is not None and cached.expires > time.monotonic():
                return cached.value
            token = await self._fetch_token(challenge, scope, action)
            self._tokens[scope] = token
            return token.value

    async def _fetch_token(self, challenge: Challenge, scope: str, action: str) -> _Token:
        import httpx

        realm = challenge.realm
        if not realm.startswith(("https://", "http://")):
            raise ImageError(f'{action}: {self.host} sent a bearer challenge with realm "{realm}"')
        params = [("service", challenge.params["service"])] if "service" in challenge.params else []
        params += [("scope", s) for s in scope.split()]
        url = httpx.URL(realm, params=params)
        resp = await self._send_retrying(lambda: self._send_once("GET", url, self._basic(), None))
        if resp.status_code != 200:
            body = await read_prefix(resp, ERROR_BODY_CAP)
            user = self.credentials.username if self.credentials else None
            raise status_error(action, self.host, resp.status_code, body, user=user)
        body = await read_capped(
            resp, TOKEN_CAP, lambda: ImageError(f"{action}: token from {realm} is over 1 MiB")
        )
        try:
            doc = json.loads(body)
            value = doc.get("token") or doc.get("access_token")
            expires_in = int(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            raise ImageError(f"{action}: the token service {realm} sent no token")
        # Renew a little early so a token does not expire between check and use.
        return _Token(value, time.monotonic() + max(expires_in - 10, 1))

    async def _send_once(
        self,
        method: str,
        url: httpx.URL,
        auth: Mapping[str, str],
        body: Body,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request, following GET/HEAD redirects; credentials only go to the first origin."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            all_headers = dict(headers or {})
            if _origin(url) == origin:
                all_headers.update(auth)
            content = body() if callable(body) else body
            request = self.http.build_request(method, url, headers=all_headers, content=content)
            resp = await self.http.send(request, stream=True)
            location = resp.headers.get("location")
            if resp.status_code not in REDIRECT_STATUSES or method not in ("GET", "HEAD"):
                return resp
            await resp.aclose()
            if not location:
                raise ImageError(f"{self.host} sent a redirect without a location for {url.path}")
            url = url.join(location)
        raise ImageError(f"too many redirects from {self.host} for {url.path}")

    async def _send_retrying(
        self, attempt_once: Callable[[], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        import httpx
        import trio

        for attempt in range(self.retry.attempts):
            last = attempt + 1 == self.retry.attempts
            try:
                resp = await attempt_once()
            except httpx.TransportError as exc:
                if last:
                    raise connect_error(self.host, exc, tls_verify=self.tls_verify) from None
            else:
                if resp.status_code not in RETRY_STATUSES or last:
                    return resp
                await resp.aclose()
            await trio.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    async def send(
        self,
        method: str,
        path_or_url: str | httpx.URL,
        *,
        scope: str,
        action: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
    ) -> httpx.Response:
        """Send an authenticated request and return the streamed response (close it)."""
        await self.ping()
        url = self.url(path_or_url) if isinstance(path_or_url, str) else path_or_url

        async def once() -> httpx.Response:
            auth = await self._auth_headers(scope, action)
            resp = await self._send_once(method, url, auth, body, headers)
            challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            if resp.status_code != 401 or challenge is None:
                return resp
            # The token may have expired or the registry wants another scope: one fresh try.
            await resp.aclose()
            self._challenge = challenge
            self._tokens.pop(scope, None)
            auth = await self._auth_headers(scope, action)
            return await self._send_once(method, url, auth, body, headers)

        return await self._send_retrying(once)

    async def fail(self, resp: httpx.Response, action: str) -> ImageError:
        """Read an unexpected answer's (capped) error body and build the error to raise."""
        body = b"" if resp.request.method == "HEAD" else await read_prefix(resp, ERROR_BODY_CAP)
        await resp.aclose()
        return status_error(action, self.host, resp.status_code, body, user=self._sent_user())

    async def check_credentials(self, action: str) -> None:
        """Prove the credentials work: GET /v2/ with them (a bearer token without scope)."""
        resp = await self.send("GET", "/v2/", scope="", action=action)
        if resp.status_code != 200:
            raise await self.fail(resp, action)
        await resp.aclose()


class ClientOptions(TypedDict, total=False):
    """How ``pull_image`` and ``push_image`` reach the registry: open_client's keywords.

    *credentials* default to the auth files' entry for the registry; *transport*
    is for tests (``httpx.MockTransport``).
    """

    tls_verify: bool
    credentials: Credentials | None
    auth_files: AuthFiles | None
    transport: httpx.AsyncBaseTransport | None
    retry: RetryPolicy


def open_client(ref: Reference, **options: Unpack[ClientOptions]) -> RegistryClient:
    """A client for *ref*'s registry with *credentials*, else those the auth files hold."""
    credentials = options.get("credentials")
    if credentials is None:
        files = options.get("auth_files") or AuthFiles.from_env()
        credentials = lookup(files, ref.registry, ref.repository)
    return RegistryClient(
        ref.registry,
        credentials=credentials,
        tls_verify=options.get("tls_verify", True),
        transport=options.get("transport"),
        retry=options.get("retry", DEFAULT_RETRY),
    )
