"""depends_on conditions on container records, and the project supervisor's pure parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless.container.records import ContainerRecord
from rootless.errors import ConfigError, ContainerStartError
from rootless.supervise.conditions import condition_met, met_word
from rootless.supervise.project import error_message, first_error, socket_address


def record(status: str, exit_code: int | None = None, health: str | None = None,
           checked: bool = True) -> ContainerRecord:  # fmt: skip
    return ContainerRecord(
        id="c" * 64,
        name="demo-db-1",
        image="i",
        image_id="sha256:x",
        command=("sleep",),
        created=0.0,
        status=status,
        exit_code=exit_code,
        options={"health": {"Test": ["CMD", "true"]}} if checked else {},
        health={"Status": health} if health else None,
    )


def test_started_is_met_at_once():
    assert condition_met(record("created"), "service_started", "db")


def test_healthy_waits_then_passes_or_fails():
    assert not condition_met(record("running", health="starting"), "service_healthy", "db")
    assert condition_met(record("running", health="healthy"), "service_healthy", "db")
    with pytest.raises(ContainerStartError, match="container demo-db-1 is unhealthy"):
        condition_met(record("running", health="unhealthy"), "service_healthy", "db")
    with pytest.raises(ContainerStartError, match="demo-db-1 exited with code 2"):
        condition_met(record("exited", 2), "service_healthy", "db")
    # the health a stopped container's last run ended with does not count
    with pytest.raises(ContainerStartError, match="demo-db-1 exited with code 0"):
        condition_met(record("exited", 0, health="healthy"), "service_healthy", "db")
    with pytest.raises(ConfigError, match='"db" has no healthcheck'):
        condition_met(record("running", checked=False), "service_healthy", "db")


def test_completed_successfully():
    assert not condition_met(record("running"), "service_completed_successfully", "db")
    assert condition_met(record("exited", 0), "service_completed_successfully", "db")
    with pytest.raises(ContainerStartError, match="service db didn't complete successfully"):
        condition_met(record("exited", 3), "service_completed_successfully", "db")
    assert met_word("service_completed_successfully") == "Completed_successfully"


def test_errors_cross_the_socket_with_their_kind():
    err = ConfigError("bad", hint="fix it")
    group = BaseExceptionGroup("x", [ValueError("v"), ExceptionGroup("y", [err])])
    assert first_error(group) is err
    assert error_message(err) == {"error": "bad", "hint": "fix it", "code": 125,
                                  "kind": "ConfigError"}  # fmt: skip
    assert error_message(ValueError("v"))["error"].startswith("the project supervisor failed")


def test_a_long_socket_path_goes_through_its_directory(tmp_path):
    short = Path("/run/user/1000/rootless/compose/demo.sock")
    with socket_address(short) as address:
        assert address == str(short)
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    with socket_address(deep / "demo.sock") as address:
        assert address.startswith("/proc/self/fd/") and address.endswith("/demo.sock")
        assert len(address) < 40
