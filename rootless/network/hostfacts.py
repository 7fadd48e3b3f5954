"""Read the host's DNS configuration, address and default gateway (for etcfiles)."""

from __future__ import annotations

from pathlib import Path

from rootless.network.etcfiles import HostFacts, parse_resolv_conf


def default_gateway(route_file: str = "/proc/net/route") -> str | None:
    """The IPv4 gateway of the first default route, from the kernel's route table."""
    try:
        lines = Path(route_file).read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000" and fields[2] != "00000000":
            return ".".join(str(b) for b in int(fields[2], 16).to_bytes(4, "little"))
    return None


def source_address(gateway: str) -> str | None:
    """The address this host uses to reach ``gateway`` (connecting UDP sends nothing)."""
    import socket  # only on the default network path: the module costs ~3 ms to import

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((gateway, 9))
        except OSError:
            return None
        addr: str = s.getsockname()[0]
        return addr


def read_host_facts(
    resolv_conf: str = "/etc/resolv.conf", route_file: str = "/proc/net/route"
) -> HostFacts:
    try:
        resolv = parse_resolv_conf(Path(resolv_conf).read_text())
    except OSError:
        resolv = parse_resolv_conf("")
    gateway = default_gateway(route_file)
    address = source_address(gateway) if gateway else None
    return HostFacts(resolv=resolv, address=address, gateway=gateway)
