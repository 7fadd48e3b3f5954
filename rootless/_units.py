"""Durations, sizes and times: parsing user input and formatting for people.

The accepted forms follow Podman and Docker:

- durations use Go's ``time.ParseDuration`` syntax (``1m30s``, ``500ms``, ``2h``,
  ``1.5s``; units ns, us, µs, ms, s, m, h). Go rejects a bare number other than
  ``0``; rootless reads a bare number as seconds (``10`` = ``10s``), the unit Podman
  uses for ``--time``/``--stop-timeout``, so both spellings work everywhere;
- sizes use Docker's ``RAMInBytes`` rules: a number and an optional unit b, k, m,
  g, t or p, any case, an optional ``b``/``ib`` suffix, 1024-based;
- ``--since``/``--until`` times: RFC 3339 (with or without fraction and zone; no
  zone means local time), a date, Unix seconds, or a duration before now.

Formatting mirrors docker/go-units: ``HumanDuration`` ("About a minute") and
``HumanSizeWithPrecision`` (1000-based, ``"1.23MB"``).
"""

from __future__ import annotations

import datetime
import re
import time

from rootless.errors import ConfigError

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION = re.compile(r"(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_DURATION_PART = re.compile(r"(\d*)\.?(\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_BARE_NUMBER = re.compile(r"(\d*)\.?(\d*)")
_DURATION_FORMS = "use a number with a unit (300ms, 10s, 1m30s, 2h) or plain seconds (10)"


def _fixed_ns(whole: str, frac: str, scale: int) -> int:
    """``whole.frac`` times ``scale`` nanoseconds, exactly (no float rounding)."""
    value = int(whole or "0") * scale
    if frac:
        value += int(frac) * scale // 10 ** len(frac)
    return value


def _duration_ns(text: str) -> int | None:
    """Go duration syntax (plus bare seconds) in nanoseconds; None when it does not parse."""
    body = text[1:] if text[:1] == "+" else text
    if not body or body == ".":
        return None
    bare = _BARE_NUMBER.fullmatch(body)
    if bare:
        return _fixed_ns(bare[1], bare[2], 1_000_000_000)
    if not _DURATION.fullmatch(body):
        return None
    return sum(
        _fixed_ns(whole, frac, _NS_PER_UNIT[unit])
        for whole, frac, unit in _DURATION_PART.findall(body)
    )


def parse_duration_ns(text: str, *, what: str = "duration") -> int:
    """A non-negative duration in nanoseconds; ``what`` names the flag in errors."""
    ns = _duration_ns(text.strip())
    if ns is None:
        hint = _DURATION_FORMS
        if text.strip().startswith("-"):
            hint = "a duration must not be negative"
        raise ConfigError(f'invalid {what} "{text}"', hint=hint)
    return ns


def parse_duration(text: str, *, what: str = "duration") -> float:
    """A non-negative duration in seconds: ``"1m30s"`` -> 90.0, ``"10"`` -> 10.0."""
    return parse_duration_ns(text, what=what) / 1e9


_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kmgtp])?i?b?", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}


def parse_size(text: str, *, what: str = "size") -> int:
    """Bytes from ``"512k"``, ``"10m"``, ``"1g"``, ``"100"`` (1024-based, any case)."""
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ConfigError(
            f'invalid {what} "{text}"',
            hint="use a number of bytes with an optional unit b, k, m or g "
            "(1024-based), e.g. 100, 512k, 10m, 1g",
        )
    number, unit = m[1], (m[2] or "").lower()
    if "." in number:
        return int(float(number) * (1 << _SIZE_SHIFT[unit]))
    return int(number) << _SIZE_SHIFT[unit]


