"""Parse ``-v``, ``--mount`` and ``--tmpfs`` into mount requests (pure).

The rules are Docker's and Podman's: ``-v SRC:DST[:OPTS]`` is a bind mount when
SRC is a path and a named volume when SRC is a name; ``-v DST`` is an anonymous
volume; ``--mount`` takes comma-separated ``key=value`` pairs; ``--tmpfs DST[:OPTS]``
mounts a tmpfs with ``rw,noexec,nosuid,nodev`` unless the options say otherwise.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from rootless._record import Record
from rootless.errors import ConfigError
from rootless.runtime.spec import Mount

Kind = Literal["bind", "volume", "tmpfs"]

VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")

# mount(2) flags either kind of mount takes
_FLAGS = frozenset(
    {"ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec"}
    | {"noatime", "nodiratime", "relatime", "strictatime"}
)
_PROPAGATION = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
# Accepted for compatibility: SELinux labels do not apply to this engine.
_LABELS = frozenset({"z", "Z"})
_BIND_OPTIONS = _FLAGS | _PROPAGATION | _LABELS | {"bind", "rbind"}
_VOLUME_OPTIONS = _BIND_OPTIONS | {"copy", "nocopy"}
_TMPFS_KEYS = frozenset({"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"})
# What Podman gives a --tmpfs mount unless told otherwise.
TMPFS_DEFAULTS = ("rw", "noexec", "nosuid", "nodev")
# Volumes never carry set-uid files or device nodes into a container (as Podman).
VOLUME_DEFAULTS = ("nosuid", "nodev")


class MountSpec(Record):
    """One mount a container asked for, before volumes are looked up."""

    kind: Kind
    target: str
    # bind: the host path; volume: the name (None for an anonymous volume); tmpfs: None
    source: str | None = None
    # mount options in order; later ones win (``exec`` after ``noexec``)
    options: tuple[str, ...] = ()
    # volume: copy the image's content at ``target`` into it when it is new and empty
    copy: bool = True

    @property
    def readonly(self) -> bool:
        return _last_of(self.options, "ro", "rw") == "ro"


def _last_of(options: Iterable[str], *choices: str) -> str | None:
    found = None
    for opt in options:
        if opt in choices:
            found = opt
    return found


def _target(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise ConfigError(
            f'invalid {what}: container path "{path}" is not absolute',
            hint="give the path inside the container, starting with /",
        )
    clean = posixpath.normpath(path)
    clean = "/" + clean.lstrip("/")  # normpath keeps a leading "//"
    if clean == "/":
        raise ConfigError(f"invalid {what}: cannot mount over the container's root /")
    return clean


def _check_options(opts: Sequence[str], allowed: frozenset[str], what: str) -> None:
    for o in opts:
        if o not in allowed:
            hint = "options are " + ", ".join(sorted(allowed - _LABELS)) + " (z and Z are accepted)"
            if o == "U":
                hint = "U (chown the source to the container user) is not supported"
            raise ConfigError(f'invalid {what}: unknown option "{o}"', hint=hint)


def _split_volume_options(opts: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    copy = _last_of(opts, "copy", "nocopy") != "nocopy"
    return tuple(o for o in opts if o not in ("copy", "nocopy")), copy


def parse_volume_flag(text: str, *, cwd: str = "/") -> MountSpec:
    """``-v``/``--volume``: ``DST``, ``DST:OPTS``, ``SRC:DST`` or ``SRC:DST:OPTS``.

    SRC is a host path when it starts with ``/`` or ``.`` (relative to ``cwd``),
    otherwise the name of a volume.
    """
    what = f'volume "{text}"'
    parts = text.split(":")
    if len(parts) > 3 or not all(parts[:2]):
        raise ConfigError(
            f"invalid {what}",
            hint="use -v HOSTDIR:CTRDIR[:OPTS], -v NAME:CTRDIR[:OPTS] or -v CTRDIR",
        )
    if len(parts) == 1 or (len(parts) == 2 and not parts[1].startswith("/")):
        # An anonymous volume, perhaps with options: "/data" or "/data:ro".
        opts = _options(parts[1] if len(parts) == 2 else "")
        _check_options(opts, _VOLUME_OPTIONS, what)
        rest, copy = _split_volume_options(opts)
        return MountSpec("volume", _target(parts[0], what), None, rest, copy)
    source, target = parts[0], _target(parts[1], what)
    opts = _options(parts[2] if len(parts) == 3 else "")
    if source.startswith(("/", ".")):
        _check_options(opts, _BIND_OPTIONS, what)
        return MountSpec("bind", target, posixpath.normpath(posixpath.join(cwd, source)), opts)
    _check_name(source, what)
    _check_options(opts, _VOLUME_OPTIONS, what)
    rest, copy = _split_volume_options(opts)
    return MountSpec("volume", target, source, rest, copy)


def _options(text: str) -> tuple[str, ...]:
    return tuple(o for o in text.split(",") if o)


def _check_name(name: str, what: str) -> None:
    if not VOLUME_NAME.fullmatch(name):
        raise ConfigError(
            f'invalid {what}: "{name}" is neither an absolute path nor a volume name',
            hint="volume names are letters, digits and _.- (not starting with one of _.-); "
            "host paths start with / or .",
        )


def check_volume_name(name: str) -> str:
    _check_name(name, f'volume name "{name}"')
    return name


def parse_tmpfs_flag(text: str) -> MountSpec:
    """``--tmpfs DST[:OPTS]``, e.g. ``/run:size=64m,mode=1777``."""
    what = f'tmpfs "{text}"'
    path, _, opt_text = text.partition(":")
    opts = _options(opt_text)
    _check_tmpfs_options(opts, what)
    return MountSpec("tmpfs", _target(path, what), None, TMPFS_DEFAULTS + opts)


def _check_tmpfs_options(opts: Sequence[str], what: str) -> None:
    for o in opts:
        key, eq, value = o.partition("=")
        if not eq:
            if o not in _FLAGS:
                raise ConfigError(
                    f'invalid {what}: unknown option "{o}"',
                    hint="use size=, mode=, uid=, gid=, nr_inodes= and mount flags "
                    "(ro, noexec, exec, nosuid, nodev, ...)",
                )
            continue
        if key not in _TMPFS_KEYS or not value:
            raise ConfigError(
                f'invalid {what}: unknown option "{o}"',
                hint="tmpfs takes size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=",
            )
        if key == "mode" and not re.fullmatch(r"[0-7]{1,4}", value):
            raise ConfigError(f'invalid {what}: mode "{value}" is not an octal permission')
        if key in ("uid", "gid") and not value.isdigit():
            raise ConfigError(f'invalid {what}: {key} "{value}" is not a number')


_MOUNT_KEYS = {
    "source": "source",
    "src": "source",
    "target": "target",
    "destination": "target",
    "dst": "target",
    "dest": "target",
}
_TRUE = ("", "true", "1", "yes")
_FALSE = ("false", "0", "no")


def parse_mount_flag(text: str, *, cwd: str = "/") -> MountSpec:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,ro][,...]`` (Docker's keys)."""
    what = f'mount "{text}"'
    fields: dict[str, str] = {}
    flags: list[str] = []
    kind = "volume"  # Docker's default type
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.lower()
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise ConfigError(
                    f'invalid {what}: type "{value}" is not supported',
                    hint="use type=bind, type=volume or type=tmpfs",
                )
            kind = value
        elif key in _MOUNT_KEYS:
            fields[_MOUNT_KEYS[key]] = value
        elif key in ("ro", "readonly"):
            flags.append("ro" if _bool(value, what, key) else "rw")
        elif key == "bind-propagation":
            if value not in _PROPAGATION:
                raise ConfigError(
                    f'invalid {what}: bind-propagation "{value}"',
                    hint="use " + ", ".join(sorted(_PROPAGATION)),
                )
            fields["propagation"] = value
        elif key in ("bind-nonrecursive", "volume-nocopy"):
            fields[key] = "true" if _bool(value, what, key) else "false"
        elif key in ("tmpfs-size", "tmpfs-mode"):
            fields[key] = value
        elif key in ("relabel", "consistency") or (not eq and key in _LABELS):
            continue  # SELinux relabeling and macOS consistency do not apply here
        elif not eq and key in _FLAGS:
            flags.append(key)
        else:
            raise ConfigError(
                f'invalid {what}: unknown key "{key}"',
                hint="keys are type, source, target, ro/readonly, bind-propagation, "
                "bind-nonrecursive, volume-nocopy, tmpfs-size, tmpfs-mode",
            )
    if "target" not in fields or not fields["target"]:
        raise ConfigError(f"invalid {what}: no target", hint="add target=/path/in/container")
    target = _target(fields["target"], what)
    source = fields.get("source") or None
    _only_for(what, kind, fields)
    if kind == "bind":
        if source is None:
            raise ConfigError(f"invalid {what}: a bind mount needs source=HOSTPATH")
        if not source.startswith(("/", ".")):
            raise ConfigError(f'invalid {what}: bind source "{source}" is not a path')
        first = "bind" if fields.get("bind-nonrecursive") == "true" else "rbind"
        prop = (fields["propagation"],) if "propagation" in fields else ()
        source = posixpath.normpath(posixpath.join(cwd, source))
        return MountSpec("bind", target, source, (first, *flags, *prop))
    if kind == "volume":
        if source is not None:
            _check_name(source, what)
        return MountSpec(
            "volume", target, source, tuple(flags), fields.get("volume-nocopy") != "true"
        )
    if source is not None:
        raise ConfigError(f"invalid {what}: a tmpfs mount takes no source")
    extra = []
    if "tmpfs-size" in fields:
        from rootless._units import parse_size

        extra.append(f"size={parse_size(fields['tmpfs-size'], what='tmpfs-size')}")
    if "tmpfs-mode" in fields:
        mode = fields["tmpfs-mode"]
        if not re.fullmatch(r"0?[0-7]{1,4}", mode):
            raise ConfigError(f'invalid {what}: tmpfs-mode "{mode}" is not an octal permission')
        extra.append(f"mode={mode}")
    return MountSpec("tmpfs", target, None, ("rw", "nosuid", "nodev", *flags, *extra))


