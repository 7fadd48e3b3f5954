"""compose run's planning: the service changed by the options, the one-off's RunOptions."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rootless.compose.files import load_project
from rootless.compose.model import Project
from rootless.compose.oneoff import OneOff, one_off_project, one_off_run
from rootless.compose.runner import run_options
from rootless.errors import ConfigError

TEXT = """
name: shop
services:
  web:
    image: busybox
    entrypoint: [/bin/tini, --]
    command: [httpd, -f]
    environment: {A: "1", B: "2"}
    labels: {tier: web}
    user: "101"
    working_dir: /srv
    ports: ["8080:80"]
    volumes: ["./html:/srv:ro", "data:/data"]
    restart: always
    depends_on: [db]
    container_name: shop-web
    deploy: {replicas: 0}
  db:
    image: busybox
volumes:
  data:
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(TEXT))
    return load_project(cwd=tmp_path, environ={}).project


def plan(project: Project, request: OneOff):  # type: ignore[no-untyped-def]
    altered = one_off_project(project, "web", request, {"HOME": "/home/me"})
    return one_off_run(altered, "web", request, "0123456789ab")


def test_without_options_it_is_the_service_without_its_ports_or_alias(project: Project) -> None:
    run = plan(project, OneOff())
    o = run_options(run)
    assert o.name == "shop-web-run-0123456789ab"
    assert (o.entrypoint, o.command) == ("/bin/tini", ("--", "httpd", "-f"))
    assert o.network.publish == ()
    assert o.network.mode == "shop_default"  # no alias: `web` still names the service
    assert o.interactive and not o.detach and not o.rm
    assert o.extra["labels"]["com.docker.compose.oneoff"] == "True"
    assert o.extra["labels"]["com.docker.compose.service"] == "web"
    assert o.extra["compose"]["oneoff"] is True
    assert o.extra["restart"] == "always"


def test_options_change_what_runs(project: Project, tmp_path: Path) -> None:
    request = OneOff(
        command=("echo", "hi"),
        entrypoint="sh -c 'exec \"$@\"' x",
        env=(("B", "3"), ("C", "4")),
        labels=(("tier", "job"), ("k", "v")),
        user="0:0",
        workdir="/tmp",
        volumes=("./out:/srv", "~/cache:/cache:ro", "data:/other"),
        publish=("127.0.0.1:9000:80", "7000-7001:70-71/udp"),
        service_ports=True,
        name="job",
        rm=True,
        tty=True,
    )
    o = run_options(plan(project, request))
    assert o.name == "job"
    assert o.entrypoint == "sh"
    assert o.command == ("-c", 'exec "$@"', "x", "echo", "hi")
    assert dict(o.env) == {"A": "1", "B": "3", "C": "4"}
    assert o.extra["labels"]["tier"] == "job" and o.extra["labels"]["k"] == "v"
    assert (o.user, o.workdir, o.rm, o.tty) == ("0:0", "/tmp", True, True)
    assert "restart" not in o.extra  # --rm overrides the restart policy
    # -v on /srv replaces the service's mount there; relative paths from the project dir
    assert o.mounts.mounts == (
        "type=volume,source=shop_data,target=/data",
        f"type=bind,source={tmp_path}/out,target=/srv",
        "type=bind,source=/home/me/cache,target=/cache,ro",
        "type=volume,source=shop_data,target=/other",
    )
    assert o.network.publish == (
        "8080:80/tcp",
        "127.0.0.1:9000:80/tcp",
        "7000:70/udp",
        "7001:71/udp",
    )


def test_detached_it_has_no_terminal_nor_stdin(project: Project) -> None:
    o = plan(project, OneOff(detach=True, tty=True)).options
    assert o.detach and not o.tty and not o.interactive


def test_use_aliases_keeps_the_service_name(project: Project) -> None:
    assert run_options(plan(project, OneOff(use_aliases=True))).network.mode == (
        "shop_default:alias=web"
    )


def test_an_empty_entrypoint_resets_the_images(project: Project) -> None:
    o = plan(project, OneOff(entrypoint="")).options
    assert (o.entrypoint, o.command) == ("", ("httpd", "-f"))


def test_replicas_are_marked_not_one_off(project: Project) -> None:
    from rootless.compose.to_run import service_run

    assert service_run(project, "db").options.extra["labels"]["com.docker.compose.oneoff"] == (
        "False"
    )


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (OneOff(publish=("80:abc",)), ['--publish: invalid port "80:abc"', "-p 8080:80"]),
        (OneOff(publish=("1:2:3:4",)), ["too many ':'", "[IP:][HOST:]CONTAINER"]),
        (
            OneOff(volumes=("./x:rel",)),
            ['--volume "./x:rel": container path "rel" is not absolute', "TARGET"],
        ),
        (OneOff(volumes=("./x:/y:zz",)), ['unknown mode "zz"', "[SOURCE:]TARGET"]),
        (
            OneOff(volumes=("cache:/c",)),
            ['volume "cache" is not declared', "./cache", "volumes:"],
        ),
        (OneOff(entrypoint="sh -c 'x"), ["invalid --entrypoint", "no closing quotation"]),
    ],
)
def test_bad_options_are_clear_errors(project: Project, request_: OneOff, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        plan(project, request_)
    for word in words:
        assert word in str(info.value)


def test_an_unknown_service_names_the_services(project: Project) -> None:
    with pytest.raises(ConfigError, match=r'no such service: "nope".*services: web, db'):
        one_off_project(project, "nope", OneOff(), {})
