"""How OCI layers and overlayfs spell deletions, shared by unpack, diff and the rootfs.

A module of its own so that starting a container (which only mounts layers) does not
import the unpacker and its decompressors.
"""

from __future__ import annotations

OPAQUE_XATTR = "user.overlay.opaque"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
# xattr namespaces a layer may not set: overlay's own metadata, and trusted.* which
# an unprivileged user can never set anyway.
FORBIDDEN_XATTRS = ("trusted.", "user.overlay.", "user.fuseoverlayfs.")
