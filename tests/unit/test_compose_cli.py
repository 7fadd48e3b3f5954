from __future__ import annotations

import textwrap

import yaml

from rootless.cli import main

TEXT = """
services:
  web:
    image: busybox:${TAG:-1}
    command: echo hi
    ports: ["8080:80"]
    volumes: ["./html:/srv:ro", "data:/data"]
    depends_on: [db]
    colour: blue
  db:
    image: db
    profiles: [full]
  tool:
    image: tool
    volumes: ["other:/o"]
    profiles: [tools]
volumes:
  data:
  other:
"""


def write(tmp_path, text=TEXT):
    d = tmp_path / "Shop"
    d.mkdir()
    (d / "compose.yaml").write_text(textwrap.dedent(text))
    return d


def test_config_prints_the_normalised_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(write(tmp_path))
    monkeypatch.setenv("TAG", "1.36")
    assert main(["compose", "--profile", "full", "config"]) == 0
    out, err = capsys.readouterr()
    assert err == "WARN: compose.yaml:9: services.web.colour: unknown key, ignored\n"
    data = yaml.safe_load(out)
    assert data["name"] == "shop"
    assert list(data["services"]) == ["web", "db"]
    web = data["services"]["web"]
    assert web["image"] == "busybox:1.36"
    assert web["command"] == ["echo", "hi"]
    assert web["ports"] == [
        {"target": 80, "protocol": "tcp", "mode": "ingress", "published": "8080"}
    ]
    assert web["volumes"][0] == {
        "type": "bind",
        "source": str(tmp_path / "Shop" / "html"),
        "target": "/srv",
        "read_only": True,
        "bind": {"create_host_path": True},
    }
    assert web["depends_on"] == {
        "db": {"condition": "service_started", "restart": False, "required": True}
    }
    assert data["volumes"] == {"data": {"name": "shop_data"}}  # only what the services use
    assert data["networks"] == {"default": {"name": "shop_default"}}


def test_config_output_loads_back_to_the_same_model(tmp_path, monkeypatch, capsys):
    from rootless.compose.files import load_project

    d = write(tmp_path)
    monkeypatch.chdir(d)
    assert main(["compose", "--profile", "*", "config"]) == 0
    out = capsys.readouterr().out
    again = tmp_path / "again"
    again.mkdir()
    (again / "compose.yaml").write_text(out)
    first = load_project(cwd=d, environ={}).project
    second = load_project(cwd=again, environ={}).project
    assert second.services == first.services
    assert second.name == first.name


def test_services_and_volumes_and_quiet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(write(tmp_path))
    assert main(["compose", "--profile", "full", "config", "--services"]) == 0
    assert capsys.readouterr().out == "db\nweb\n"
    assert main(["compose", "--profile", "full", "config", "--volumes"]) == 0
    assert capsys.readouterr().out == "data\n"
    assert main(["compose", "config", "-q", "tool"]) == 0
    assert capsys.readouterr().out == ""


def test_errors_exit_125_with_location(tmp_path, monkeypatch, capsys):
    d = write(tmp_path, "services:\n  web:\n    image: x\n    ports: ['80:abc']\n")
    monkeypatch.chdir(d)
    assert main(["compose", "config"]) == 125
    err = capsys.readouterr().err
    assert err == (
        'Error: compose.yaml:4: services.web.ports[0]: invalid port "80:abc": '
        '"abc" is not a port or a range of ports (1-65535)\n'
    )


def test_files_and_project_flags(tmp_path, monkeypatch, capsys):
    d = write(tmp_path)
    (d / "over.yaml").write_text("services:\n  web:\n    image: other\n")
    monkeypatch.chdir(tmp_path)
    args = ["compose", "-f", "Shop/compose.yaml", "-f", "Shop/over.yaml", "-p", "p1"]
    assert main([*args, "--profile", "full", "config", "web"]) == 0
    data = yaml.safe_load(capsys.readouterr().out)
    assert data["name"] == "p1"
    assert data["services"]["web"]["image"] == "other"
    assert list(data["services"]) == ["web", "db"]  # its dependency comes along