_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def format_size(size: float, *, precision: int = 3, space: bool = False) -> str:
    """``1234567`` -> ``"1.23MB"`` (1000-based, ``precision`` significant digits).

    Podman's ``ps --size`` writes ``"1.23MB"``; ``images`` separates the unit
    (``space=True``: ``"1.23 MB"``). Unlike go-units, a value that rounds up to
    1000 moves to the next unit (``"1MB"``, not ``"1e+03kB"``).
    """
    value = float(size)
    unit = 0
    while unit < len(_DECIMAL_UNITS) - 1 and (
        value >= 1000 or float(f"{value:.{precision}g}") >= 1000
    ):
        value /= 1000
        unit += 1
    return f"{value:.{precision}g}{' ' if space else ''}{_DECIMAL_UNITS[unit]}"


def human_duration(seconds: float) -> str:
    """go-units ``HumanDuration``: ``"Less than a second"``, ``"About a minute"``, ``"3 days"``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{s // 3600 // 24 // 365} years"


def format_ago(then: float, now: float) -> str:
    """Podman's CREATED column: ``"2 minutes ago"``, ``"About a minute ago"``."""
    return f"{human_duration(now - then)} ago"


def ps_status(
    status: str,
    *,
    now: float,
    started: float | None = None,
    finished: float | None = None,
    exit_code: int | None = None,
    health: str | None = None,
) -> str:
    """Podman's ps STATUS column: ``"Up 3 minutes (healthy)"``, ``"Exited (0) 2 seconds ago"``.

    Times are Unix seconds; other states are capitalised (``"Created"``).
    """
    if status == "running" and started is not None:
        text = f"Up {human_duration(now - started)}"
    elif status in ("exited", "stopped"):
        text = f"Exited ({exit_code if exit_code is not None else 0})"
        if finished is not None:
            text += f" {format_ago(finished, now)}"
    else:
        text = status[:1].upper() + status[1:]
    return f"{text} ({health})" if health else text


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?"
    r"([Zz]|[+-]\d{2}:?\d{2})?"
)
_UNIX_TIME = re.compile(r"(\d+)(?:\.(\d{1,9}))?")


def _rfc3339_ns(m: re.Match[str]) -> int:
    year, month, day, hour, minute, sec = (int(g or 0) for g in m.groups()[:6])
    frac, zone = m[7] or "", m[8]
    tz = None  # no zone: local time, as Docker and Podman read it
    if zone in ("Z", "z"):
        tz = datetime.UTC
    elif zone is not None:
        digits = zone[1:].replace(":", "")
        offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        tz = datetime.timezone(-offset if zone[0] == "-" else offset)
    when = datetime.datetime(year, month, day, hour, minute, sec, tzinfo=tz)
    return int(when.timestamp()) * 1_000_000_000 + _fixed_ns("", frac, 1_000_000_000)


def parse_timestamp(text: str, *, now_ns: int | None = None, what: str = "time") -> int:
    """Nanoseconds since the epoch for ``--since``/``--until``.

    Accepts RFC 3339 (``2024-05-01T10:00:00.5Z``, ``2024-05-01T10:00``, a date;
    no zone = local time), Unix seconds (``1700000000``, ``1700000000.123``), or a
    duration before ``now_ns`` (``10m``, ``1h30m``).
    """
    value = text.strip()
    if m := _UNIX_TIME.fullmatch(value):
        return _fixed_ns(m[1], m[2] or "", 1_000_000_000)
    if m := _RFC3339.fullmatch(value):
        try:
            return _rfc3339_ns(m)
        except (ValueError, OverflowError):
            pass
    elif (ago := _duration_ns(value)) is not None:
        return (time.time_ns() if now_ns is None else now_ns) - ago
    raise ConfigError(
        f'invalid {what} "{text}"',
        hint="use RFC 3339 (2024-05-01T10:00:00Z, 2024-05-01T10:00:00.5+02:00, 2024-05-01), "
        "Unix seconds (1700000000.5) or a duration before now (10m, 1h30m)",
    )


def format_timestamp(ns: int) -> str:
    """Go's RFC3339Nano in UTC: ``"2024-05-01T10:00:00.5Z"`` (trailing zeros dropped)."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"
