"""Capability names, Podman's default set, and --cap-add/--cap-drop planning (pure)."""

from __future__ import annotations

from collections.abc import Iterable

from rootless.errors import ConfigError

CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)
CAP_NUMBER = {name: i for i, name in enumerate(CAPABILITIES)}

# Podman's default_capabilities (containers.conf).
DEFAULT_CAPABILITIES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)


def normalize(name: str) -> str:
    """'net_admin', 'CAP_NET_ADMIN' and 'NET_ADMIN' all name CAP_NET_ADMIN; 'ALL' is kept."""
    upper = name.strip().upper()
    short = upper.removeprefix("CAP_")
    if short == "ALL":
        return "ALL"
    if short not in CAP_NUMBER:
        raise ConfigError(
            f'unknown capability "{name}"',
            hint="use a name like NET_ADMIN or CAP_NET_ADMIN (see capabilities(7))",
        )
    return short


def plan_capabilities(
    add: Iterable[str] = (), drop: Iterable[str] = (), base: Iterable[str] = DEFAULT_CAPABILITIES
) -> tuple[str, ...]:
    """The bounding set after --cap-add and --cap-drop, as CAP_* names in kernel order."""
    added = {normalize(c) for c in add}
    dropped = {normalize(c) for c in drop}
    caps = set(CAPABILITIES) if "ALL" in added else {normalize(c) for c in base}
    caps |= added - {"ALL"}
    caps = set() if "ALL" in dropped else caps - dropped
    # An explicit add wins over a drop of ALL, as in Podman.
    if "ALL" in dropped:
        caps |= added - {"ALL"}
    return tuple(f"CAP_{c}" for c in CAPABILITIES if c in caps)


def mask(names: Iterable[str], last_cap: int = 63) -> int:
    """A bit mask of capability names, ignoring those newer than the running kernel."""
    bits = 0
    for name in names:
        n = CAP_NUMBER[normalize(name)]
        if n <= last_cap:
            bits |= 1 << n
    return bits
