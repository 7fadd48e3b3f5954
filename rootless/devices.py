"""``--device``: host device nodes and CDI devices for a container.

In a user namespace a container cannot mknod, so every device is the host's node
bound into the container (it works for nodes the user may open). CDI names
(``vendor.com/class=name``) are looked up in Container Device Interface spec files
(JSON or YAML) and bring device nodes, environment variables and mounts.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.spec import Mount

_CDI_NAME = re.compile(r"([a-z0-9][a-z0-9.-]*\.[a-z]{2,}/[a-zA-Z0-9][a-zA-Z0-9_.-]*)=(\S+)")
_PERMS = re.compile(r"[rwm]{1,3}")


class DeviceNode(Record):
    host: str
    container: str
    permissions: str = "rwm"


class DevicePlan(Record):
    """What the devices add to a container."""

    mounts: tuple[Mount, ...] = ()
    env: tuple[tuple[str, str], ...] = ()


def is_cdi_name(text: str) -> bool:
    return _CDI_NAME.fullmatch(text) is not None


def parse_device(text: str) -> DeviceNode:
    """``HOST[:CONTAINER][:PERMISSIONS]`` (permissions from r, w, m; default rwm)."""
    parts = text.split(":")
    if len(parts) > 3 or not parts[0].startswith("/"):
        raise ConfigError(
            f'invalid --device "{text}"',
            hint="use HOST[:CONTAINER][:rwm] with absolute paths, or vendor.com/class=name",
        )
    host, container, perms = parts[0], parts[0], "rwm"
    if len(parts) == 2:
        if _PERMS.fullmatch(parts[1]):
            perms = parts[1]
        else:
            container = parts[1]
    elif len(parts) == 3:
        container, perms = parts[1], parts[2]
    if not container.startswith("/") or not _PERMS.fullmatch(perms):
        raise ConfigError(
            f'invalid --device "{text}": the container path must be absolute and the '
            "permissions made of r, w and m"
        )
    return DeviceNode(os.path.normpath(host), os.path.normpath(container), perms)


def cdi_dirs(env: Mapping[str, str]) -> tuple[Path, ...]:
    """Where CDI spec files are searched, later directories winning (as the CDI library)."""
    config = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "/"), ".config")
    return (Path("/etc/cdi"), Path("/var/run/cdi"), Path(config) / "cdi")


def load_cdi_specs(dirs: Sequence[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable spec file (``*.json``, ``*.yaml``, ``*.yml``) in ``dirs``."""
    specs = []
    for d in dirs:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            path = d / name
            if not name.endswith((".json", ".yaml", ".yml")) or not path.is_file():
                continue
            specs.append((path, _read_spec(path)))
    return specs


def _read_spec(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read CDI spec {path}: {e.strerror}") from None
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"cannot read CDI spec {path}: {e}") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"cannot read CDI spec {path}: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise ConfigError(f'cannot read CDI spec {path}: no "kind"')
    if "cdiVersion" not in data:
        raise ConfigError(f'cannot read CDI spec {path}: no "cdiVersion"')
    return data


def resolve_cdi(name: str, dirs: Sequence[Path]) -> DevicePlan:
    """The edits of CDI device ``vendor.com/class=name`` (and its spec's common edits)."""
    match = _CDI_NAME.fullmatch(name)
    if match is None:
        raise ConfigError(f'invalid CDI device name "{name}"', hint="use vendor.com/class=name")
    kind, dev_name = match.groups()
    found: tuple[dict[str, Any], dict[str, Any]] | None = None
    for _path, spec in load_cdi_specs(dirs):
        if spec["kind"] != kind:
            continue
        for dev in spec.get("devices") or ():
            if dev.get("name") == dev_name:
                found = (spec, dev)  # a later directory overrides an earlier one
    if found is None:
        searched = ", ".join(str(d) for d in dirs)
        raise ConfigError(
            f'unresolvable CDI device "{name}": no spec file defines it (searched {searched})',
            hint="write a CDI spec for it (the vendor's tool, such as nvidia-ctk cdi generate, "
            "does) into one of those directories",
        )
    spec, dev = found
    parts = [_edits(spec.get("containerEdits") or {}), _edits(dev.get("containerEdits") or {})]
    return DevicePlan(
        mounts=tuple(m for p in parts for m in p.mounts), env=tuple(e for p in parts for e in p.env)
    )


def _edits(edits: Mapping[str, Any]) -> DevicePlan:
    mounts = []
    for node in edits.get("deviceNodes") or ():
        path = node["path"]
        host = node.get("hostPath") or path
        mounts.append(_device_mount(DeviceNode(host, path, node.get("permissions") or "rwm")))
    for m in edits.get("mounts") or ():
        options = tuple(m.get("options") or ("rbind",))
        if not any(o in ("bind", "rbind") for o in options) and m.get("type") in (None, "bind"):
            options = ("rbind", *options)
        mounts.append(Mount(m["containerPath"], m.get("type") or "bind", m["hostPath"], options))
    env = []
    for item in edits.get("env") or ():
        key, sep, value = str(item).partition("=")
        if not sep:
            raise ConfigError(f'invalid CDI env entry "{item}"', hint="use KEY=VALUE")
        env.append((key, value))
    return DevicePlan(tuple(mounts), tuple(env))


def _device_mount(node: DeviceNode) -> Mount:
    try:
        mode = os.stat(node.host).st_mode
    except OSError as e:
        raise ConfigError(
            f"cannot add device {node.host}: {e.strerror}", hint="check the host path"
        ) from None
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode)):
        raise ConfigError(f"cannot add device {node.host}: not a device node or directory")
    access = "rw" if "w" in node.permissions else "ro"
    bind = "rbind" if stat.S_ISDIR(mode) else "bind"
    return Mount(node.container, "bind", node.host, (bind, access, "nosuid"))


def plan_devices(flags: Sequence[str], dirs: Sequence[Path]) -> DevicePlan:
    """The mounts and environment for ``--device`` flags (CDI names resolved in ``dirs``)."""
    mounts: list[Mount] = []
    env: list[tuple[str, str]] = []
    for text in flags:
        if is_cdi_name(text):
            plan = resolve_cdi(text, dirs)
        else:
            plan = DevicePlan((_device_mount(parse_device(text)),))
        mounts.extend(plan.mounts)
        env.extend(plan.env)
    return DevicePlan(tuple(mounts), tuple(env))
