"""``WWW-Authenticate`` challenges (RFC 7235), parsed without I/O."""

from __future__ import annotations

import re

import attrs

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@attrs.frozen
class Challenge:
    scheme: str  # lower-case: "basic" or "bearer"
    params: dict[str, str] = attrs.field(factory=dict, hash=False)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str) -> Challenge | None:
    """Parse the first challenge of a header; None if it is empty or malformed."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    if not scheme or "=" in scheme:
        return None
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM_RE.match(rest, pos)
        if m is None or m.end() == pos:
            break
        quoted, bare = m.group(2), m.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare or ""
        params[m.group(1).lower()] = value
        pos = m.end()
    return Challenge(scheme.lower(), params)
