"""The pure parts of running a project: network modes per service, log prefixes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from rootless.compose.files import load_project
from rootless.compose.logs import prefixes
from rootless.compose.runner import compose_info, run_options
from rootless.compose.to_run import service_run
from rootless.container.records import ContainerRecord

TEXT = """
name: shop
services:
  api:
    image: busybox
    networks: {back: {aliases: [backend]}, default: {}}
  web:
    image: busybox
    ports: ["8080:80"]
  worker:
    image: busybox
networks:
  back:
"""


def load(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(TEXT))
    return load_project([], cwd=tmp_path, environ={}).project


def test_services_join_their_first_network_under_their_names(tmp_path: Path) -> None:
    project = load(tmp_path)
    api = run_options(service_run(project, "api"))
    assert api.network.mode == "shop_back:alias=api,alias=backend"
    worker = run_options(service_run(project, "worker"))
    assert worker.network.mode == "shop_default:alias=worker"


def test_a_service_with_ports_stays_on_the_project_network(tmp_path: Path) -> None:
    said: list[str] = []
    web = run_options(service_run(load(tmp_path), "web"), said.append)
    assert web.network.mode == "shop_default:alias=web"
    assert web.network.publish == ("8080:80/tcp",)
    assert said == []


def record(name: str, service: str | None, number: int = 1) -> ContainerRecord:
    options = {"compose": {"project": "p", "service": service, "number": number}} if service else {}
    return ContainerRecord(name, name, "", "", (), 0.0, "running", options=options)


def test_log_prefixes_are_padded_and_coloured_on_request() -> None:
    records = [record("a", "db"), record("b", "frontend", 2), record("c", None)]
    assert prefixes(records, colour=False) == {
        "a": b"db-1        | ",
        "b": b"frontend-2  | ",
        "c": b"c           | ",
    }
    coloured = prefixes(records, colour=True)
    assert coloured["a"].startswith(b"\x1b[36m") and coloured["a"].endswith(b"\x1b[0m")
    assert coloured["a"] != coloured["b"]
    assert compose_info(records[2]) == {}


def test_a_one_off_container_logs_under_its_name() -> None:
    one_off = ContainerRecord(
        "x", "p-web-run-0123456789ab", "", "", (), 0.0, "exited",
        options={"compose": {"project": "p", "service": "web", "number": 1, "oneoff": True}},
    )  # fmt: skip
    assert prefixes([record("a", "web"), one_off], colour=False) == {
        "a": b"web-1                   | ",
        "x": b"p-web-run-0123456789ab  | ",
    }
