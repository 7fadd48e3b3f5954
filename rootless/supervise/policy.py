"""Restart policies (``--restart``) and the decision to restart, with backoff.

Docker's rules, which Podman follows:

- ``no``: never restart;
- ``on-failure[:N]``: restart after a non-zero exit, at most N times (no N, or 0:
  no limit);
- ``always`` and ``unless-stopped``: restart after any exit. With no daemon that
  restarts containers at boot the two behave the same here;
- a container stopped by the user (``stop``, ``kill``, ``rm``) is never restarted.

The delay before a restart starts at 100 ms and doubles with each restart up to one
minute; it starts over once the container had run for 10 seconds or more.
"""

from __future__ import annotations

import attrs

from rootless.errors import ConfigError

POLICIES = ("no", "on-failure", "always", "unless-stopped")
BACKOFF_START = 0.1  # seconds before the first restart
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0  # a run at least this long starts the backoff over

_FORMS = "use no, on-failure, on-failure:N (N restarts at most), always or unless-stopped"


@attrs.frozen
class RestartPolicy:
    name: str  # one of POLICIES
    max_retries: int = 0  # on-failure only; 0 = no limit

    def __str__(self) -> str:
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


@attrs.frozen
class Restart:
    """Start the container again after ``delay`` seconds; it will be restart ``count``."""

    delay: float
    count: int


def parse_restart(text: str) -> RestartPolicy:
    """``--restart`` value -> policy; an empty value means ``no``."""
    name, sep, retries = text.strip().partition(":")
    if not name and not sep:
        return RestartPolicy("no")
    if name not in POLICIES:
        raise ConfigError(f'invalid restart policy "{text}": unknown policy', hint=_FORMS)
    if not sep:
        return RestartPolicy(name)
    if name != "on-failure":
        raise ConfigError(
            f'invalid restart policy "{text}": a retry count is allowed only with on-failure',
            hint=_FORMS,
        )
    if not retries.isdigit() or not retries.isascii():
        raise ConfigError(
            f'invalid restart policy "{text}": the retry count "{retries}" is not a whole number',
            hint=_FORMS,
        )
    return RestartPolicy(name, int(retries))


def decide(
    policy: RestartPolicy,
    exit_code: int,
    restart_count: int,
    stopped_by_user: bool,
    ran_for: float,
    last_delay: float | None = None,
) -> Restart | None:
    """Whether to restart a container that just exited, and after what delay.

    ``restart_count`` is how often it was restarted so far, ``ran_for`` how many
    seconds the last run lasted, ``last_delay`` the delay of the previous restart
    (pass ``Restart.delay`` back; without it the delay is derived from the count).
    """
    if stopped_by_user or policy.name == "no":
        return None
    if policy.name == "on-failure" and (
        exit_code == 0 or (policy.max_retries and restart_count >= policy.max_retries)
    ):
        return None
    if ran_for >= BACKOFF_RESET_AFTER:
        delay = BACKOFF_START
    elif last_delay is None:
        delay = BACKOFF_START * 2 ** min(restart_count, 20)
    else:
        delay = max(last_delay * 2, BACKOFF_START)
    return Restart(min(delay, BACKOFF_MAX), restart_count + 1)
