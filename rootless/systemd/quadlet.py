"""Declarative ``.container`` files (as Podman's Quadlet) turned into service units (pure).

A ``NAME.container`` file has systemd's unit syntax. Its ``[Container]`` section says
what to run; ``[Unit]``, ``[Service]`` and ``[Install]`` are passed through. The result
is ``NAME.service``, whose main process is a foreground ``rootless run``.
"""

from __future__ import annotations

import shlex

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.systemd.generate import Invocation, Service, render

# [Container] key -> the run flag it becomes (one flag per value).
_FLAGS = {
    "PublishPort": "--publish",
    "Volume": "--volume",
    "Network": "--network",
    "HealthCmd": "--health-cmd",
    "HealthInterval": "--health-interval",
    "HealthTimeout": "--health-timeout",
    "HealthRetries": "--health-retries",
    "HealthStartPeriod": "--health-start-period",
    "User": "--user",
    "WorkingDir": "--workdir",
    "Rootfs": "--rootfs",
    "StopTimeout": "--stop-timeout",
}
_OTHER_KEYS = frozenset({"Image", "Exec", "Environment", "ContainerName", "RootlessArgs", "Notify"})
_PASSED_SECTIONS = ("Unit", "Service", "Install")


class Entry(Record):
    key: str
    value: str
    line: int


class UnitFile(Record):
    """Sections in order, each a list of entries (keys may repeat)."""

    path: str
    sections: tuple[tuple[str, tuple[Entry, ...]], ...]

    def entries(self, section: str) -> tuple[Entry, ...]:
        return tuple(e for name, entries in self.sections if name == section for e in entries)


def parse_unit(text: str, path: str) -> UnitFile:
    """systemd unit syntax: ``[Section]``, ``Key=Value``, ``#``/``;`` comments and
    lines continued by a trailing backslash."""
    sections: list[tuple[str, list[Entry]]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], []))
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{path}:{start}: expected Key=Value or [Section], got {line!r}")
        if not sections:
            raise ConfigError(f"{path}:{start}: {key.strip()}= is outside any [Section]")
        sections[-1][1].append(Entry(key.strip(), value.strip(), start))
    return UnitFile(path, tuple((name, tuple(entries)) for name, entries in sections))


def _words(entry: Entry, path: str) -> list[str]:
    try:
        return shlex.split(entry.value)
    except ValueError as e:
        raise ConfigError(f"{path}:{entry.line}: {entry.key}= {e}") from None


def plan_service(
    unit: UnitFile, service_name: str, invocation: Invocation
) -> tuple[Service, list[str]]:
    """The service for a parsed ``.container`` file, and warnings (unknown keys and
    sections) that name the file and line."""
    warnings: list[str] = []
    path = unit.path
    for name, entries in unit.sections:
        if name != "Container" and name not in _PASSED_SECTIONS:
            line = entries[0].line - 1 if entries else 0
            warnings.append(f"{path}: unknown section [{name}] ignored (near line {line})")
    image: str | None = None
    name = f"systemd-{service_name}"
    command: list[str] = []
    flags: list[str] = []
    notify = "conmon"
    for entry in unit.entries("Container"):
        key, value = entry.key, entry.value
        if key in _FLAGS:
            flags += [_FLAGS[key], value]
        elif key == "Image":
            image = value
        elif key == "Exec":
            command = _words(entry, path)
        elif key == "Environment":
            for word in _words(entry, path):
                flags += ["--env", word]
        elif key == "ContainerName":
            name = value
        elif key == "RootlessArgs":
            flags += _words(entry, path)
        elif key == "Notify":
            notify = _notify_mode(entry, path)
        else:
            warnings.append(f"{path}:{entry.line}: unknown key {key}= in [Container] ignored")
    rootfs = "--rootfs" in flags
    if (image is None) == (not rootfs):
        raise ConfigError(
            f"{path}: [Container] needs exactly one of Image= and Rootfs=",
            hint="Image=docker.io/library/busybox, or Rootfs=/absolute/dir",
        )
    if rootfs and not command:
        raise ConfigError(f"{path}: Rootfs= needs Exec= (a root filesystem has no command)")
    stop_timeout = 10.0
    if "--stop-timeout" in flags:
        text = flags[flags.index("--stop-timeout") + 1]
        try:
            stop_timeout = float(text)
        except ValueError:
            raise ConfigError(f"{path}: StopTimeout={text} is not a number of seconds") from None
    rootless = invocation.argv
    run = [*rootless, "run", "--rm", "--name", name, f"--sdnotify={notify}", *flags]
    run += [image] if image is not None else []
    run += command
    passthrough = {s: tuple((e.key, e.value) for e in unit.entries(s)) for s in _PASSED_SECTIONS}
    service = Service(
        description=f"rootless container {name} ({service_name}.container)",
        exec_start_pre=((*rootless, "rm", "-f", name),),
        exec_start=tuple(run),
        restart="no",
        stop_timeout=stop_timeout,
        environment=invocation.environment,
        unit=(("SourcePath", path), *passthrough["Unit"]),
        service=passthrough["Service"],
        install=passthrough["Install"],
        expand=True,
    )
    return service, warnings


def _notify_mode(entry: Entry, path: str) -> str:
    value = entry.value.lower()
    if value in ("true", "yes", "1", "on"):
        return "container"
    if value in ("false", "no", "0", "off"):
        return "conmon"
    if value == "healthy":
        return "healthy"  # as Podman's Quadlet: READY=1 once the healthcheck passes
    raise ConfigError(
        f"{path}:{entry.line}: Notify={entry.value} is not supported",
        hint="use Notify=true (the container sends READY=1), false or healthy",
    )


def convert(text: str, path: str, invocation: Invocation) -> tuple[str, str, list[str]]:
    """``.container`` text -> (service unit name, unit text, warnings)."""
    base = path.rsplit("/", 1)[-1]
    if not base.endswith(".container") or base == ".container":
        raise ConfigError(f"{path}: a container unit file's name must end in .container")
    stem = base[: -len(".container")]
    service, warnings = plan_service(parse_unit(text, path), stem, invocation)
    header = f"{stem}.service\nautogenerated by rootless-generator from {path}"
    return f"{stem}.service", render(service, header=header), warnings


def install_targets(unit_text: str) -> list[tuple[str, str]]:
    """(``wants``|``requires``, target) pairs from a unit's [Install] section: a
    generator must make these links itself, since generated units cannot be enabled."""
    pairs = []
    for entry in parse_unit(unit_text, "").entries("Install"):
        kind = {"WantedBy": "wants", "RequiredBy": "requires"}.get(entry.key)
        if kind is not None:
            pairs += [(kind, target) for target in entry.value.split()]
    return pairs
