"""Pods' pure part: the record, the infra container, joining a pod, status and rows."""

from __future__ import annotations

import pytest

from rootless.container.records import ContainerRecord
from rootless.engine.containers import RunOptions
from rootless.engine.network import NetworkRequest
from rootless.engine.podplan import (
    PodRecord,
    PodSpec,
    check_spec,
    infra_options,
    inspect,
    join_pod,
    new_record,
    pod_status,
    ps_row,
)
from rootless.errors import ConfigError

POD = new_record(PodSpec("web", publish=("8080:80",), labels={"a": "b"}), "ab" * 32, 100.0)
LOOSE = new_record(PodSpec("loose", infra=False), "cd" * 32, 100.0)


def record(name: str, status: str, pod: dict[str, object]) -> ContainerRecord:
    return ContainerRecord(
        id=name * 8, name=name, image="i", image_id="", command=(), created=1.0,
        status=status, options={"pod": pod},
    )  # fmt: skip


def test_record_defaults_and_json_round_trip() -> None:
    assert POD.hostname == "web" and POD.infra == "web_infra" and POD.network == "slirp4netns"
    assert LOOSE.infra == ""
    assert PodRecord.from_json(POD.to_json()) == POD


def test_infra_container_holds_network_and_ports() -> None:
    opts = infra_options(POD, "/d/pods/web/infra", "/usr/bin/catatonit", ("db:10.0.0.2",))
    assert opts.name == "web_infra" and opts.hostname == "web" and opts.read_only
    assert opts.command == ("/catatonit", "-P") and opts.rootfs == "/d/pods/web/infra"
    assert opts.network == NetworkRequest(publish=("8080:80",), add_hosts=("db:10.0.0.2",))
    assert opts.mounts is not None
    assert opts.mounts.mounts == ("type=bind,source=/usr/bin/catatonit,target=/catatonit,ro",)
    assert opts.extra["pod"] == {"name": "web", "infra": True}
    assert opts.extra["stop_signal"] == "SIGINT" and opts.extra["labels"] == {"a": "b"}


def test_joining_a_pod_takes_its_network_and_hostname() -> None:
    joined = join_pod(RunOptions(image="i", extra={"restart": "always"}), POD)
    assert joined.network is not None and joined.network.mode == "container:web_infra"
    assert joined.hostname == "web"
    assert joined.extra == {"restart": "always", "pod": {"name": "web"}}
    same = join_pod(RunOptions(image="i", hostname="web"), POD)
    assert same.hostname == "web"


def test_joining_a_pod_without_infra_changes_nothing_else() -> None:
    opts = RunOptions(image="i", network=NetworkRequest(publish=("80",)), hostname="h")
    joined = join_pod(opts, LOOSE, network_given=True)
    assert joined == opts._replace(extra={"pod": {"name": "loose"}})


@pytest.mark.parametrize(
    ("opts", "given", "message"),
    [
        (RunOptions(network=NetworkRequest(publish=("80:80",))), False, "publish them on the pod"),
        (RunOptions(network=NetworkRequest(publish_all=True)), False, "publish them on the pod"),
        (RunOptions(), True, "cannot use --network with --pod web"),
        (RunOptions(hostname="other"), False, "cannot set --hostname with --pod web"),
    ],
)
def test_joining_a_pod_refuses_what_belongs_to_the_pod(
    opts: RunOptions, given: bool, message: str
) -> None:
    with pytest.raises(ConfigError) as e:
        join_pod(opts, POD, network_given=given)
    assert message in str(e.value) or message in (e.value.hint or "")


def test_a_pod_without_infra_has_no_ports_or_network() -> None:
    check_spec(PodSpec("p", publish=("80",)))
    with pytest.raises(ConfigError, match="no infra container"):
        check_spec(PodSpec("p", publish=("80",), infra=False))
    with pytest.raises(ConfigError, match="share no namespaces"):
        check_spec(PodSpec("p", network="host", infra=False))


@pytest.mark.parametrize(
    ("states", "status"),
    [
        ([], "Created"),
        (["created", "created"], "Created"),
        (["running", "running"], "Running"),
        (["running", "exited"], "Degraded"),
        (["exited", "created"], "Exited"),
        (["restarting", "running"], "Running"),
    ],
)
def test_pod_status(states: list[str], status: str) -> None:
    assert pod_status(states) == status


def test_ps_row_and_inspect() -> None:
    members = [
        record("a", "running", {"name": "web"}),
        record("i", "running", {"name": "web", "infra": True}),
    ]
    row = ps_row(POD, members, now=160.0)
    assert row["Id"] == "ab" * 6 and row["InfraId"] == "i" * 8 and row["Status"] == "Running"
    assert row["NumberOfContainers"] == 2 and row["CreatedHuman"] == "About a minute ago"
    info = inspect(POD, members)
    assert info["Id"] == POD.id and info["InfraContainerID"] == "i" * 8
    assert info["InfraConfig"] == {"Networks": ["slirp4netns"], "PortBindings": ["8080:80"]}
    assert info["Created"] == "1970-01-01T00:01:40Z" and info["SharedNamespaces"] == ["net"]
    assert inspect(LOOSE, [])["State"] == "Created"
