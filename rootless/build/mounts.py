"""``RUN --mount``: bind, cache, tmpfs and secret mounts for one RUN, as BuildKit defines them.

- ``type=bind``: ``source`` (default the root) of the context, or of the stage or
  image ``from`` names, read-only unless ``rw``; writes to a ``rw`` bind go to a
  copy and are dropped after the step.
- ``type=cache``: a directory kept between builds under the store, by ``id``
  (default: the target), chosen and locked by :mod:`rootless.build.cachemounts`
  (``sharing``, ``from``) before the mounts are made.
- ``type=tmpfs``: an empty tmpfs (``size`` in bytes, optional).
- ``type=secret``: the file given with ``build --secret id=ID,src=FILE`` (or
  ``env=VAR``), read-only at ``target`` (default ``/run/secrets/ID``) with
  ``mode`` 0400 and ``uid``/``gid`` 0. A secret not given is skipped unless
  ``required=true``. Its content is not in the cache key and never in a layer.
- ``type=ssh``: planned and served by :mod:`rootless.build.sshagent`, whose sockets
  come here as ``extra`` mounts.

Mount points the rootfs lacks are made before the RUN and removed after it, so the
layer holds none of them.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import attrs

from rootless.build.cachemounts import View, cache_key, number_option, octal_option
from rootless.build.dockerfile import Mount as MountSpec
from rootless.errors import BuildError
from rootless.runtime.securejoin import resolve_in_root
from rootless.runtime.spec import Mount

SECRETS_DIR = "/run/secrets"


@attrs.frozen
class BuildSecret:
    """``build --secret``: the id, and a file or an environment variable to read it from."""

    id: str
    file: str | None = None
    env: str | None = None


def parse_secret(text: str) -> BuildSecret:
    """Parse ``id=ID,src=FILE``, ``id=ID,env=VAR`` (``type=file|env`` accepted). Pure."""
    fields: dict[str, str] = {}
    for field in text.split(","):
        key, sep, value = field.partition("=")
        if not sep or not value:
            raise BuildError(
                f"invalid --secret {text!r}: {field!r} is not KEY=VALUE",
                hint="use --secret id=NAME,src=FILE",
            )
        key = key.strip().lower()
        key = "src" if key == "source" else key
        fields[key] = value
    unknown = sorted(set(fields) - {"id", "src", "env", "type"})
    if unknown:
        raise BuildError(
            f"invalid --secret {text!r}: unknown field {unknown[0]!r}",
            hint="use id=, src= or env=, and type=file|env",
        )
    kind = fields.get("type")
    if kind not in (None, "file", "env"):
        raise BuildError(f"invalid --secret {text!r}: type must be file or env")
    secret_id = fields.get("id") or ""
    if not secret_id or "/" in secret_id:
        raise BuildError(f"invalid --secret {text!r}: it needs an id without /", hint="add id=NAME")
    src, env = fields.get("src"), fields.get("env")
    if kind == "env" and env is None:
        src, env = None, src or secret_id
    if (src is None) == (env is None):
        raise BuildError(
            f"invalid --secret {text!r}: give one of src=FILE and env=VAR",
            hint=f"use --secret id={secret_id},src=FILE",
        )
    return BuildSecret(secret_id, src, env)


def target_of(m: MountSpec, workdir: str) -> str:
    """The absolute mount point: relative targets are below the working directory. Pure."""
    if m.type == "secret" and not m.target:
        return posixpath.join(SECRETS_DIR, secret_id(m))
    target = m.target or ""
    return posixpath.normpath(posixpath.join(workdir or "/", target))


def secret_id(m: MountSpec) -> str:
    return m.option("id") or posixpath.basename((m.target or "").rstrip("/"))


@attrs.frozen
class MountSources:
    """What mounts are made from: the context, a view of a stage or image by name,
    the cache root, the secrets given, and a scratch directory."""

    context: Path
    view: View
    cache_root: Path
    secrets: Mapping[str, BuildSecret]
    scratch: Path


@contextlib.contextmanager
def run_mounts(
    mounts: Sequence[MountSpec],
    rootfs: str,
    workdir: str,
    src: MountSources,
    caches: Mapping[str, Path],
    extra: Sequence[Mount] = (),
) -> Iterator[tuple[Mount, ...]]:
    """The runtime mounts of one RUN, valid while the context lasts; mount points made
    in ``rootfs`` are removed at the end. ``caches``: the directories
    :func:`~rootless.build.cachemounts.lease_caches` chose, by cache key; ``extra``:
    mounts the builder adds (``--add-host``'s /etc/hosts, ssh agents), first."""
    made: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            out: list[Mount] = []
            wanted: list[Mount | MountSpec] = [*extra, *mounts]
            for m in wanted:
                mount = m if isinstance(m, Mount) else _one(m, workdir, src, caches, stack)
                if mount is None:
                    continue
                is_dir = mount.type != "bind" or os.path.isdir(mount.source)
                made += _scaffold(rootfs, mount.destination, is_dir)
                out.append(mount)
            yield tuple(out)
    finally:
        _prune(made)


def _one(
    m: MountSpec,
    workdir: str,
    src: MountSources,
    caches: Mapping[str, Path],
    stack: contextlib.ExitStack,
) -> Mount | None:
    target = target_of(m, workdir)
    if m.type == "bind":
        return _bind(m, target, src, stack)
    if m.type == "cache":
        path = caches[cache_key(m, target)]
        return Mount(target, "bind", str(path), ("rbind", "ro" if m.readonly else "rw"))
    if m.type == "tmpfs":
        size = m.option("size")
        return Mount(
            target, "tmpfs", "tmpfs", ("nosuid", "nodev", *([f"size={size}"] if size else []))
        )
    if m.type == "secret":
        return _secret(m, target, src)
    if m.type == "ssh":
        return None  # an extra mount (rootless.build.sshagent)
    raise BuildError(
        f"--mount type={m.type} is not supported", hint="use bind, cache, tmpfs, secret or ssh"
    )


def _bind(m: MountSpec, target: str, src: MountSources, stack: contextlib.ExitStack) -> Mount:
    root = src.context if m.from_ is None else stack.enter_context(src.view(m.from_))
    where = "the context" if m.from_ is None else m.from_
    host = resolve_in_root(str(root), m.source or "/")
    if not os.path.lexists(host):
        raise BuildError(f"cannot mount {m.source} from {where}: no such file or directory")
    if not m.readonly:  # writes go to a copy, dropped with the step
        copy = Path(src.scratch) / f"bind-{os.urandom(6).hex()}"
        if os.path.isdir(host):
            shutil.copytree(host, copy, symlinks=True)
        else:
            shutil.copy2(host, copy)
        stack.callback(_remove, copy)
        host = str(copy)
    return Mount(target, "bind", host, ("rbind", "ro" if m.readonly else "rw"))


def _secret(m: MountSpec, target: str, src: MountSources) -> Mount | None:
    name = secret_id(m)
    secret = src.secrets.get(name)
    if secret is None:
        if m.option("required") in ("true", "1", "True"):
            raise BuildError(
                f"the secret {name!r} is required but not given",
                hint=f"add --secret id={name},src=FILE",
            )
        return None
    copy = src.scratch / f"secret-{os.urandom(6).hex()}"
    if secret.env is not None:
        value = os.environ.get(secret.env)
        if value is None:
            raise BuildError(f"cannot read the secret {name!r}: ${secret.env} is not set")
        data = value.encode()
    else:
        try:
            data = Path(secret.file or "").read_bytes()
        except OSError as e:
            raise BuildError(
                f"cannot read the secret {name!r} from {secret.file}: {e.strerror}"
            ) from None
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fchown(fd, number_option(m, "uid"), number_option(m, "gid"))
        os.fchmod(fd, octal_option(m, "mode", 0o400))
    finally:
        os.close(fd)
    return Mount(target, "bind", str(copy), ("bind", "ro", "nosuid", "nodev", "noexec"))


def _remove(path: Path) -> None:
    from rootless.image._fsops import remove_tree

    if path.is_dir() and not path.is_symlink():
        remove_tree(path)
    else:
        path.unlink(missing_ok=True)


def _scaffold(rootfs: str, target: str, is_dir: bool) -> list[str]:
    """Make the missing mount point ``target`` (and missing parents) in ``rootfs``;
    what was made, outermost first."""
    host = resolve_in_root(rootfs, target)
    if os.path.lexists(host):
        return []
    missing = [host]
    parent = os.path.dirname(host)
    while len(parent) > len(rootfs) and not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    missing.reverse()
    for path in missing[:-1]:
        os.mkdir(path, 0o755)
    if is_dir:
        os.mkdir(host, 0o755)
    else:
        os.close(os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    return missing


def _prune(made: list[str]) -> None:
    """Remove the mount points ``_scaffold`` made, innermost first, while still empty."""
    for path in reversed(made):
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.getsize(path) == 0:
                os.unlink(path)
        except OSError:
            continue
