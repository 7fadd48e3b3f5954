"""Pushing: blobs (existence check, cross-repository mount, monolithic or chunked upload)
and then the manifest (and, for an index, each child manifest first)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from rootless.errors import ImageError
from rootless.image.manifest import Descriptor, Index, parse_manifest
from rootless.image.reference import Reference
from rootless.registry._client import Body, ClientOptions, RegistryClient, open_client
from rootless.registry._progress import Phase, ProgressCallback, ProgressEvent, ignore_progress
from rootless.registry._pull import DEFAULT_PARALLEL, MANIFEST_CAP, blobs_of, run_bounded
from rootless.registry._store import BlobStore, digest_of, read_small_blob

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Unpack

_READ = 1 << 16
_OCTETS = "application/octet-stream"


def scope_push(repository: str, mount_from: str | None = None) -> str:
    scope = f"repository:{repository}:pull,push"
    return f"{scope} repository:{mount_from}:pull" if mount_from else scope


def _file_body(
    path: str | os.PathLike[str], size: int, on_read: Callable[[int], None]
) -> Callable[[], AsyncIterator[bytes]]:
    """A replayable streamed request body reading a store blob."""

    async def chunks() -> AsyncIterator[bytes]:
        done = 0
        with open(path, "rb") as blob:
            while done < size:
                data = blob.read(min(_READ, size - done))
                if not data:
                    raise ImageError(f"cannot push {path}: the store blob is shorter than {size}")
                done += len(data)
                on_read(done)
                yield data

    return chunks


class _Pusher:
    def __init__(
        self,
        client: RegistryClient,
        repository: str,
        store: BlobStore,
        progress: ProgressCallback,
        mount_from: str | None,
        chunk_size: int | None,
    ) -> None:
        self.client = client
        self.repo = repository
        self.store = store
        self.progress = progress
        self.mount_from = mount_from
        self.chunk_size = chunk_size
        self.where = f"{client.registry}/{repository}"
        self.scope = scope_push(repository, mount_from)

    async def _expect(self, resp: httpx.Response, statuses: tuple[int, ...], action: str) -> None:
        if resp.status_code not in statuses:
            raise await self.client.fail(resp, action)
        await resp.aclose()

    def _location(self, resp: httpx.Response, action: str) -> httpx.URL:
        location = resp.headers.get("location")
        if not location:
            raise ImageError(f"{action}: {self.client.host} sent no upload location")
        return resp.url.join(location)

    async def blob(self, desc: Descriptor, kind: str) -> None:
        digest, size = desc.digest, desc.size
        action = f"cannot push {kind} {digest} to {self.where}"
        head = await self.client.send(
            "HEAD", f"/v2/{self.repo}/blobs/{digest}", scope=self.scope, action=action
        )
        await head.aclose()
        if head.status_code == 200:
            self.progress(ProgressEvent(kind, digest, Phase.EXISTS, size, size))
            return
        if head.status_code != 404:
            raise await self.client.fail(head, action)
        path = self.store.blob_path(digest)
        params = f"?mount={digest}&from={self.mount_from}" if self.mount_from else ""
        resp = await self.client.send(
            "POST", f"/v2/{self.repo}/blobs/uploads/{params}", scope=self.scope, action=action
        )
        if resp.status_code == 201 and self.mount_from:
            await resp.aclose()
            self.progress(ProgressEvent(kind, digest, Phase.MOUNTED, size, size))
            return
        if resp.status_code != 202:
            raise await self.client.fail(resp, action)
        await resp.aclose()
        location = self._location(resp, action)
        self.progress(ProgressEvent(kind, digest, Phase.START, 0, size))

        def advance(offset: int) -> Callable[[int], None]:
            return lambda done: self.progress(
                ProgressEvent(kind, digest, Phase.ADVANCE, offset + done, size)
            )

        body: Body = None
        headers = {"Content-Type": _OCTETS, "Content-Length": "0"}
        if self.chunk_size:
            with open(path, "rb") as blob:
                offset = 0
                while offset < size:
                    data = blob.read(min(self.chunk_size, size - offset))
                    if not data:
                        raise ImageError(f"{action}: the store blob is shorter than {size}")
                    resp = await self.client.send(
                        "PATCH",
                        location,
                        scope=self.scope,
                        action=action,
                        headers={
                            "Content-Type": _OCTETS,
                            "Content-Length": str(len(data)),
                            "Content-Range": f"{offset}-{offset + len(data) - 1}",
                        },
                        body=data,
                    )
                    await self._expect(resp, (202,), action)
                    location = self._location(resp, action)
                    offset += len(data)
                    advance(0)(offset)
        else:
            body = _file_body(path, size, advance(0))
            headers["Content-Length"] = str(size)
        resp = await self.client.send(
            "PUT",
            location.copy_add_param("digest", digest),
            scope=self.scope,
            action=action,
            headers=headers,
            body=body,
        )
        await self._expect(resp, (201, 204), action)
        self.progress(ProgressEvent(kind, digest, Phase.DONE, size, size))

    async def manifest(self, body: bytes, media_type: str, target: str, max_parallel: int) -> str:
        """Push the blobs a manifest (or an index's manifests) needs, then the manifest itself."""
        digest = digest_of(body)
        sep = "@" if target.startswith(("sha256:", "sha512:")) else ":"
        action = f"cannot push manifest {self.where}{sep}{target}"
        try:
            parsed = parse_manifest(body, media_type)
        except ImageError as exc:
            raise ImageError(f"{action}: {exc.message}", hint=exc.hint) from None
        if isinstance(parsed, Index):
            for child in parsed.manifests:
                child_body = read_small_blob(self.store, child.digest, MANIFEST_CAP)
                if digest_of(child_body) != child.digest:
                    raise ImageError(f"{action}: the stored manifest {child.digest} differs")
                await self.manifest(child_body, child.media_type, child.digest, max_parallel)
        else:

            def job(desc: Descriptor, kind: str) -> Callable[[], Awaitable[None]]:
                return lambda: self.blob(desc, kind)

            await run_bounded([job(d, kind) for d, kind in blobs_of(parsed)], max_parallel)
        resp = await self.client.send(
            "PUT",
            f"/v2/{self.repo}/manifests/{target}",
            scope=self.scope,
            action=action,
            headers={"Content-Type": media_type},
            body=body,
        )
        echoed = resp.headers.get("docker-content-digest", digest)
        await self._expect(resp, (201, 200, 204), action)
        if echoed != digest:
            raise ImageError(f"{action}: digest mismatch: sent {digest}, registry has {echoed}")
        self.progress(ProgressEvent("manifest", digest, Phase.DONE, len(body), len(body)))
        return digest


async def push_image(
    ref: Reference,
    store: BlobStore,
    manifest: bytes,
    media_type: str,
    *,
    progress: ProgressCallback | None = None,
    mount_from: str | None = None,
    chunk_size: int | None = None,
    max_parallel: int = DEFAULT_PARALLEL,
    **options: Unpack[ClientOptions],
) -> str:
    """Push *manifest* (an image manifest or an index) and every blob it needs to *ref*.

    Blobs come from *store*; for an index, its child manifests must be in the store too.
    *mount_from* names a repository of the same registry to mount blobs from;
    *chunk_size* switches to chunked uploads (PATCH) of that many bytes.
    *options* say how to reach the registry (TLS, credentials, retries).
    Returns the manifest's digest.
    """
    if ref.digest and ref.digest != digest_of(manifest):
        raise ImageError(f"cannot push {ref}: the manifest's digest differs")
    async with open_client(ref, **options) as client:
        pusher = _Pusher(
            client, ref.repository, store, progress or ignore_progress, mount_from, chunk_size
        )
        target = ref.digest or ref.tag or "latest"
        return await pusher.manifest(manifest, media_type, target, max_parallel)
