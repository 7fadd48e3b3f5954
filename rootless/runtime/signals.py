"""Signal names and numbers as users write them (pure)."""

from __future__ import annotations

import signal

from rootless.errors import ConfigError


def parse_signal(text: str) -> int:
    """``SIGTERM``, ``TERM``, ``term`` or ``15``; ``RTMIN+3`` too."""
    value = text.strip().upper()
    if value.isdigit():
        number = int(value)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = value if value.startswith("SIG") else f"SIG{value}"
        if name.startswith("SIGRTMIN+") and name[9:].isdigit():
            number = signal.SIGRTMIN + int(name[9:])
            if number <= signal.SIGRTMAX:
                return number
        member = getattr(signal.Signals, name, None)
        if isinstance(member, signal.Signals):
            return int(member)
    raise ConfigError(
        f'invalid signal "{text}"', hint="use a name like SIGTERM, TERM or KILL, or a number"
    )
