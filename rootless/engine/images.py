"""Image operations: open the store, resolve a name, pull."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rootless._paths import StoragePaths
from rootless.errors import ImageError
from rootless.image import registries_conf
from rootless.image.store import ImageRecord, Store
from rootless.runtime.userns import in_userns

if TYPE_CHECKING:
    from rootless.image.manifest import Platform
    from rootless.registry import ProgressEvent


def open_store(paths: StoragePaths | None = None) -> Store:
    """The user's image store; inside the user namespace layers keep their owners."""
    paths = paths or StoragePaths.from_env()
    return Store(paths.images, preserve_owner=in_userns())


def image_event(store: Store, status: str, image_id: str, name: str = "") -> None:
    """Append an image event (pull, push, tag, untag, remove, build) to the events log."""
    from rootless._events import emit

    emit(store.root.parent, "image", status, id=image_id.partition(":")[2] or image_id, name=name)


def search_registries() -> tuple[str, ...]:
    """Where a short name is looked up locally: ``localhost`` first, as Podman does."""
    return ("localhost", *registries_conf.load().unqualified_search())


def find_local(store: Store, name: str) -> ImageRecord | None:
    """The local image ``name`` (a name, ``name@digest`` or a full or short ID) means:
    short names try ``localhost/`` first (images made by build, commit, import and tag),
    then the search registries."""
    return store.find_image(name, search_registries=search_registries())


async def pull(
    name: str,
    store: Store,
    *,
    platform: Platform | None = None,
    tls_verify: bool | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> ImageRecord:
    """Pull ``name`` (trying each search registry for a short name) and record it.

    Layers are unpacked into the store as part of recording; run inside the user
    namespace (``run_in_userns``) so that their owners are kept.
    """
    from rootless.registry import pull_image

    conf = registries_conf.load()
    refs = conf.candidates(name)
    errors: list[str] = []
    for ref in refs:
        if conf.is_blocked(ref):
            errors.append(f"{ref}: blocked by registries.conf")
            continue
        source = conf.rewrite(ref)
        verify = tls_verify if tls_verify is not None else not conf.is_insecure(source.registry)
        try:
            with store.session():
                pulled = await pull_image(
                    source, store, platform=platform, progress=progress, tls_verify=verify
                )
                record = store.record_image(
                    pulled.manifest_digest, names=[ref], index_digest=pulled.index_digest
                )
            image_event(store, "pull", record.id, str(ref))
            return record
        except ImageError as e:
            if len(refs) == 1:
                raise
            errors.append(str(e))
    raise ImageError(
        f"cannot pull {name}: " + "; ".join(errors),
        hint="use a fully qualified name (registry/repository:tag)",
    )
