"""Sources that are not in the context: URLs, git repositories, and ADD's ``--checksum``.

Git repositories (as the build context or an ADD source) are recognised by Docker's
rule so they fail with a clear error instead of being fetched as a web page or
looked up as a file. Everything here is pure except :func:`verify_checksum`, which
reads the file it checks.
"""

from __future__ import annotations

import hashlib
import re

from rootless.errors import BuildError

# The digests Docker accepts for --checksum, with their hex lengths.
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_GIT_PATH = re.compile(r"\.git(?:#.+)?$")
_CHUNK = 1 << 20


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def is_git_url(text: str) -> bool:
    """Docker's test: ``git://``, ``git@``, ``github.com/``, or an http(s) URL whose
    path ends in ``.git`` (optionally with ``#ref``)."""
    if text.startswith(("git://", "git@", "github.com/", "ssh://")):
        return True
    return is_url(text) and _GIT_PATH.search(text) is not None


def git_unsupported(text: str, *, what: str) -> BuildError:
    """The error for a git repository given as ``what`` (the context, an ADD source)."""
    url, _, fragment = text.partition("#")
    ref = fragment.partition(":")[0]
    clone = f"git clone {'--branch ' + ref + ' ' if ref else ''}{url} DIR"
    if what == "the build context":
        hint = f"clone it, then build the directory: {clone} && rootless build DIR"
    else:
        hint = f"clone it into the context ({clone}) and COPY DIR instead"
    return BuildError(
        f"cannot use the git repository {text} as {what}: git sources are not supported",
        hint=hint,
    )


def parse_checksum(text: str) -> tuple[str, str]:
    """``ALGORITHM:HEX`` of ``ADD --checksum`` as (algorithm, lower-case hex). Pure."""
    algorithm, sep, hexdigest = text.partition(":")
    length = _ALGORITHMS.get(algorithm)
    hexdigest = hexdigest.lower()
    if (
        not sep
        or length is None
        or len(hexdigest) != length
        or not all(c in "0123456789abcdef" for c in hexdigest)
    ):
        raise BuildError(
            f"invalid --checksum={text}: expected sha256:<64 hex digits> (or sha384:, sha512:)",
            hint="get it with sha256sum FILE",
        )
    return algorithm, hexdigest


def verify_checksum(path: str, expected: tuple[str, str], *, source: str) -> None:
    """Fail unless the file at ``path`` (ADD's ``source``) has the ``expected`` digest."""
    algorithm, want = expected
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    got = h.hexdigest()
    if got != want:
        raise BuildError(
            f"cannot ADD {source}: checksum mismatch: expected {algorithm}:{want}, "
            f"got {algorithm}:{got}",
            hint="fix --checksum, or check that the source is the one you meant",
        )
