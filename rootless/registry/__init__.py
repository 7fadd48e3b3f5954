"""Registry client for the OCI distribution spec: pull, push, login.

Importing this package is cheap: httpx and trio are imported only when a request is made.

Public API::

    pull_image(ref, store, *, platform, progress, tls_verify, ...) -> PulledImage
    push_image(ref, store, manifest, media_type, *, progress, tls_verify, ...) -> str
    login(registry, username, password, *, tls_verify, auth_files)
    logout(registry, *, auth_files)
"""

from rootless.registry._client import RegistryClient, RetryPolicy
from rootless.registry._login import login, logout
from rootless.registry._media import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
)
from rootless.registry._platform import host_platform, parse_platform
from rootless.registry._progress import Phase, ProgressCallback, ProgressEvent
from rootless.registry._pull import PulledImage, pull_image
from rootless.registry._push import push_image
from rootless.registry._store import BlobStore, ImageReference
from rootless.registry.authfile import AuthFiles, Credentials

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "AuthFiles",
    "BlobStore",
    "Credentials",
    "Descriptor",
    "ImageReference",
    "Phase",
    "Platform",
    "ProgressCallback",
    "ProgressEvent",
    "PulledImage",
    "RegistryClient",
    "RetryPolicy",
    "host_platform",
    "login",
    "logout",
    "parse_platform",
    "pull_image",
    "push_image",
]
