"""Pulling: manifest (through an index to one platform), config and layers into the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from rootless.errors import ImageError
from rootless.image import mediatypes as mt
from rootless.image.manifest import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    choose_platform,
    host_platform,
    parse_config,
    parse_manifest,
)
from rootless.image.reference import Reference
from rootless.registry._client import ClientOptions, RegistryClient, open_client, read_capped
from rootless.registry._progress import Phase, ProgressCallback, ProgressEvent, ignore_progress
from rootless.registry._store import BlobStore, digest_of, hasher, read_small_blob, save_bytes

if TYPE_CHECKING:
    from typing_extensions import Unpack

MANIFEST_CAP = 4 << 20
CONFIG_CAP = 8 << 20
DEFAULT_PARALLEL = 3
_ACCEPT = ", ".join(mt.ACCEPT_MANIFESTS)


@attrs.frozen
class PulledImage:
    """What a pull put into the store (blobs only; nothing is unpacked)."""

    reference: Reference  # as pulled from (after any registries.conf rewrite)
    manifest_digest: str
    manifest: Manifest
    config: ImageConfig
    index_digest: str | None = None  # set when the reference named an index
    platform: Platform | None = None  # the platform of the entry chosen from that index


def scope_pull(repository: str) -> str:
    return f"repository:{repository}:pull"


async def fetch_manifest(
    client: RegistryClient, repository: str, reference: str, where: str
) -> tuple[bytes, Manifest | Index, str]:
    """GET a manifest by tag or digest; returns (body, parsed, verified digest)."""
    action = f"cannot pull manifest {where}"
    resp = await client.send(
        "GET",
        f"/v2/{repository}/manifests/{reference}",
        scope=scope_pull(repository),
        action=action,
        headers={"Accept": _ACCEPT},
    )
    if resp.status_code != 200:
        raise await client.fail(resp, action)
    content_type = resp.headers.get("content-type", "")
    header_digest = resp.headers.get("docker-content-digest", "")
    body = await read_capped(
        resp,
        MANIFEST_CAP,
        lambda: ImageError(
            f"{action}: manifest is larger than the {MANIFEST_CAP >> 20} MiB limit",
            hint="the registry may be hostile or broken",
        ),
    )
    want = reference if reference.startswith(("sha256:", "sha512:")) else header_digest
    algorithm = want.partition(":")[0] if want.startswith("sha512:") else "sha256"
    digest = digest_of(body, algorithm)
    if want and want.startswith(f"{algorithm}:") and digest != want:
        raise ImageError(f"{action}: digest mismatch: expected {want}, received {digest}")
    try:
        parsed = parse_manifest(body, content_type)
    except ImageError as exc:
        raise ImageError(f"{action}: {exc.message}", hint=exc.hint) from None
    return body, parsed, digest


async def fetch_blob(
    client: RegistryClient,
    repository: str,
    desc: Descriptor,
    store: BlobStore,
    *,
    kind: str,
    progress: ProgressCallback,
    cap: int | None = None,
) -> None:
    """Stream one blob into the store, verifying size and digest; restarts after a drop."""
    import httpx
    import trio

    action = f"cannot pull {kind} {desc.digest} from {client.registry}/{repository}"
    if store.has_blob(desc.digest):
        progress(ProgressEvent(kind, desc.digest, Phase.EXISTS, desc.size, desc.size))
        return
    if cap is not None and desc.size > cap:
        raise ImageError(f"{action}: {kind} of {desc.size} bytes is over the {cap >> 20} MiB limit")
    for attempt in range(client.retry.attempts):
        done = 0
        progress(ProgressEvent(kind, desc.digest, Phase.START, 0, desc.size))
        resp = await client.send(
            "GET",
            f"/v2/{repository}/blobs/{desc.digest}",
            scope=scope_pull(repository),
            action=action,
            headers={"Accept-Encoding": "identity"},
        )
        if resp.status_code != 200:
            raise await client.fail(resp, action)
        try:
            with store.blob_writer(desc.digest, desc.size) as writer:
                h = hasher(desc.digest)
                async for chunk in resp.aiter_raw():
                    done += len(chunk)
                    if done > desc.size:
                        raise ImageError(
                            f"{action}: digest mismatch: more than the {desc.size} bytes expected"
                        )
                    h.update(chunk)
                    writer.write(chunk)
                    progress(ProgressEvent(kind, desc.digest, Phase.ADVANCE, done, desc.size))
                if done < desc.size:
                    raise ImageError(f"{action}: truncated: received {done} of {desc.size} bytes")
                received = f"{desc.digest.partition(':')[0]}:{h.hexdigest()}"
                if received != desc.digest:
                    raise ImageError(f"{action}: digest mismatch: received {received}")
        except httpx.TransportError as exc:
            if attempt + 1 == client.retry.attempts:
                raise ImageError(
                    f"{action}: truncated: received {done} of {desc.size} bytes"
                    f" before the connection dropped ({exc or type(exc).__name__})"
                ) from None
            progress(ProgressEvent(kind, desc.digest, Phase.RETRY, done, desc.size))
            await trio.sleep(client.retry.delay(attempt))
            continue
        finally:
            await resp.aclose()
        progress(ProgressEvent(kind, desc.digest, Phase.DONE, desc.size, desc.size))
        return


async def run_bounded(jobs: list[Callable[[], Awaitable[None]]], limit: int) -> None:
    """Run *jobs* concurrently, at most *limit* at a time; the first ImageError cancels the rest."""
    import trio

    limiter = trio.CapacityLimiter(max(1, limit))
    failures: list[ImageError] = []

    async def run(job: Callable[[], Awaitable[None]], cancel: trio.CancelScope) -> None:
        async with limiter:
            try:
                await job()
            except ImageError as exc:
                failures.append(exc)
                cancel.cancel()

    async with trio.open_nursery() as nursery:
        for job in jobs:
            nursery.start_soon(run, job, nursery.cancel_scope)
    if failures:
        raise failures[0]


def blobs_of(manifest: Manifest) -> list[tuple[Descriptor, str]]:
    """The config and the layers, each once, with their kind ("config" or "layer")."""
    layers = {layer.digest: layer for layer in manifest.layers}
    return [(manifest.config, "config"), *((layer, "layer") for layer in layers.values())]


async def pull_image(
    ref: Reference,
    store: BlobStore,
    *,
    platform: Platform | None = None,
    progress: ProgressCallback | None = None,
    max_parallel: int = DEFAULT_PARALLEL,
    **options: Unpack[ClientOptions],
) -> PulledImage:
    """Fetch *ref*'s manifest (choosing *platform* from an index), config and layers.

    Manifests, the index, the config and the layers all land in *store* as verified
    blobs. *options* say how to reach the registry (TLS, credentials, retries).
    """
    report = progress or ignore_progress
    repo, where = ref.repository, str(ref)
    async with open_client(ref, **options) as client:
        body, parsed, digest = await fetch_manifest(
            client, repo, ref.digest or ref.tag or "latest", where
        )
        index_digest, chosen = None, None
        if isinstance(parsed, Index):
            try:
                entry = choose_platform(parsed, platform or host_platform())
            except ImageError as exc:
                raise ImageError(f"cannot pull {where}: {exc.message}", hint=exc.hint) from None
            save_bytes(store, digest, body)
            index_digest, chosen = digest, entry.platform
            child = f"{ref.name}@{entry.digest}"
            body, parsed, digest = await fetch_manifest(client, repo, entry.digest, child)
            if not isinstance(parsed, Manifest):
                raise ImageError(f"cannot pull manifest {child}: an index inside an index")
        manifest = parsed
        save_bytes(store, digest, body)
        report(ProgressEvent("manifest", digest, Phase.DONE, len(body), len(body)))

        def job(desc: Descriptor, kind: str) -> Callable[[], Awaitable[None]]:
            cap = CONFIG_CAP if kind == "config" else None
            return lambda: fetch_blob(
                client, repo, desc, store, kind=kind, progress=report, cap=cap
            )

        await run_bounded([job(d, kind) for d, kind in blobs_of(manifest)], max_parallel)
    try:
        config = parse_config(read_small_blob(store, manifest.config.digest, CONFIG_CAP))
    except ImageError as exc:
        raise ImageError(
            f"cannot pull config {manifest.config.digest} from {ref.name}: {exc.message}",
            hint=exc.hint,
        ) from None
    return PulledImage(ref, digest, manifest, config, index_digest, chosen)
