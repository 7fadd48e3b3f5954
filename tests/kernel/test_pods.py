"""rootless pod ... for real: a pod's containers share localhost and the hostname, the
pod's published ports reach them, and stop/start/rm handle the whole pod."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import fetch_until_up, ok

from tests.docker_registry import free_port


@pytest.fixture
def image(rootless, image):  # type: ignore[no-untyped-def]
    yield image
    for pod in ok(rootless("pod", "ps", "-q")).split():
        rootless("pod", "rm", "-f", pod)
    rootless("rm", "-af")


SERVE = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www"


def test_pod_shares_localhost_hostname_and_published_port(
    rootless, image, find_processes_with_token
):  # type: ignore[no-untyped-def]
    port = free_port()
    pod_id = ok(rootless("pod", "create", "--name", "pair", "-p", f"{port}:8000")).strip()
    assert len(pod_id) == 64
    # the infra container exists but is not started until a container needs it
    (row,) = json.loads(ok(rootless("pod", "ps", "--format", "json")))
    assert (row["Name"], row["Status"], row["NumberOfContainers"]) == ("pair", "Created", 1)
    assert ok(rootless("pod", "exists", "pair")).strip() == ""
    assert rootless("pod", "exists", "nothing").returncode == 1

    ok(rootless("run", "-d", "--pod", "pair", "--name", "web", image,
                "sh", "-c", SERVE.format(text="from-web", port=8000)))  # fmt: skip
    fetch = "for i in $(seq 100); do wget -qO- http://127.0.0.1:8000/ && exit 0; sleep 0.1; done"
    r = rootless("run", "--rm", "--pod", "pair", image, "sh", "-c", f"{fetch}; exit 1")
    assert ok(r) == "from-web\n"  # the other container, on the pod's localhost
    assert ok(rootless("exec", "web", "hostname")).strip() == "pair"
    assert ok(rootless("run", "--rm", "--pod", pod_id[:12], image, "hostname")).strip() == "pair"
    assert fetch_until_up(f"http://127.0.0.1:{port}/") == b"from-web\n"  # from the host
    # the pod's containers share the network, UTS and IPC namespaces; others do not
    show = "for ns in net uts ipc; do readlink /proc/self/ns/$ns; done"
    web_ns = ok(rootless("exec", "web", "sh", "-c", show))
    assert ok(rootless("run", "--rm", "--pod", "pair", image, "sh", "-c", show)) == web_ns
    outside = ok(rootless("run", "--rm", image, "sh", "-c", show)).splitlines()
    assert not set(outside) & set(web_ns.splitlines())

    (row,) = json.loads(ok(rootless("pod", "ps", "--format", "json")))
    assert (row["Id"], row["Status"], row["NumberOfContainers"]) == (pod_id[:12], "Running", 2)
    (info,) = json.loads(ok(rootless("pod", "inspect", "pair")))
    assert info["Id"] == pod_id and info["Hostname"] == "pair"
    assert info["InfraConfig"]["PortBindings"] == [f"{port}:8000"]
    assert {c["Name"] for c in info["Containers"]} == {"web", "pair_infra"}
    ps = ok(rootless("ps", "--pod", "--filter", "pod=pair", "--format", "{{.Names}} {{.PodName}}"))
    assert sorted(ps.splitlines()) == ["pair_infra pair", "web pair"]
    assert "web" in ok(rootless("pod", "top", "pair"))
    (kube,) = yaml.safe_load_all(ok(rootless("kube", "generate", "pair")))
    assert kube["metadata"]["name"] == "pair"
    (web,) = kube["spec"]["containers"]  # the infra container is the pod itself
    assert web["name"] == "web"
    assert web["ports"] == [{"containerPort": 8000, "hostPort": port, "protocol": "TCP"}]

    refused = rootless("pod", "rm", "pair")
    assert refused.returncode == 125
    assert "cannot remove pod pair" in refused.stderr and "pod rm -f" in refused.stderr
    assert ok(rootless("pod", "rm", "-f", "pair")).strip() == pod_id
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert ok(rootless("pod", "ps", "-q")).strip() == ""
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


def test_pod_stop_start_and_rm(rootless, image, find_processes_with_token):  # type: ignore[no-untyped-def]
    ok(rootless("pod", "create", "--name", "life", "--label", "tier=test"))
    ok(rootless("create", "--pod", "life", "--name", "sleeper", image, "sleep", "1000"))
    ok(rootless("pod", "start", "life"))  # the infra container first, then sleeper
    states = ok(rootless("ps", "-a", "--format", "{{.Names}} {{.State}}")).splitlines()
    assert sorted(states) == ["life_infra running", "sleeper running"]

    ok(rootless("pod", "stop", "-t", "0", "life"))
    (row,) = json.loads(ok(rootless("pod", "ps", "--format", "json")))
    assert row["Status"] == "Exited" and row["Labels"] == {"tier": "test"}
    assert ok(rootless("ps", "-q")).strip() == ""

    # starting a container of the pod starts its infra container first
    ok(rootless("start", "sleeper"))
    states = ok(rootless("ps", "--format", "{{.Names}}")).split()
    assert sorted(states) == ["life_infra", "sleeper"]
    ok(rootless("pod", "restart", "-t", "0", "life"))
    (row,) = json.loads(ok(rootless("pod", "ps", "--format", "json")))
    assert row["Status"] == "Running"
    ok(rootless("pod", "kill", "life"))
    assert ok(rootless("wait", "sleeper", "life_infra")).split() == ["137", "137"]
    ok(rootless("pod", "rm", "life"))  # nothing running: no -f needed
    assert ok(rootless("ps", "-aq")).strip() == ""
    assert not (rootless.data_home / "rootless" / "pods").exists()
    assert find_processes_with_token(str(rootless.runtime_dir), wait=5) == []


def test_pod_errors(rootless, image):  # type: ignore[no-untyped-def]
    r = rootless("run", "--rm", "--pod", "nope", image, "true")
    assert r.returncode == 125 and 'no pod with name or ID "nope"' in r.stderr
    ok(rootless("pod", "create", "--name", "dup"))
    r = rootless("pod", "create", "--name", "dup")
    assert r.returncode == 125 and "the name is in use by another pod" in r.stderr
    r = rootless("run", "--rm", "--pod", "dup", "-p", "8080:80", image, "true")
    assert r.returncode == 125 and "publish them on the pod" in r.stderr
    r = rootless("run", "--rm", "--pod", "dup", "--network", "host", image, "true")
    assert r.returncode == 125 and "cannot use --network with --pod dup" in r.stderr
    r = rootless("pod", "rm", "nope")
    assert r.returncode == 125 and 'no pod with name or ID "nope"' in r.stderr
    # a pod without infra container groups containers, sharing nothing
    ok(rootless("pod", "create", "--name", "loose", "--no-infra"))
    assert ok(rootless("run", "--rm", "--pod", "loose", image, "echo", "hi")) == "hi\n"
    ok(rootless("pod", "prune", "-f"))
    assert ok(rootless("pod", "ps", "-q")).strip() == ""