def _bool(value: str, what: str, key: str) -> bool:
    v = value.lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f'invalid {what}: {key}="{value}" is not true or false')


_ONLY = {
    "bind": ("propagation", "bind-nonrecursive"),
    "volume": ("volume-nocopy",),
    "tmpfs": ("tmpfs-size", "tmpfs-mode"),
}


def _only_for(what: str, kind: str, fields: dict[str, str]) -> None:
    for owner, keys in _ONLY.items():
        for key in keys:
            if key in fields and owner != kind:
                name = "bind-propagation" if key == "propagation" else key
                raise ConfigError(f"invalid {what}: {name} is only for type={owner}")


def plan_mounts(
    volumes: Sequence[str] = (),
    mounts: Sequence[str] = (),
    tmpfs: Sequence[str] = (),
    *,
    image_volumes: Sequence[str] = (),
    cwd: str = "/",
) -> tuple[MountSpec, ...]:
    """All of a container's mounts: the flags, then anonymous volumes for the image's
    VOLUME paths no flag covers. Two mounts on one path are refused (as Docker)."""
    specs = [
        *(parse_volume_flag(v, cwd=cwd) for v in volumes),
        *(parse_mount_flag(m, cwd=cwd) for m in mounts),
        *(parse_tmpfs_flag(t) for t in tmpfs),
    ]
    seen: set[str] = set()
    for s in specs:
        if s.target in seen:
            raise ConfigError(
                f"duplicate mount destination {s.target}",
                hint="mount only one volume, bind or tmpfs on each container path",
            )
        seen.add(s.target)
    for path in image_volumes:
        target = _target(path, f'image VOLUME "{path}"')
        if target not in seen:
            seen.add(target)
            specs.append(MountSpec("volume", target, None, ()))
    # Parents before children, so /data/logs lands on the mount at /data, not under it.
    return tuple(sorted(specs, key=lambda s: s.target.count("/")))


def to_runtime_mount(spec: MountSpec, source: str | None = None) -> Mount:
    """The OCI mount for ``spec``; ``source`` is the host directory of a volume."""
    if spec.kind == "tmpfs":
        return Mount(spec.target, "tmpfs", "tmpfs", spec.options)
    if spec.kind == "volume":
        assert source is not None
        return Mount(spec.target, "bind", source, ("rbind", *VOLUME_DEFAULTS, *spec.options))
    assert spec.source is not None
    opts = spec.options
    if not any(o in ("bind", "rbind") for o in opts):
        opts = ("rbind", *opts)
    return Mount(spec.target, "bind", spec.source, opts)
