"""The transport seam: a bearer flow against httpx.MockTransport (token cache, access_token)."""

from __future__ import annotations

import httpx

from rootless.registry import Credentials, RegistryClient


async def test_bearer_token_cached_per_scope() -> None:
    token_calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            token_calls.append(request.url.params.get("scope", ""))
            assert request.headers["Authorization"].startswith("Basic ")
            return httpx.Response(200, json={"access_token": "t-" + str(len(token_calls))})
        if request.headers.get("Authorization", "").startswith("Bearer t-"):
            return httpx.Response(200, json={})
        challenge = 'Bearer realm="https://auth.example/token",service="reg"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    transport = httpx.MockTransport(handler)
    async with RegistryClient(
        "reg.example", credentials=Credentials("u", "p"), transport=transport
    ) as client:
        for _ in range(3):
            resp = await client.send(
                "GET", "/v2/a/tags/list", scope="repository:a:pull", action="x"
            )
            assert resp.status_code == 200
            await resp.aclose()
        resp = await client.send("GET", "/v2/b/tags/list", scope="repository:b:pull", action="x")
        await resp.aclose()
    assert token_calls == ["repository:a:pull", "repository:b:pull"]
