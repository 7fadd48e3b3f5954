"""--device parsing and CDI resolution (pure, against spec files in tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootless.devices import (
    DeviceNode,
    cdi_dirs,
    is_cdi_name,
    parse_device,
    plan_devices,
    resolve_cdi,
)
from rootless.errors import ConfigError
from rootless.runtime.spec import Mount


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("/dev/null", DeviceNode("/dev/null", "/dev/null", "rwm")),
        ("/dev/null:/dev/x", DeviceNode("/dev/null", "/dev/x", "rwm")),
        ("/dev/null:r", DeviceNode("/dev/null", "/dev/null", "r")),
        ("/dev/null:/dev/x:rw", DeviceNode("/dev/null", "/dev/x", "rw")),
    ],
)
def test_parse_device(text: str, want: DeviceNode) -> None:
    assert parse_device(text) == want


@pytest.mark.parametrize("text", ["dev/null", "/dev/null:x", "/dev/null:/x:rwz", "/a:/b:r:w"])
def test_parse_device_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_device(text)


def test_cdi_names() -> None:
    assert is_cdi_name("nvidia.com/gpu=0")
    assert is_cdi_name("example.com/class=all")
    assert not is_cdi_name("/dev/null")
    assert not is_cdi_name("gpu=0")


def test_cdi_dirs_follow_xdg() -> None:
    assert cdi_dirs({"XDG_CONFIG_HOME": "/c"}) == (
        Path("/etc/cdi"),
        Path("/var/run/cdi"),
        Path("/c/cdi"),
    )
    assert cdi_dirs({"HOME": "/h"})[-1] == Path("/h/.config/cdi")


def _spec(kind: str, devices: list[dict[str, object]], **edits: object) -> dict[str, object]:
    return {"cdiVersion": "0.6.0", "kind": kind, "devices": devices, "containerEdits": edits}


def test_resolve_json_and_yaml(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    dev = {
        "name": "d0",
        "containerEdits": {"deviceNodes": [{"path": "/dev/d0", "hostPath": "/dev/zero"}]},
    }
    (a / "x.json").write_text(json.dumps(_spec("ex.com/c", [dev], env=["A=1"])))
    (b / "y.yaml").write_text(
        "cdiVersion: 0.6.0\nkind: ex.com/other\ndevices:\n- name: n\n"
        "  containerEdits:\n    deviceNodes:\n    - path: /dev/null\n    env: [B=2]\n"
    )
    plan = resolve_cdi("ex.com/c=d0", [a, b])
    assert plan.mounts == (Mount("/dev/d0", "bind", "/dev/zero", ("bind", "rw", "nosuid")),)
    assert plan.env == (("A", "1"),)
    other = plan_devices(["ex.com/other=n", "/dev/full:/dev/f:r"], [a, b])
    assert other.mounts == (
        Mount("/dev/null", "bind", "/dev/null", ("bind", "rw", "nosuid")),
        Mount("/dev/f", "bind", "/dev/full", ("bind", "ro", "nosuid")),
    )
    assert other.env == (("B", "2"),)


def test_later_directory_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for d, env in ((a, "V=a"), (b, "V=b")):
        dev = {"name": "d", "containerEdits": {"env": [env]}}
        (d / "s.json").write_text(json.dumps(_spec("ex.com/c", [dev])))
    assert resolve_cdi("ex.com/c=d", [a, b]).env == (("V", "b"),)


def test_unknown_names_the_searched_dirs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_cdi("ex.com/c=missing", [tmp_path, tmp_path / "none"])
    assert "ex.com/c=missing" in str(e.value)
    assert str(tmp_path / "none") in str(e.value)


def test_bad_spec_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        resolve_cdi("ex.com/c=d", [tmp_path])


def test_missing_host_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot add device"):
        plan_devices([str(tmp_path / "nope")], [])
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a device node"):
        plan_devices([str(tmp_path / "file")], [])
