"""systemd unit text for containers (pure: no I/O).

The unit's main process is a foreground ``rootless run`` (``--new``) or a
``rootless start -a`` that follows an existing container; there is no daemon to
depend on. systemd's SIGTERM reaches the container through the foreground
supervisor, which SIGKILLs it after its stop timeout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError

RESTART_POLICIES = (
    "no",
    "on-success",
    "on-failure",
    "on-abnormal",
    "on-watchdog",
    "on-abort",
    "always",
)
# Seconds systemd waits beyond the container's own stop timeout: the supervisor
# needs them to SIGKILL, record the exit and remove a --rm container.
STOP_SLACK = 10

Entries = tuple[tuple[str, str], ...]


class Invocation(Record):
    """How a unit runs rootless: the argv prefix and environment it needs."""

    argv: tuple[str, ...]
    environment: Entries = ()


class Service(Record):
    """What a generated unit says, before rendering."""

    description: str
    exec_start: tuple[str, ...]
    exec_start_pre: tuple[tuple[str, ...], ...] = ()  # failures ignored ("-")
    exec_stop: tuple[str, ...] | None = None
    notify: bool = True
    restart: str = "on-failure"
    stop_timeout: float = 10
    kill_signal: str | None = None
    environment: Entries = ()
    unit: Entries = ()  # extra [Unit] entries
    service: Entries = ()  # [Service] entries that override or add to ours
    install: Entries = (("WantedBy", "default.target"),)
    # False: arguments are literal (% and $ escaped). True: they come from a unit
    # file and keep systemd's specifiers (%N) and variables ($X).
    expand: bool = False


def quote_word(word: str, *, expand: bool = False) -> str:
    """One argument as systemd's command-line parser reads it back unchanged.

    ``%`` is a specifier and ``$`` a variable, so both are doubled unless ``expand``."""
    escaped = word if expand else word.replace("%", "%%").replace("$", "$$")
    if escaped and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def command_line(argv: Sequence[str], *, expand: bool = False) -> str:
    return " ".join(quote_word(w, expand=expand) for w in argv)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def render(service: Service, *, header: str = "") -> str:
    """The unit file text."""
    ours: list[tuple[str, str]] = [*(("Environment", f"{k}={v}") for k, v in service.environment)]
    ours += [("Restart", service.restart)]
    ours += [("TimeoutStopSec", _seconds(service.stop_timeout + STOP_SLACK))]
    expand = service.expand
    ours += [
        ("ExecStartPre", "-" + command_line(argv, expand=expand)) for argv in service.exec_start_pre
    ]
    ours += [("ExecStart", command_line(service.exec_start, expand=expand))]
    if service.exec_stop is not None:
        ours += [("ExecStop", command_line(service.exec_stop, expand=expand))]
    if service.notify:
        ours += [("Type", "notify"), ("NotifyAccess", "all")]
    else:
        ours += [("Type", "simple")]
    # SIGTERM to the main process only: the supervisor stops the container within its
    # grace period; whatever is left after TimeoutStopSec gets SIGKILL.
    ours += [("KillMode", "mixed")]
    if service.kill_signal:
        ours += [("KillSignal", service.kill_signal)]
    # The container's exit on SIGTERM (128+15) is the normal end of a stop.
    ours += [("SuccessExitStatus", "143")]
    overridden = {k for k, _ in service.service}
    ours = [(k, v) for k, v in ours if k not in overridden or k == "Environment"]
    described = any(k == "Description" for k, _ in service.unit)
    sections = [
        ("Unit", [*([] if described else [("Description", service.description)]), *service.unit]),
        ("Service", [*ours, *service.service]),
        ("Install", list(service.install)),
    ]
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for title, entries in sections:
        if not entries:
            continue
        if lines:
            lines.append("")
        lines.append(f"[{title}]")
        lines += [f"{k}={v}" for k, v in entries]
    return "\n".join(lines) + "\n"


_DROPPED_FLAGS = frozenset({"-d", "--detach", "--rm"})
_DROPPED_WITH_VALUE = frozenset({"--name", "--stop-timeout"})


def new_run_argv(create_command: Sequence[str], name: str, stop_timeout: float) -> tuple[str, ...]:
    """``run --rm --name NAME ...``: the stored ``run``/``create`` command line made a
    foreground run that removes its container (the next start creates it anew)."""
    from rootless.cli import build_parser

    words = list(create_command)
    verb = next((i for i, w in enumerate(words) if w in ("run", "create")), None)
    if verb is None:
        raise ConfigError(
            f"cannot generate a --new unit for {name}: its create command is not known",
            hint="recreate it with rootless run/create, or generate without --new",
        )
    rest = words[verb + 1 :]
    try:
        parsed = build_parser("run").parse_args(["run", *rest])
    except SystemExit:
        raise ConfigError(f"cannot re-read the create command of {name}: {rest}") from None
    positional = list(parsed.args)
    options = rest[: len(rest) - len(positional)]
    kept: list[str] = []
    skip = False
    for word in options:
        if skip:
            skip = False
        elif word in _DROPPED_FLAGS or word.partition("=")[0] in _DROPPED_WITH_VALUE:
            skip = word in _DROPPED_WITH_VALUE
        elif re.fullmatch(r"-[ditP]+", word) and "d" in word:
            if word != "-d":
                kept.append(word.replace("d", ""))
        else:
            kept.append(word)
    timeout = ("--stop-timeout", _seconds(stop_timeout))
    return ("run", "--rm", "--name", name, *timeout, *kept, *positional)


def container_service(
    *,
    name: str,
    options: Mapping[str, Any],
    invocation: Invocation,
    new: bool,
    restart_policy: str = "on-failure",
    stop_timeout: float | None = None,
) -> Service:
    """The service for container ``name`` (its record's ``options``).

    With ``new`` the unit creates the container on start and removes it on stop;
    otherwise it starts and follows the existing container."""
    if restart_policy not in RESTART_POLICIES:
        raise ConfigError(
            f'invalid --restart-policy "{restart_policy}"',
            hint="use one of " + ", ".join(RESTART_POLICIES),
        )
    timeout = float(stop_timeout if stop_timeout is not None else options.get("stop_timeout", 10))
    rootless = invocation.argv
    stop_signal = options.get("stop_signal") or None
    if new:
        run = new_run_argv(options.get("create_command") or (), name, timeout)
        return Service(
            description=f"rootless container {name}",
            exec_start_pre=((*rootless, "rm", "-f", name),),
            exec_start=(*rootless, *run),
            notify=options.get("sdnotify") != "ignore",
            restart=restart_policy,
            stop_timeout=timeout,
            kill_signal=str(stop_signal) if stop_signal else None,
            environment=invocation.environment,
        )
    return Service(
        description=f"rootless container {name}",
        exec_start=(*rootless, "start", "-a", name),
        exec_stop=(*rootless, "stop", "-t", _seconds(timeout), name),
        notify=False,
        restart=restart_policy,
        stop_timeout=timeout,
        environment=invocation.environment,
    )
