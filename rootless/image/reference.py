"""Image references, parsed and normalised the way Docker and Podman do.

Grammar (from the distribution reference spec)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component [ "/" path-component ]*
    domain     := host [ ":" port ]   (the first component, if it has "." or ":" or is "localhost")

``busybox`` becomes ``docker.io/library/busybox:latest``; ``index.docker.io`` is
spelled ``docker.io``; a name without a registry takes the first search registry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rootless._record import Record
from rootless.errors import ImageError

DOCKER_HUB = "docker.io"
DEFAULT_TAG = "latest"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?|\[[0-9a-fA-F:.]+\](?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_HEX_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST_HEX_LEN = {"sha256": 64, "sha512": 128}
_MAX_NAME = 255


class Reference(Record):
    """A fully qualified image reference."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> Reference:
        return self._replace(tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return self._replace(tag=None, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is ``algorithm:hex`` with a known algorithm, else raise."""
    algorithm, _, hexpart = digest.partition(":")
    want = _DIGEST_HEX_LEN.get(algorithm)
    if want is None:
        raise ImageError(
            f"invalid digest {digest!r}: unsupported algorithm {algorithm!r} (use sha256 or sha512)"
        )
    if len(hexpart) != want or not all(c in "0123456789abcdef" for c in hexpart):
        raise ImageError(
            f"invalid digest {digest!r}: expected {want} lower-case hex digits after {algorithm}:"
        )
    return digest


def is_qualified(text: str) -> bool:
    """True when ``text`` names its registry (``host.tld/...``, ``host:port/...``)."""
    first, sep, _ = text.partition("/")
    return bool(sep) and _looks_like_domain(first)


def _looks_like_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str, *, search_registries: Sequence[str] = (DOCKER_HUB,)) -> Reference:
    """Parse and normalise ``text``; an unqualified name takes the first search registry."""
    return candidates(text, search_registries=search_registries)[0]


def candidates(text: str, *, search_registries: Sequence[str] = (DOCKER_HUB,)) -> list[Reference]:
    """Every reference ``text`` may mean, in the order to try them.

    A qualified name has one candidate; an unqualified one has one per search registry.
    """
    rest, digest = _split_digest(text)
    rest, tag = _split_tag(text, rest)
    if not rest:
        raise ImageError(f"invalid image reference {text!r}: the name is empty")
    if _HEX_ID.fullmatch(rest) and tag is None and digest is None:
        raise ImageError(
            f"invalid image reference {text!r}: a 64-hex-digit name is an image id, not a name"
        )
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    if is_qualified(rest):
        registry, _, path = rest.partition("/")
        registries = [_normalise_registry(text, registry)]
    else:
        path = rest
        if not search_registries:
            raise ImageError(
                f"cannot resolve short name {text!r}: no unqualified-search-registries configured",
                hint=f"use a full name such as docker.io/library/{rest}",
            )
        registries = [_normalise_registry(text, r) for r in search_registries]
    refs = []
    for registry in registries:
        repository = _normalise_path(text, registry, path)
        if len(registry) + 1 + len(repository) > _MAX_NAME:
            raise ImageError(
                f"invalid image reference {text!r}: the name is longer than {_MAX_NAME} characters"
            )
        refs.append(Reference(registry, repository, tag, digest))
    return refs


def _split_digest(text: str) -> tuple[str, str | None]:
    rest, sep, digest = text.partition("@")
    if not sep:
        return text, None
    if not _DIGEST.fullmatch(digest):
        raise ImageError(f"invalid image reference {text!r}: bad digest {digest!r}")
    try:
        validate_digest(digest)
    except ImageError as exc:
        raise ImageError(f"invalid image reference {text!r}: {exc.message}") from None
    return rest, digest


def _split_tag(text: str, rest: str) -> tuple[str, str | None]:
    # A ":" after the last "/" separates the tag; before it, it is a registry port.
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon <= slash:
        return rest, None
    tag = rest[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ImageError(
            f"invalid image reference {text!r}: bad tag {tag!r} "
            "(up to 128 letters, digits, '_', '.', '-'; not starting with '.' or '-')"
        )
    return rest[:colon], tag


def _normalise_registry(text: str, registry: str) -> str:
    if not _DOMAIN.fullmatch(registry):
        raise ImageError(f"invalid image reference {text!r}: bad registry {registry!r}")
    if registry in ("index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB
    return registry


def _normalise_path(text: str, registry: str, path: str) -> str:
    components = path.split("/")
    for component in components:
        if not _COMPONENT.fullmatch(component):
            why = "must be lower-case" if component.lower() != component else "bad characters"
            raise ImageError(
                f"invalid image reference {text!r}: repository component {component!r} {why} "
                "(letters a-z, digits, and '.', '_', '__' or '-' between them)"
            )
    if registry == DOCKER_HUB and len(components) == 1:
        return f"library/{path}"
    return path
