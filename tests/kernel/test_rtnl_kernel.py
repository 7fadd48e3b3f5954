"""The holder's rtnetlink client against the kernel, in a user+network namespace of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    from rootless.network.rtnl import Rtnl

    out = {}
    with Rtnl() as r:
        r.set_link(1, up=True)
        r.add_bridge("br9")
        br = r.index("br9")
        r.add_address(br, "10.77.0.1", 24)
        r.set_link(br, up=True, mtu=9000)
        r.add_veth("v9a", "v9b", os.getpid())
        r.set_link(r.index("v9a"), up=True, master=br)
        links = r.links()
        r.set_link(links["v9b"], name="eth7", mac="92:d0:c6:0a:29:33", mtu=1400)
        r.set_link(r.index("eth7"), up=True)
        r.add_address(r.index("eth7"), "10.77.0.2", 24)
        out["before_route"] = r.has_default_route()
        r.add_default_route("10.77.0.1")
        out["after_route"] = r.has_default_route()
        try:
            r.add_bridge("br9")
        except OSError as e:
            out["again"] = e.errno
        net = "/sys/class/net"
        out["mtu"] = open(f"{net}/br9/mtu").read().strip()
        out["master"] = os.path.basename(os.readlink(f"{net}/v9a/master"))
        out["mac"] = open(f"{net}/eth7/address").read().strip()
        out["up"] = int(open(f"{net}/eth7/flags").read(), 16) & 1
        # pyroute2 reads back what this client made: an independent netlink client.
        from pyroute2 import IPRoute

        with IPRoute() as ip:
            out["addrs"] = sorted(
                f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ip.get_addr(family=2)
            )
            out["gateway"] = [r.get_attr("RTA_GATEWAY") for r in ip.get_default_routes(family=2)]
        r.delete_link("v9a")
        out["links"] = sorted(r.links())
    print(json.dumps(out))
    """
)


def test_bridge_veth_address_route_and_delete():
    done = subprocess.run(
        # A sysfs of the new network namespace shows its interfaces.
        [
            *("unshare", "--user", "--map-root-user", "--net", "--mount", "sh", "-c"),
            'mount -t sysfs sysfs /sys && exec "$0" -c "$1"',
            *(sys.executable, SCRIPT),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["before_route"] is False and out["after_route"] is True
    assert out["again"] == 17  # EEXIST, from the kernel's error reply
    assert out["mtu"] == "9000" and out["master"] == "br9"
    assert out["mac"] == "92:d0:c6:0a:29:33" and out["up"] == 1
    assert out["addrs"] == ["10.77.0.1/24", "10.77.0.2/24", "127.0.0.1/8"]
    assert out["gateway"] == ["10.77.0.1"]
    assert out["links"] == ["br9", "lo"]  # v9a and its peer eth7 went together
