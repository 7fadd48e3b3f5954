"""Platform parsing and the choice of one manifest from an index (pure)."""

from __future__ import annotations

import os

from rootless.errors import ConfigError, ImageError
from rootless.registry._media import Descriptor, Platform

# uname machine -> (GOARCH, variant), the names OCI platforms use.
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", ""),
    "i386": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


def host_platform(machine: str | None = None) -> Platform:
    """The platform of this host: linux/amd64 on x86_64, linux/arm64/v8 on aarch64."""
    machine = machine or os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` as given to ``--platform``."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ConfigError(
            f'invalid platform "{text}": expected os/arch[/variant]', hint="e.g. linux/arm64/v8"
        )
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def _variant(platform: Platform) -> str:
    # arm64 without a variant means v8 (the OCI image-index spec says so).
    if platform.architecture == "arm64" and not platform.variant:
        return "v8"
    return platform.variant


def choose_manifest(entries: tuple[Descriptor, ...], want: Platform, where: str) -> Descriptor:
    """Pick the index entry for *want*; an entry without a variant matches any variant."""
    candidates = [
        e
        for e in entries
        if e.platform is not None
        and e.platform.os == want.os
        and e.platform.architecture == want.architecture
    ]
    exact = [e for e in candidates if e.platform and _variant(e.platform) == _variant(want)]
    loose = [e for e in candidates if e.platform and not e.platform.variant]
    if exact or loose:
        return (exact or loose)[0]
    offered = ", ".join(sorted({str(e.platform) for e in entries if e.platform})) or "none"
    raise ImageError(
        f"no image for platform {want} in {where} (offered: {offered})",
        hint="choose one of them with --platform",
    )
