"""How OCI layers and overlayfs spell deletions, shared by unpack, diff and the rootfs,
and how overlayfs mount options escape paths (written by the rootfs and volume copy-up
plans, read back by export and diff).

A module of its own so that starting a container (which only mounts layers) does not
import the unpacker and its decompressors.
"""

from __future__ import annotations

from pathlib import Path

OPAQUE_XATTR = "user.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# xattr namespaces a layer may not set: overlay's own metadata, and trusted.* which
# an unprivileged user can never set anyway.
FORBIDDEN_XATTRS = ("trusted.", "user.overlay.", "user.fuseoverlayfs.")


def escape_path(path: Path) -> str:
    """*path* as an overlayfs option value: it splits lowerdir on ':' and options on ','."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split option text on ``sep`` where no backslash escapes it (kept raw)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    out, escaped = [], False
    for char in text:
        if escaped or char != "\\":
            out.append(char)
            escaped = False
        else:
            escaped = True
    return "".join(out)


def option_fields(options: str) -> dict[str, str]:
    """``lowerdir=…,upperdir=…,userxattr`` as {key: raw value} (flags map to "")."""
    fields = {}
    for item in split_unescaped(options, ","):
        key, _, value = item.partition("=")
        fields[key] = value
    return fields


def overlay_lowerdirs(options: str) -> list[str]:
    """The lower directories of overlayfs ``options``, topmost first, unescaped."""
    lower = option_fields(options).get("lowerdir", "")
    return [unescape(p) for p in split_unescaped(lower, ":") if p]


def overlay_upperdir(options: str) -> str | None:
    upper = option_fields(options).get("upperdir")
    return None if upper is None else unescape(upper)
