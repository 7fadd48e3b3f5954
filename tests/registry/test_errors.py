"""Failures, each with its exact message: hostile or broken registries and user mistakes."""

from __future__ import annotations

import http.server
import json
from pathlib import Path
from typing import Any

import pytest

from rootless.errors import ImageError
from rootless.image.mediatypes import OCI_MANIFEST
from rootless.image.reference import parse_reference
from rootless.image.store import Store
from rootless.registry import Phase, ProgressEvent, RetryPolicy, pull_image
from tests.registry._images import Image, make_image, sha256, small_layer
from tests.registry._servers import free_port, send, serve

FAST = RetryPolicy(attempts=3, backoff=0.01)
Handler = http.server.BaseHTTPRequestHandler


def _fake(
    image: Image, layer_body: bytes | None = None, *, length: int | None = None
) -> dict[str, Any]:
    """Routes serving *image* under test/img:v1, with the layer replaced by *layer_body*."""
    layer = image.layers[0]

    def ping(h: Handler) -> None:
        send(h, 200, b"{}")

    def manifest(h: Handler) -> None:
        send(h, 200, image.manifest, {"Content-Type": image.media_type})

    def config(h: Handler) -> None:
        send(h, 200, image.config, {"Content-Type": "application/octet-stream"})

    def blob(h: Handler) -> None:
        send(h, 200, layer if layer_body is None else layer_body, length=length)

    return {
        "GET /v2/": ping,
        "GET /v2/test/img/manifests/v1": manifest,
        f"GET /v2/test/img/blobs/{sha256(image.config)}": config,
        f"GET /v2/test/img/blobs/{sha256(layer)}": blob,
    }


async def _pull_error(host: str, store: Store, tag: str = "v1", **kwargs: Any) -> str:
    with pytest.raises(ImageError) as err:
        await pull_image(
            parse_reference(f"{host}/test/img:{tag}"),
            store,
            tls_verify=False,
            retry=FAST,
            **kwargs,
        )
    return str(err.value)


def _no_partial_blobs(store: Store) -> None:
    # The store writes blobs under tmp/ and renames them into blobs/ once verified.
    assert list((store.root / "tmp").iterdir()) == []


async def test_digest_mismatch(store: Store) -> None:
    image = make_image([small_layer("real")])
    wrong = bytearray(image.layers[0])
    wrong[-1] ^= 0xFF
    with serve(_fake(image, bytes(wrong))) as host:
        message = await _pull_error(host, store)
    layer = sha256(image.layers[0])
    assert message == (
        f"cannot pull layer {layer} from {host}/test/img: "
        f"digest mismatch: received {sha256(bytes(wrong))}"
    )
    assert not store.has_blob(layer)
    _no_partial_blobs(store)


async def test_truncated_blob(store: Store) -> None:
    image = make_image([small_layer("x" * 5000)])
    layer = image.layers[0]
    with serve(_fake(image, layer[:40], length=len(layer))) as host:
        message = await _pull_error(host, store)
    assert message.startswith(
        f"cannot pull layer {sha256(layer)} from {host}/test/img: truncated: "
        f"received 40 of {len(layer)} bytes before the connection dropped"
    )
    assert not store.has_blob(sha256(layer))
    _no_partial_blobs(store)


async def test_short_blob_without_a_drop(store: Store) -> None:
    image = make_image([small_layer("y" * 5000)])
    layer = image.layers[0]
    with serve(_fake(image, layer[:40])) as host:
        message = await _pull_error(host, store)
    assert message == (
        f"cannot pull layer {sha256(layer)} from {host}/test/img: truncated: "
        f"received 40 of {len(layer)} bytes"
    )


async def test_oversized_manifest(store: Store) -> None:
    huge = json.dumps({"schemaVersion": 2, "pad": "x" * (5 << 20)}).encode()

    def manifest(h: Handler) -> None:
        send(h, 200, huge, {"Content-Type": OCI_MANIFEST})

    routes = {"GET /v2/": lambda h: send(h, 200, b"{}"), "GET /v2/test/img/manifests/v1": manifest}
    with serve(routes) as host:
        message = await _pull_error(host, store)
    assert message == (
        f"cannot pull manifest {host}/test/img:v1: manifest is larger than the 4 MiB limit;"
        " the registry may be hostile or broken"
    )


async def test_unknown_media_type(store: Store) -> None:
    body = b'{"schemaVersion": 2, "layers": []}'

    def manifest(h: Handler) -> None:
        send(h, 200, body, {"Content-Type": "application/vnd.example.thing+json"})

    routes = {"GET /v2/": lambda h: send(h, 200, b"{}"), "GET /v2/test/img/manifests/v1": manifest}
    with serve(routes) as host:
        message = await _pull_error(host, store)
    assert message == (
        f"cannot pull manifest {host}/test/img:v1: unsupported manifest media type "
        "'application/vnd.example.thing+json'; rootless reads OCI and Docker schema 2 images"
    )


