"""kube generate's pure part: container facts -> Pod, Deployment and Service objects."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from rootless.errors import ConfigError
from rootless.kube.generate import (
    ContainerFacts,
    MountFact,
    deployment,
    dns_label,
    mount_facts,
    pod,
    render,
    service,
)
from rootless.kube.plan import plan_kube
from rootless.kube.source import parse_documents

WEB = ContainerFacts(
    name="web_1",
    image="registry.test/web:1",
    argv=("/entry", "httpd", "-p", "80"),
    env=("PATH=/bin", "container=rootless", "HOSTNAME=abc", "FROM_IMAGE=x", "MODE=prod"),
    workdir="/srv",
    user="1000:1000",
    ports=(("", 8080, 80, "tcp"), ("127.0.0.1", 30053, 53, "udp")),
    capabilities=("CAP_CHOWN", "CAP_NET_ADMIN"),
    read_only=True,
    mounts=(
        MountFact("hostPath", "/home/u/html", "/srv/html", read_only=True),
        MountFact("volume", "data", "/data"),
        MountFact("emptyDir", "", "/cache"),
        MountFact("tmpfs", "", "/tmp"),
    ),
    restart="on-failure:3",
    stop_timeout=15,
    image_entrypoint=("/entry",),
    image_cmd=("sh",),
    image_env=("PATH=/bin", "FROM_IMAGE=x"),
    image_workdir="/",
)


def validate(obj: dict) -> None:  # type: ignore[type-arg]
    kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_pod_says_what_differs_from_the_image_and_validates() -> None:
    obj, warnings = pod("web-pod", [WEB])
    validate(obj)
    assert warnings == []
    spec = obj["spec"]
    assert spec["restartPolicy"] == "OnFailure"
    assert spec["terminationGracePeriodSeconds"] == 15
    (c,) = spec["containers"]
    assert c["name"] == "web-1"
    assert "command" not in c and c["args"] == ["httpd", "-p", "80"]  # the entrypoint stays
    assert c["env"] == [{"name": "MODE", "value": "prod"}]  # engine and image env left out
    assert c["workingDir"] == "/srv"
    assert c["ports"] == [
        {"containerPort": 80, "hostPort": 8080, "protocol": "TCP"},
        {"containerPort": 53, "hostPort": 30053, "hostIP": "127.0.0.1", "protocol": "UDP"},
    ]
    sc = c["securityContext"]
    assert sc["runAsUser"] == 1000 and sc["runAsGroup"] == 1000
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["add"] == ["NET_ADMIN"]
    assert "CHOWN" not in sc["capabilities"]["drop"] and "KILL" in sc["capabilities"]["drop"]
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert vols[mounts["/srv/html"]["name"]]["hostPath"] == {"path": "/home/u/html"}
    assert mounts["/srv/html"]["readOnly"] is True
    assert vols[mounts["/data"]["name"]]["persistentVolumeClaim"] == {"claimName": "data"}
    assert vols[mounts["/cache"]["name"]]["emptyDir"] == {}
    assert vols[mounts["/tmp"]["name"]]["emptyDir"] == {"medium": "Memory"}


@pytest.mark.parametrize(
    ("argv", "command", "args"),
    [
        (("/entry", "sh"), None, None),  # the image's own
        (("/entry", "ls"), None, ["ls"]),
        (("/bin/echo", "hi"), ["/bin/echo", "hi"], None),  # another entrypoint
        (("/entry",), ["/entry"], None),  # args [] would bring the image's CMD back
    ],
)
def test_command_and_args(argv: tuple[str, ...], command: object, args: object) -> None:
    facts = WEB._replace(argv=argv)
    c = pod("p", [facts])[0]["spec"]["containers"][0]
    assert c.get("command") == command and c.get("args") == args


def test_two_containers_share_a_volume_and_get_host_aliases() -> None:
    shared = MountFact("volume", "data", "/data")
    a = WEB._replace(name="demo-a-1", mounts=(shared,), ports=())
    b = WEB._replace(name="demo-b-1", mounts=(shared._replace(target="/other"),), ports=())
    obj, _ = pod("demo", [a, b], kube_names=["a", "b"], host_aliases=["a", "b"])
    validate(obj)
    assert [v["name"] for v in obj["spec"]["volumes"]] == ["data-pvc"]
    assert obj["spec"]["hostAliases"] == [{"ip": "127.0.0.1", "hostnames": ["a", "b"]}]
    assert [c["name"] for c in obj["spec"]["containers"]] == ["a", "b"]


def test_what_kubernetes_cannot_say_is_warned_about() -> None:
    facts = WEB._replace(
        user="www-data", unsupported=("secret at /run/secrets/x is not in the YAML",)
    )
    obj, warnings = pod("p", [facts, facts._replace(name="other", restart=None)])
    assert "runAsUser" not in obj["spec"]["containers"][0]["securityContext"]
    assert any("www-data" in w for w in warnings)
    assert any("/run/secrets/x" in w for w in warnings)
    assert any("restart policies differ" in w for w in warnings)


def test_rootfs_containers_are_refused() -> None:
    with pytest.raises(ConfigError, match="rootfs"):
        pod("p", [WEB._replace(image="")])


def test_deployment_and_service_validate() -> None:
    obj, _ = pod("web-pod", [WEB])
    deploy, warnings = deployment(obj)
    validate(deploy)
    assert deploy["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert warnings  # OnFailure could not stay
    svc = service(obj)
    assert svc is not None
    validate(svc)
    ports = svc["spec"]["ports"]
    assert [p["port"] for p in ports] == [80, 53]
    assert "nodePort" not in ports[0]  # 8080 is outside the NodePort range
    assert ports[1]["nodePort"] == 30053
    assert service(pod("p", [WEB._replace(ports=())])[0]) is None


def test_rendered_yaml_plays_back_to_the_same_container() -> None:
    obj, _ = pod("web-pod", [WEB])
    text = render([obj])
    assert yaml.safe_load(text) == obj
    plan = plan_kube(parse_documents(text, "gen.yaml"), files_root="/run/k")
    assert plan.warnings == ()
    (p,) = plan.pods
    assert p.publish == ("8080:80/tcp", "127.0.0.1:30053:53/udp")
    opts = p.containers[0].options
    assert opts.entrypoint is None and opts.command == ("httpd", "-p", "80")
    assert opts.env == (("MODE", "prod"),)
    assert opts.workdir == "/srv" and opts.user == "1000:1000" and opts.read_only
    assert opts.cap_add == ("NET_ADMIN",) and "CHOWN" not in opts.cap_drop
    assert opts.extra["restart"] == "on-failure" and opts.extra["stop_timeout"] == 15


def test_healthcheck_becomes_an_exec_probe_and_back() -> None:
    from rootless.supervise.health import HealthConfig, health_config

    shell = HealthConfig(("CMD-SHELL", "wget -qO- localhost"), 2.5, 3, 4, 10).to_json()
    obj, warnings = pod("p", [WEB._replace(health=shell)])
    validate(obj)
    assert warnings == []
    probe = obj["spec"]["containers"][0]["livenessProbe"]
    assert probe == {
        "exec": {"command": ["/bin/sh", "-c", "wget -qO- localhost"]},
        "periodSeconds": 3,  # rounded up to whole seconds
        "timeoutSeconds": 3,
        "initialDelaySeconds": 10,
        "failureThreshold": 4,
    }
    (p,) = plan_kube(parse_documents(render([obj]), "gen.yaml"), files_root="/r").pods
    flags = dict(p.containers[0].options.extra["health_flags"])
    del flags["disabled"]
    played = health_config(None, **flags)
    assert played is not None and played.test == ("CMD", "/bin/sh", "-c", "wget -qO- localhost")
    assert (played.interval, played.timeout, played.retries, played.start_period) == (3, 3, 4, 10)
    # the image's own healthcheck is left to the image
    same, _ = pod("p", [WEB._replace(health=shell, image_health=shell)])
    assert "livenessProbe" not in same["spec"]["containers"][0]


def test_mount_facts_keep_the_users_mounts_only() -> None:
    mounts = [
        ("/proc", "proc", "proc", ()),
        ("/etc/hosts", "bind", "/data/containers/abc/hosts", ("bind",)),
        ("/run/secrets/token", "bind", "/data/secrets/x", ("bind", "ro")),
        ("/srv", "bind", "/home/u/srv", ("rbind", "ro")),
        ("/data", "bind", "/data/volumes/data/_data", ("rbind",)),
        ("/anon", "bind", "/data/volumes/f00/_data", ("rbind",)),
        ("/scratch", "tmpfs", "tmpfs", ("rw",)),
        ("/dev/fuse", "bind", "/dev/fuse", ("bind",)),
    ]
    facts, unsupported = mount_facts(
        mounts,
        own_files="/data/containers/abc",
        volumes_root="/data/volumes",
        anonymous=frozenset({"f00"}),
    )
    assert facts == (
        MountFact("hostPath", "/home/u/srv", "/srv", True),
        MountFact("volume", "data", "/data", False),
        MountFact("emptyDir", "", "/anon", False),
        MountFact("tmpfs", "", "/scratch", False),
    )
    assert len(unsupported) == 2 and "/run/secrets/token" in unsupported[0]


def test_dns_label() -> None:
    assert dns_label("My_Web.1") == "my-web-1"
    assert dns_label("__") == "x"
    assert len(dns_label("a" * 100)) == 63


def test_hostname_is_the_pods_when_it_is_one_dns_label() -> None:
    assert pod("p", [WEB._replace(hostname="box")])[0]["spec"]["hostname"] == "box"
    obj, warnings = pod("p", [WEB._replace(hostname="a"), WEB._replace(name="b", hostname="b")])
    assert "hostname" not in obj["spec"] and any("a, b" in w for w in warnings)
