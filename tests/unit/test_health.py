from __future__ import annotations

import json

import pytest

from rootless.errors import ConfigError
from rootless.supervise.health import (
    HealthConfig,
    HealthResult,
    HealthState,
    health_config,
)

S = 10**9
IMAGE = {
    "Test": ["CMD", "/bin/check", "--quick"],
    "Interval": 5 * S,
    "Timeout": 2 * S,
    "StartPeriod": 60 * S,
    "Retries": 7,
}


def test_no_healthcheck_anywhere():
    assert health_config(None) is None
    assert health_config({}) is None


def test_from_image_with_its_values():
    cfg = health_config(IMAGE)
    assert cfg == HealthConfig(("CMD", "/bin/check", "--quick"), 5.0, 2.0, 7, 60.0)
    assert cfg.argv() == ("/bin/check", "--quick")


def test_image_zeros_mean_defaults():
    cfg = health_config({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 0})
    assert cfg == HealthConfig(("CMD-SHELL", "curl -f localhost"), 30.0, 30.0, 3, 0.0)
    assert cfg.argv() == ("/bin/sh", "-c", "curl -f localhost")


def test_flags_override_fields_one_by_one():
    cfg = health_config(IMAGE, interval="1m30s", retries=2)
    assert cfg == HealthConfig(("CMD", "/bin/check", "--quick"), 90.0, 2.0, 2, 60.0)
    cfg = health_config(IMAGE, cmd="true", timeout="500ms", start_period="0")
    assert cfg == HealthConfig(("CMD-SHELL", "true"), 5.0, 0.5, 7, 60.0)


def test_flags_without_image():
    cfg = health_config(None, cmd="wget -q -O- localhost || exit 1", interval="10")
    assert cfg == HealthConfig(("CMD-SHELL", "wget -q -O- localhost || exit 1"), 10.0, 30.0, 3, 0.0)


@pytest.mark.parametrize(
    ("cmd", "test"),
    [
        ('["CMD", "ls", "/"]', ("CMD", "ls", "/")),
        ('["cmd-shell", "ls /"]', ("CMD-SHELL", "ls /")),
        ('["ls", "/"]', ("CMD", "ls", "/")),
        ("ls /", ("CMD-SHELL", "ls /")),
    ],
)
def test_health_cmd_forms(cmd, test):
    assert health_config(None, cmd=cmd).test == test


def test_none_disables_the_image_check():
    assert health_config(IMAGE, cmd="none") is None
    assert health_config(IMAGE, cmd='["NONE"]') is None
    assert health_config({"Test": ["NONE"]}) is None
    assert health_config(IMAGE, disabled=True) is None


def test_flag_enables_a_check_the_image_turned_off():
    cfg = health_config({"Test": ["NONE"], "Retries": 9}, cmd="true")
    assert cfg is not None and cfg.retries == 9


def test_no_healthcheck_conflicts_with_health_flags():
    with pytest.raises(ConfigError, match="--no-healthcheck conflicts with --health-interval"):
        health_config(IMAGE, disabled=True, interval="5s")


def test_timing_flags_without_any_command_are_an_error():
    with pytest.raises(ConfigError, match="--health-retries given, but there is no healthcheck"):
        health_config(None, retries=3)
    with pytest.raises(ConfigError, match="no healthcheck command"):
        health_config({"Test": ["NONE"]}, interval="1s")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cmd": "true", "interval": "soon"}, 'invalid --health-interval "soon"'),
        ({"cmd": "true", "timeout": "-1s"}, 'invalid --health-timeout "-1s"'),
        ({"cmd": "true", "start_period": "10ns"}, "shorter than 1ms"),
        ({"cmd": "true", "retries": -1}, 'invalid --health-retries "-1"'),
        ({"cmd": "[1, 2]"}, "JSON array of strings"),
        ({"cmd": "[oops"}, "JSON array of strings"),
        ({"cmd": "  "}, "empty --health-cmd"),
        ({"cmd": '["CMD"]'}, "invalid healthcheck test"),
    ],
)
def test_bad_flags(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        health_config(None, **kwargs)


def test_bad_image_test():
    with pytest.raises(ConfigError, match=r"invalid healthcheck test \['RUN', 'x'\] in the image"):
        health_config({"Test": ["RUN", "x"]})


def test_config_round_trips_through_json():
    cfg = health_config(IMAGE, interval="250ms")
    stored = json.loads(json.dumps(cfg.to_json()))
    assert stored["Interval"] == 250_000_000
    assert health_config(stored) == cfg


CFG = HealthConfig(("CMD", "check"), retries=3, start_period=10.0)
T0 = 1_700_000_000 * S


def run(state, at, code, output=b""):
    return state.record(
        HealthResult.from_run(T0 + at * S, T0 + at * S + 1000, code, output), CFG, T0
    )


def test_starting_then_healthy_then_unhealthy_after_retries():
    s = HealthState()
    assert s.status == "starting"
    s = run(s, 11, 0)
    assert (s.status, s.failing_streak) == ("healthy", 0)
    s = run(s, 12, 1)
    s = run(s, 13, 1)
    assert (s.status, s.failing_streak) == ("healthy", 2)
    s = run(s, 14, 2)
    assert (s.status, s.failing_streak) == ("unhealthy", 3)
    s = run(s, 15, 1)
    assert (s.status, s.failing_streak) == ("unhealthy", 4)
    s = run(s, 16, 0)
    assert (s.status, s.failing_streak) == ("healthy", 0)


def test_failures_in_the_start_period_do_not_count():
    s = HealthState()
    for at in range(0, 10, 2):
        s = run(s, at, 1)
    assert (s.status, s.failing_streak) == ("starting", 0)
    assert len(s.log) == 5  # but they are logged
    s = run(s, 10, 1)
    s = run(s, 11, 1)
    assert (s.status, s.failing_streak) == ("starting", 2)
    s = run(s, 12, 1)
    assert s.status == "unhealthy"


def test_start_period_ends_with_the_first_success():
    s = run(HealthState(), 1, 0)
    s = run(s, 2, 1)
    assert (s.status, s.failing_streak) == ("healthy", 1)


def test_log_keeps_the_last_five_and_caps_output():
    s = HealthState()
    for at in range(20, 28):
        s = run(s, at, 0, b"x" * 5000 if at == 27 else b"run %d" % at)
    assert [r.start_ns for r in s.log] == [T0 + at * S for at in range(23, 28)]
    assert len(s.log[-1].output) == 4096
    assert s.log[0].output == "run 23"


def test_timeout_result_is_a_failure():
    r = HealthResult.timed_out(T0, T0 + 30 * S, 30.0)
    assert r.exit_code == -1 and r.output == "Health check exceeded timeout (30s)"
    s = HealthState(status="healthy")
    for _ in range(3):
        s = s.record(r, CFG, T0 - 100 * S)
    assert s.status == "unhealthy"


def test_state_json_is_podmans_shape_and_round_trips():
    s = run(run(HealthState(), 11, 1, b"boom\n"), 12, 0, b"ok")
    doc = s.to_json()
    assert doc == {
        "Status": "healthy",
        "FailingStreak": 0,
        "Log": [
            {
                "Start": "2023-11-14T22:13:31Z",
                "End": "2023-11-14T22:13:31.000001Z",
                "ExitCode": 1,
                "Output": "boom\n",
            },
            {
                "Start": "2023-11-14T22:13:32Z",
                "End": "2023-11-14T22:13:32.000001Z",
                "ExitCode": 0,
                "Output": "ok",
            },
        ],
    }
    assert HealthState.from_json(json.loads(json.dumps(doc))) == s