async def test_manifest_digest_mismatch_by_digest(store: Store) -> None:
    image = make_image([small_layer("m")])
    bogus = "sha256:" + "0" * 64

    def manifest(h: Handler) -> None:
        send(h, 200, image.manifest, {"Content-Type": image.media_type})

    routes = {
        "GET /v2/": lambda h: send(h, 200, b"{}"),
        f"GET /v2/test/img/manifests/{bogus}": manifest,
    }
    with serve(routes) as host, pytest.raises(ImageError) as err:
        await pull_image(parse_reference(f"{host}/test/img@{bogus}"), store, tls_verify=False)
    assert str(err.value) == (
        f"cannot pull manifest {host}/test/img@{bogus}: digest mismatch: "
        f"expected {bogus}, received {image.digest}"
    )


async def test_registry_down(store: Store) -> None:
    host = f"127.0.0.1:{free_port()}"
    message = await _pull_error(host, store)
    assert message == (
        f"cannot connect to registry {host}: connection refused; "
        "check that the registry is running and the host and port are right"
    )


async def test_unknown_tag(registry: str, store: Store) -> None:
    message = await _pull_error(registry, store, tag="nope")
    assert message == (
        f"cannot pull manifest {registry}/test/img:nope: not found on {registry} "
        "(MANIFEST_UNKNOWN: manifest unknown); check the name and tag"
    )


async def test_retries_5xx_then_succeeds(store: Store) -> None:
    image = make_image([small_layer("flaky")])
    routes = _fake(image)
    failures = {"left": 2}
    real_blob = routes[f"GET /v2/test/img/blobs/{sha256(image.layers[0])}"]

    def flaky(h: Handler) -> None:
        if failures["left"]:
            failures["left"] -= 1
            send(h, 503, b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}')
        else:
            real_blob(h)

    routes[f"GET /v2/test/img/blobs/{sha256(image.layers[0])}"] = flaky
    with serve(routes) as host:
        await pull_image(
            parse_reference(f"{host}/test/img:v1"), store, tls_verify=False, retry=FAST
        )
    assert failures["left"] == 0
    assert store.has_blob(sha256(image.layers[0]))


async def test_gives_up_after_bounded_5xx(store: Store) -> None:
    image = make_image([small_layer("down")])
    routes = _fake(image)
    calls: list[int] = []

    def broken(h: Handler) -> None:
        calls.append(1)
        send(h, 502, b"bad gateway", {"Content-Type": "text/plain"})

    routes[f"GET /v2/test/img/blobs/{sha256(image.layers[0])}"] = broken
    with serve(routes) as host:
        message = await _pull_error(host, store)
    assert len(calls) == FAST.attempts
    assert message == (
        f"cannot pull layer {sha256(image.layers[0])} from {host}/test/img: "
        f"{host} answered HTTP 502 (bad gateway)"
    )


async def test_redirect_to_another_host_drops_credentials(store: Store, tmp_path: Path) -> None:
    image = make_image([small_layer("redirected")])
    layer = image.layers[0]
    seen: dict[str, str | None] = {}

    def storage(h: Handler) -> None:
        seen["storage"] = h.headers.get("Authorization")
        send(h, 200, layer)

    with serve({f"GET /blobs/{sha256(layer)}": storage}) as storage_host:
        routes = _fake(image)
        basic = 'Basic realm="fake"'

        def guarded(inner: Any) -> Any:
            def handler(h: Handler) -> None:
                if h.headers.get("Authorization") is None:
                    send(h, 401, b"{}", {"WWW-Authenticate": basic})
                else:
                    inner(h)

            return handler

        def redirect(h: Handler) -> None:
            seen["registry"] = h.headers.get("Authorization")
            send(h, 307, b"", {"Location": f"http://{storage_host}/blobs/{sha256(layer)}"})

        routes = {k: guarded(v) for k, v in routes.items()}
        routes[f"GET /v2/test/img/blobs/{sha256(layer)}"] = guarded(redirect)
        from rootless.registry import Credentials

        events: list[ProgressEvent] = []
        with serve(routes) as host:
            await pull_image(
                parse_reference(f"{host}/test/img:v1"),
                store,
                tls_verify=False,
                credentials=Credentials("bob", "pw"),
                progress=events.append,
            )
    assert seen["registry"] is not None and seen["registry"].startswith("Basic ")
    assert seen["storage"] is None
    assert store.has_blob(sha256(layer))
    assert any(e.phase is Phase.DONE and e.digest == sha256(layer) for e in events)
