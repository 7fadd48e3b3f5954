"""Registry client for the OCI distribution spec: pull, push, login.

Importing this package is cheap: httpx and trio are imported only when a request is made.
Manifests, configs, descriptors and platforms are the image model's
(``rootless.image.manifest``); media types are in ``rootless.image.mediatypes``.

Public API::

    pull_image(ref, store, *, platform, progress, tls_verify, ...) -> PulledImage
    push_image(ref, store, manifest, media_type, *, progress, tls_verify, ...) -> str
    login(registry, username, password, *, tls_verify, auth_files)
    logout(registry, *, auth_files)
    tls_verify_for(registry, flag, conf=None) -> bool
"""

from rootless.registry._client import RegistryClient, RetryPolicy
from rootless.registry._login import login, logout
from rootless.registry._progress import Phase, ProgressCallback, ProgressEvent
from rootless.registry._pull import PulledImage, pull_image
from rootless.registry._push import push_image
from rootless.registry._store import BlobStore
from rootless.registry._tls import tls_verify_for
from rootless.registry.authfile import AuthFiles, Credentials

__all__ = [
    "AuthFiles",
    "BlobStore",
    "Credentials",
    "Phase",
    "ProgressCallback",
    "ProgressEvent",
    "PulledImage",
    "RegistryClient",
    "RetryPolicy",
    "login",
    "logout",
    "pull_image",
    "push_image",
    "tls_verify_for",
]
