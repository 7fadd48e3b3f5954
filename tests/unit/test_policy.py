from __future__ import annotations

import pytest

from rootless.errors import ConfigError
from rootless.supervise.policy import Restart, RestartPolicy, decide, parse_restart


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("", RestartPolicy("no")),
        ("no", RestartPolicy("no")),
        ("always", RestartPolicy("always")),
        ("unless-stopped", RestartPolicy("unless-stopped")),
        ("on-failure", RestartPolicy("on-failure")),
        ("on-failure:3", RestartPolicy("on-failure", 3)),
        ("on-failure:0", RestartPolicy("on-failure", 0)),
    ],
)
def test_parse(text, policy):
    assert parse_restart(text) == policy


def test_str_round_trips():
    for text in ("no", "always", "on-failure", "on-failure:5", "unless-stopped"):
        assert str(parse_restart(text)) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("on-failure:x", 'retry count "x" is not a whole number'),
        ("on-failure:-1", 'retry count "-1" is not a whole number'),
        ("on-failure:", 'retry count "" is not a whole number'),
        ("always:3", "a retry count is allowed only with on-failure"),
        ("no:1", "a retry count is allowed only with on-failure"),
        ("sometimes", "unknown policy"),
        ("Always", "unknown policy"),
    ],
)
def test_bad_values_name_the_value_and_the_forms(text, why):
    with pytest.raises(ConfigError) as e:
        parse_restart(text)
    message = str(e.value)
    assert f'invalid restart policy "{text}"' in message
    assert why in message
    assert "on-failure:N" in message and "unless-stopped" in message


def test_no_never_restarts():
    assert decide(RestartPolicy("no"), 1, 0, False, 0.1) is None


def test_on_failure_restarts_failures_up_to_the_limit():
    policy = parse_restart("on-failure:3")
    assert decide(policy, 0, 0, False, 1.0) is None
    assert decide(policy, 1, 0, False, 1.0) == Restart(0.1, 1)
    assert decide(policy, 1, 2, False, 1.0) is not None
    assert decide(policy, 1, 3, False, 1.0) is None
    unlimited = parse_restart("on-failure")
    assert decide(unlimited, 137, 1000, False, 1.0) is not None


@pytest.mark.parametrize("name", ["always", "unless-stopped"])
def test_always_restarts_any_exit_unless_stopped_by_user(name):
    policy = parse_restart(name)
    assert decide(policy, 0, 0, False, 1.0) == Restart(0.1, 1)
    assert decide(policy, 2, 50, False, 1.0) is not None
    assert decide(policy, 0, 0, True, 1.0) is None
    assert decide(policy, 143, 0, True, 1.0) is None


def test_stop_beats_on_failure():
    assert decide(parse_restart("on-failure"), 1, 0, True, 1.0) is None


def test_backoff_doubles_to_a_cap_and_resets_after_a_long_run():
    policy = parse_restart("always")
    delays = []
    last = None
    for count in range(12):
        r = decide(policy, 1, count, False, 0.5, last)
        assert r is not None and r.count == count + 1
        delays.append(r.delay)
        last = r.delay
    assert delays[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert max(delays) == 60.0 and delays[-1] == 60.0
    assert decide(policy, 1, 12, False, 10.0, last) == Restart(0.1, 13)
    assert decide(policy, 1, 12, False, 9.9, last) == Restart(60.0, 13)


def test_backoff_from_the_count_when_the_last_delay_is_not_kept():
    policy = parse_restart("always")
    assert [decide(policy, 1, n, False, 0.0).delay for n in range(4)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8]
    )
    assert decide(policy, 1, 10_000, False, 0.0).delay == 60.0
    assert decide(policy, 1, 10_000, False, 30.0).delay == 0.1
