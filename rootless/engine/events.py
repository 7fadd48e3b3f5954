"""``events``: read, filter, format and follow the events log (``rootless._events``).

Parsing, filtering and formatting are pure; :func:`read_events` reads the log and
:func:`follow_events` polls it for new lines.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from rootless._units import format_timestamp
from rootless.errors import ConfigError

POLL_SECONDS = 0.2
FILTER_KEYS = ("type", "event", "container", "image", "volume", "network", "label")


@attrs.frozen
class Event:
    time_ns: int
    type: str
    status: str
    id: str
    name: str
    image: str
    attributes: Mapping[str, str]


def parse_line(line: bytes) -> Event | None:
    """One log line; None for a line that is not an event (a torn or foreign line)."""
    try:
        raw = json.loads(line)
        return Event(
            int(raw["time"]),
            str(raw["type"]),
            str(raw["status"]),
            str(raw["id"]),
            str(raw.get("name", "")),
            str(raw.get("image", "")),
            {str(k): str(v) for k, v in (raw.get("attributes") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@attrs.frozen
class EventFilter:
    """``--filter`` values by key: a key's values are alternatives, keys must all match."""

    by_key: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    since_ns: int | None = None
    until_ns: int | None = None

    def matches(self, event: Event) -> bool:
        if self.since_ns is not None and event.time_ns < self.since_ns:
            return False
        if self.until_ns is not None and event.time_ns > self.until_ns:
            return False
        return all(any(_match(key, v, event) for v in vs) for key, vs in self.by_key.items())


def _match(key: str, value: str, event: Event) -> bool:
    if key == "type":
        return event.type == value
    if key == "event":
        return event.status == value
    if key == "label":  # KEY or KEY=VALUE, among a container event's attributes
        k, sep, v = value.partition("=")
        return k in event.attributes and (not sep or event.attributes[k] == v)
    if key in ("container", "volume", "network"):
        return event.type == key and (
            value == event.name or (len(value) >= 3 and event.id.startswith(value))
        )
    # image: an image event's name or ID, or the image a container event names
    names = (event.name.split(",") if event.type == "image" else []) + [event.image]
    return value in names or (event.type == "image" and event.id.startswith(value))


def parse_filters(
    filters: Sequence[str], since_ns: int | None = None, until_ns: int | None = None
) -> EventFilter:
    by_key: dict[str, set[str]] = {}
    for f in filters:
        key, sep, value = f.partition("=")
        key = "event" if key == "status" else key
        if not sep or not value or key not in FILTER_KEYS:
            raise ConfigError(
                f'invalid filter "{f}"',
                hint="use type=container|image|volume|network, event=NAME, container=NAME|ID, "
                "image=NAME|ID, volume=NAME, network=NAME|ID or label=KEY[=VALUE]",
            )
        by_key.setdefault(key, set()).add(value)
    return EventFilter({k: frozenset(v) for k, v in by_key.items()}, since_ns, until_ns)


def _local_time(ns: int) -> str:
    """Podman's text time: ``2024-05-01 10:00:00.123456789 +0000 UTC``."""
    when = datetime.datetime.fromtimestamp(ns // 1_000_000_000).astimezone()
    zone = when.strftime("%z")
    name = when.tzname() or zone
    return f"{when:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d} {zone} {name}"


def as_fields(event: Event) -> dict[str, Any]:
    """The event as ``--format`` sees it (Podman's JSON field names)."""
    return {
        "ID": event.id,
        "Image": event.image,
        "Name": event.name,
        "Status": event.status,
        "Time": format_timestamp(event.time_ns),
        "TimeNano": event.time_ns,
        "Type": event.type,
        "Attributes": dict(event.attributes),
    }


def format_text(event: Event) -> str:
    """Podman's default line: ``TIME container start ID (image=..., name=...)``."""
    attrs_ = dict(event.attributes)
    if event.image and event.type == "container":
        attrs_["image"] = event.image
    if event.name:
        attrs_["name"] = event.name
    details = ", ".join(f"{k}={attrs_[k]}" for k in sorted(attrs_))
    return f"{_local_time(event.time_ns)} {event.type} {event.status} {event.id} ({details})"


def formatter(fmt: str | None) -> Callable[[Event], str]:
    """The function that turns one event into its output line(s)."""
    if not fmt:
        return lambda e: format_text(e) + "\n"
    if fmt.strip() == "json":
        return lambda e: json.dumps(as_fields(e), separators=(",", ":")) + "\n"
    from rootless.cli._format import render

    render([], fmt, columns=())  # a bad template fails now, not at the first event
    return lambda e: render([as_fields(e)], fmt, columns=())


def _lines(fd: int, pending: bytearray) -> Iterator[bytes]:
    """Complete lines readable from ``fd`` now; a partial last line waits in ``pending``."""
    while chunk := os.read(fd, 65536):
        pending += chunk
    *lines, rest = bytes(pending).split(b"\n")
    pending[:] = rest
    yield from lines


def read_events(path: Path, filt: EventFilter) -> list[Event]:
    """The events in the log (its older generation first) that pass ``filt``, oldest
    first."""
    from rootless._events import older_log

    return _read(older_log(path), filt) + _read(path, filt)


def _read(file: Path, filt: EventFilter) -> list[Event]:
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        return [e for e in map(parse_line, _lines(fd, bytearray())) if e and filt.matches(e)]
    finally:
        os.close(fd)


def follow_events(path: Path, filt: EventFilter, emit: Callable[[Event], None]) -> None:
    """Emit the log's events, then new ones as they are appended, until ``--until``
    passes (or forever: Ctrl-C ends it). A rotation is followed into the new file."""
    from rootless._events import older_log

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    pending = bytearray()
    try:
        for old in _read(older_log(path), filt):
            emit(old)
        while True:
            for event in map(parse_line, _lines(fd, pending)):
                if event and filt.matches(event):
                    emit(event)
            if filt.until_ns is not None and time.time_ns() > filt.until_ns:
                return
            if _rotated(path, fd):  # what was read is all the old file will get
                os.close(fd)
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                pending.clear()
                continue
            time.sleep(POLL_SECONDS)
    finally:
        os.close(fd)


def _rotated(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(fd).st_ino
    except FileNotFoundError:
        return True
