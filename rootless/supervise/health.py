"""Healthchecks: configuration from flags and image, and the health state machine.

Configuration follows Docker: the image's ``Healthcheck`` is the base and each
``--health-*`` flag replaces one field of it; ``--no-healthcheck`` (or a test of
``NONE``) turns checks off. Defaults: interval 30s, timeout 30s, 3 retries, no
start period. A zero value (flag or image) means "inherit / default".

State (shown by ``inspect`` as ``.State.Health`` and by ``ps`` in its STATUS):
``starting`` until the first success (``healthy``) or until ``retries``
consecutive failures (``unhealthy``); failures during the start period, while
still ``starting``, are logged but not counted. The last 5 results are kept,
each with at most 4 KiB of output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from rootless._units import format_timestamp, parse_duration_ns, parse_timestamp
from rootless.errors import ConfigError

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_START_PERIOD = 0.0
MIN_PERIOD = 0.001  # Docker's floor for a non-zero interval, timeout or start period
LOG_ENTRIES = 5
OUTPUT_MAX = 4096

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
_KINDS = ("CMD", "CMD-SHELL")


@attrs.frozen
class HealthConfig:
    """A healthcheck to run: ``test`` is ``("CMD", argv...)`` or ``("CMD-SHELL", line)``."""

    test: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL  # seconds
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = DEFAULT_START_PERIOD

    def argv(self) -> tuple[str, ...]:
        """The command to execute in the container."""
        if self.test[0] == "CMD-SHELL":
            return ("/bin/sh", "-c", self.test[1])
        return self.test[1:]

    def to_json(self) -> dict[str, Any]:
        """The image-config shape (durations in nanoseconds), for storing with the container."""
        return {
            "Test": list(self.test),
            "Interval": round(self.interval * 1e9),
            "Timeout": round(self.timeout * 1e9),
            "StartPeriod": round(self.start_period * 1e9),
            "Retries": self.retries,
        }


def _test_from_flag(cmd: str) -> tuple[str, ...]:
    """``--health-cmd``: a shell line, or a JSON array as Podman accepts (``["CMD", ...]``)."""
    text = cmd.strip()
    if text.upper() == "NONE":
        return ("NONE",)
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not (isinstance(items, list) and items and all(isinstance(i, str) for i in items)):
            raise ConfigError(
                f'invalid --health-cmd "{cmd}"',
                hint='give a shell command, or a JSON array of strings: ["CMD", "curl", "-f", URL]',
            )
        if items[0].upper() in (*_KINDS, "NONE"):
            return (items[0].upper(), *items[1:])
        return ("CMD", *items)
    if not text:
        raise ConfigError("empty --health-cmd", hint="give the command to run, or --no-healthcheck")
    return ("CMD-SHELL", cmd)


def _check_test(test: tuple[str, ...], origin: str) -> tuple[str, ...] | None:
    """None for NONE; the test itself if it is runnable."""
    if test[0] == "NONE":
        return None
    if test[0] not in _KINDS or len(test) < 2 or (test[0] == "CMD-SHELL" and len(test) != 2):
        raise ConfigError(
            f"invalid healthcheck test {list(test)} in {origin}",
            hint='use ["CMD", ARG...], ["CMD-SHELL", "LINE"] or ["NONE"]',
        )
    return test


def _flag_seconds(value: str | None, flag: str) -> float | None:
    if value is None:
        return None
    ns = parse_duration_ns(value, what=flag)
    if ns == 0:
        return None  # zero means: inherit
    if ns < MIN_PERIOD * 1e9:
        raise ConfigError(f'invalid {flag} "{value}": shorter than 1ms', hint="use 1ms or more")
    return ns / 1e9


def _image_seconds(image: Mapping[str, Any], key: str) -> float | None:
    value = image.get(key)
    if not isinstance(value, int) or value <= 0:
        return None
    return value / 1e9


def health_config(
    image: Mapping[str, Any] | None = None,
    *,
    cmd: str | None = None,
    interval: str | None = None,
    timeout: str | None = None,
    retries: int | None = None,
    start_period: str | None = None,
    disabled: bool = False,
) -> HealthConfig | None:
    """The healthcheck a container gets, or None.

    ``image`` is the image config's ``Healthcheck`` object (or a stored
    ``HealthConfig.to_json()``); the keyword arguments are the ``--health-*`` flags
    as given, ``disabled`` is ``--no-healthcheck``.
    """
    flags_given = [
        name
        for name, value in (
            ("--health-cmd", cmd),
            ("--health-interval", interval),
            ("--health-timeout", timeout),
            ("--health-retries", retries),
            ("--health-start-period", start_period),
        )
        if value is not None
    ]
    if disabled:
        if flags_given:
            raise ConfigError(
                f"--no-healthcheck conflicts with {', '.join(flags_given)}",
                hint="drop one of them",
            )
        return None
    if retries is not None and retries < 0:
        raise ConfigError(f'invalid --health-retries "{retries}"', hint="use 0 or more")
    image = image or {}
    periods = {
        "interval": _flag_seconds(interval, "--health-interval"),
        "timeout": _flag_seconds(timeout, "--health-timeout"),
        "start_period": _flag_seconds(start_period, "--health-start-period"),
    }
    if cmd is not None:
        test = _check_test(_test_from_flag(cmd), "--health-cmd")
    elif image.get("Test"):
        test = _check_test(tuple(image["Test"]), "the image's HEALTHCHECK")
    else:
        test = None
    if test is None:
        if flags_given and cmd is None:
            raise ConfigError(
                f"{', '.join(flags_given)} given, but there is no healthcheck command",
                hint="add --health-cmd (the image defines no HEALTHCHECK)",
            )
        return None
    image_retries = image.get("Retries")
    return HealthConfig(
        test=test,
        interval=periods["interval"] or _image_seconds(image, "Interval") or DEFAULT_INTERVAL,
        timeout=periods["timeout"] or _image_seconds(image, "Timeout") or DEFAULT_TIMEOUT,
        retries=retries
        or (image_retries if isinstance(image_retries, int) and image_retries > 0 else 0)
        or DEFAULT_RETRIES,
        start_period=periods["start_period"]
        or _image_seconds(image, "StartPeriod")
        or DEFAULT_START_PERIOD,
    )


@attrs.frozen
class HealthResult:
    """One run of the check; times in nanoseconds since the epoch."""

    start_ns: int
    end_ns: int
    exit_code: int
    output: str

    @classmethod
    def from_run(cls, start_ns: int, end_ns: int, exit_code: int, output: bytes) -> HealthResult:
        """The result of a finished check; output beyond 4 KiB is cut, as Docker does."""
        text = output[:OUTPUT_MAX].decode("utf-8", "replace")
        return cls(start_ns, end_ns, exit_code, text)

    @classmethod
    def timed_out(cls, start_ns: int, end_ns: int, timeout: float) -> HealthResult:
        return cls(start_ns, end_ns, -1, f"Health check exceeded timeout ({timeout:g}s)")

    def to_json(self) -> dict[str, Any]:
        return {
            "Start": format_timestamp(self.start_ns),
            "End": format_timestamp(self.end_ns),
            "ExitCode": self.exit_code,
            "Output": self.output,
        }


@attrs.frozen
class HealthState:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()

    def record(self, result: HealthResult, config: HealthConfig, started_ns: int) -> HealthState:
        """The state after ``result``; ``started_ns`` is when the container (re)started."""
        log = (*self.log, result)[-LOG_ENTRIES:]
        if result.exit_code == 0:
            return HealthState(HEALTHY, 0, log)
        in_start_period = result.start_ns - started_ns < config.start_period * 1e9
        if self.status == STARTING and in_start_period:
            return HealthState(self.status, self.failing_streak, log)
        streak = self.failing_streak + 1
        status = UNHEALTHY if streak >= config.retries else self.status
        return HealthState(status, streak, log)

    def to_json(self) -> dict[str, Any]:
        """Podman's ``.State.Health``: Status, FailingStreak, Log."""
        return {
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            "Log": [r.to_json() for r in self.log],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HealthState:
        log = tuple(
            HealthResult(
                parse_timestamp(entry["Start"]),
                parse_timestamp(entry["End"]),
                int(entry["ExitCode"]),
                str(entry.get("Output", "")),
            )
            for entry in data.get("Log") or ()
        )
        return cls(str(data["Status"]), int(data.get("FailingStreak", 0)), log)
