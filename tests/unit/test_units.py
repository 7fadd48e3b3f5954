from __future__ import annotations

import os
import time

import pytest

from rootless._units import (
    format_ago,
    format_size,
    format_timestamp,
    human_duration,
    parse_duration,
    parse_duration_ns,
    parse_size,
    parse_timestamp,
    ps_status,
)
from rootless.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("10", 10.0),
        ("0", 0.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("1.5", 1.5),
        ("1h2m3s4ms", 3723.004),
        ("+3s", 3.0),
        ("250us", 0.00025),
        ("250\u00b5s", 0.00025),
        ("7ns", 7e-9),
        (" 30s ", 30.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_parse_duration_ns_is_exact():
    assert parse_duration_ns("1.000000001s") == 1_000_000_001
    assert parse_duration_ns("1h0.5m") == 3_630_000_000_000


@pytest.mark.parametrize("text", ["", "x", "10x", "1m30", "s", "-5s", "1..5s", "1 m", "5S", "."])
def test_parse_duration_rejects_with_value_and_forms(text):
    with pytest.raises(ConfigError) as e:
        parse_duration(text, what="--health-interval")
    assert f'invalid --health-interval "{text}"' in str(e.value)
    assert "negative" in str(e.value) if text.startswith("-") else "1m30s" in str(e.value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100", 100),
        ("512k", 512 * 1024),
        ("10m", 10 * 1024**2),
        ("1g", 1024**3),
        ("1G", 1024**3),
        ("10MB", 10 * 1024**2),
        ("10MiB", 10 * 1024**2),
        ("10 m", 10 * 1024**2),
        ("1.5k", 1536),
        ("2b", 2),
        ("1t", 1024**4),
    ],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "10x", "-1m", "1.2.3m", "10 mb b"])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError, match=f'invalid max-size "{text}".*512k'):
        parse_size(text, what="max-size")


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1234567, "1.23MB"),
        (5_830_000, "5.83MB"),
        (999_999, "1MB"),  # go-units would print "1e+03kB"
        (82_300, "82.3kB"),
        (3 * 10**9, "3GB"),
    ],
)
def test_format_size(size, text):
    assert format_size(size) == text


def test_format_size_precision_and_space():
    assert format_size(1234567, precision=4) == "1.235MB"
    assert format_size(82_300, space=True) == "82.3 kB"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "Less than a second"),
        (1, "1 second"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (119, "About a minute"),
        (120, "2 minutes"),
        (3599, "59 minutes"),
        (3600, "About an hour"),
        (5399, "About an hour"),
        (5400, "2 hours"),
        (47 * 3600, "47 hours"),
        (48 * 3600, "2 days"),
        (14 * 86400, "2 weeks"),
        (60 * 86400, "2 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds, text):
    assert human_duration(seconds) == text


def test_format_ago_and_ps_status():
    now = 1_000_000.0
    assert format_ago(now - 70, now) == "About a minute ago"
    assert ps_status("running", started=now - 180, now=now) == "Up 3 minutes"
    assert ps_status("running", started=now - 5, now=now, health="healthy") == (
        "Up 5 seconds (healthy)"
    )
    assert ps_status("exited", finished=now - 2, exit_code=0, now=now) == (
        "Exited (0) 2 seconds ago"
    )
    assert ps_status("exited", finished=now - 3600, exit_code=137, now=now) == (
        "Exited (137) About an hour ago"
    )
    assert ps_status("created", now=now) == "Created"


@pytest.fixture
def utc_plus_2(monkeypatch):
    """Local time zone fixed for times written without a zone."""
    monkeypatch.setenv("TZ", "Etc/GMT-2")  # POSIX sign: this is UTC+2
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2024-05-01T10:00:00Z", 1714557600 * 10**9),
        ("2024-05-01T10:00:00.5Z", 1714557600 * 10**9 + 500_000_000),
        ("2024-05-01T10:00:00.123456789Z", 1714557600 * 10**9 + 123456789),
        ("2024-05-01T12:00:00+02:00", 1714557600 * 10**9),
        ("2024-05-01T07:30:00-0230", 1714557600 * 10**9),
        ("2024-05-01t10:00:00z", 1714557600 * 10**9),
        ("1714557600", 1714557600 * 10**9),
        ("1714557600.25", 1714557600 * 10**9 + 250_000_000),
        ("1714557600.000000001", 1714557600 * 10**9 + 1),
    ],
)
def test_parse_timestamp_absolute(text, ns):
    assert parse_timestamp(text) == ns


def test_parse_timestamp_without_zone_is_local(utc_plus_2):
    assert os.environ["TZ"] == "Etc/GMT-2"
    assert parse_timestamp("2024-05-01T12:00:00") == 1714557600 * 10**9
    assert parse_timestamp("2024-05-01T12:00") == 1714557600 * 10**9
    assert parse_timestamp("2024-05-01T12") == 1714557600 * 10**9
    assert parse_timestamp("2024-05-01") == (1714557600 - 12 * 3600) * 10**9


def test_parse_timestamp_relative_duration():
    now = 1_700_000_000 * 10**9
    assert parse_timestamp("10m", now_ns=now) == now - 600 * 10**9
    assert parse_timestamp("1h30m", now_ns=now) == now - 5400 * 10**9
    before = time.time_ns()
    assert before - 5 * 10**9 <= parse_timestamp("5s") <= time.time_ns() - 5 * 10**9


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "2024-02-30T00:00:00Z", "1.2.3", ""])
def test_parse_timestamp_rejects(text):
    with pytest.raises(ConfigError, match=f'invalid --since "{text}".*RFC 3339.*Unix.*10m'):
        parse_timestamp(text, what="--since")


def test_format_timestamp_is_go_rfc3339nano():
    assert format_timestamp(1714557600 * 10**9) == "2024-05-01T10:00:00Z"
    assert format_timestamp(1714557600 * 10**9 + 120_000_000) == "2024-05-01T10:00:00.12Z"
    assert parse_timestamp(format_timestamp(1714557600 * 10**9 + 7)) == 1714557600 * 10**9 + 7
