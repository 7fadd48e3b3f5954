"""Secrets: values stored for the user, mounted read-only into containers.

A secret is two files under ``$XDG_DATA_HOME/rootless/secrets/`` (directory 0700):
``ID.json`` (name, ID, creation time) and ``ID.data`` (0600, the value). A container
gets a copy of the value in ``$XDG_RUNTIME_DIR/rootless/secrets/CID/`` that is bound
read-only at ``/run/secrets/NAME``: a mount, so never part of the writable layer, and
only names and IDs ever reach records, logs and ``inspect``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from rootless._atomic import atomic_write, flock
from rootless._paths import StoragePaths
from rootless._record import Record
from rootless.errors import ConfigError, RootlessError
from rootless.runtime.spec import Mount

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
MAX_SIZE = 512 * 1024  # Podman's limit for a secret's value


class SecretNotFound(RootlessError):
    exit_code = 1


class Secret(Record):
    id: str
    name: str
    created_at: str  # RFC 3339, UTC
    labels: tuple[tuple[str, str], ...] = ()  # e.g. the compose project that made it

    def to_json(self) -> dict[str, object]:
        """What ``secret inspect`` shows: never the value."""
        return {
            "ID": self.id,
            "CreatedAt": self.created_at,
            "Spec": {"Name": self.name, "Driver": {"Name": "file"}, "Labels": dict(self.labels)},
        }


class SecretRequest(Record):
    """One ``--secret NAME[,target=PATH,mode=0444,uid=0,gid=0]``."""

    name: str
    target: str
    mode: int = 0o444  # Podman's default
    uid: int = 0
    gid: int = 0


def parse_secret_flag(text: str) -> SecretRequest:
    """Parse ``--secret``; a relative ``target`` is under ``/run/secrets``."""
    name, *pairs = text.split(",")
    if not name or "=" in name:
        raise ConfigError(
            f'invalid --secret "{text}"', hint="use --secret NAME[,target=PATH,mode=0400]"
        )
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in ("target", "mode", "uid", "gid", "type") or key in fields:
            raise ConfigError(
                f'invalid --secret "{text}": unknown or repeated option "{pair}"',
                hint="options are target=PATH, mode=OCTAL, uid=N, gid=N, type=mount",
            )
        fields[key] = value
    if fields.get("type", "mount") != "mount":
        raise ConfigError(f'invalid --secret "{text}": only type=mount is supported')
    target = fields.get("target") or name
    if not target.startswith("/"):
        target = f"/run/secrets/{target}"
    try:
        mode = int(fields.get("mode", "0444"), 8)
        uid, gid = int(fields.get("uid", "0")), int(fields.get("gid", "0"))
    except ValueError:
        raise ConfigError(
            f'invalid --secret "{text}": mode is octal, uid and gid are numbers'
        ) from None
    if not 0 <= mode <= 0o777:
        raise ConfigError(f'invalid --secret "{text}": mode {mode:o} is not a file mode')
    if (uid, gid) != (0, 0):
        # The copy is owned by the user (container root); other owners would need a
        # chown inside the user namespace for each start.
        raise ConfigError(
            f'cannot use --secret "{text}": uid and gid other than 0 are not supported',
            hint="leave uid and gid out and use mode=0444 so every user can read it",
        )
    return SecretRequest(name, os.path.normpath(target), mode, uid, gid)


class SecretStore:
    """The user's secrets; every change holds the directory's lock."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _ensure(self) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def _locked(self) -> AbstractContextManager[None]:
        self._ensure()
        return flock(self.root / ".lock")

    def list(self) -> list[Secret]:
        if not self.root.is_dir():
            return []
        out = []
        for meta in sorted(self.root.glob("*.json")):
            d = json.loads(meta.read_text())
            labels = tuple(sorted(d.get("Labels", {}).items()))
            out.append(Secret(d["ID"], d["Name"], d["CreatedAt"], labels))
        return sorted(out, key=lambda s: s.created_at)

    def find(self, ref: str) -> Secret:
        """By name, full ID or unique ID prefix."""
        secrets = self.list()
        for s in secrets:
            if ref in (s.name, s.id):
                return s
        matches = [s for s in secrets if ref and s.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        raise SecretNotFound(
            f"no such secret {ref!r}",
            hint="list secrets with: rootless secret ls" if not matches else "give more of the ID",
        )

    def create(
        self,
        name: str,
        data: bytes,
        *,
        replace: bool = False,
        labels: Mapping[str, str] | None = None,
    ) -> Secret:
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f'invalid secret name "{name}"',
                hint="use letters, digits and _.- (not first), at most 253 characters",
            )
        if not data:
            raise ConfigError(f"cannot create secret {name}: the value is empty")
        if len(data) > MAX_SIZE:
            raise ConfigError(f"cannot create secret {name}: the value is over 512 KiB")
        with self._locked():
            old = next((s for s in self.list() if s.name == name), None)
            if old is not None and not replace:
                raise ConfigError(
                    f"cannot create secret {name}: a secret of that name exists",
                    hint=f"remove it first: rootless secret rm {name}",
                )
            secret = Secret(
                os.urandom(12).hex(),
                name,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                tuple(sorted((labels or {}).items())),
            )
            atomic_write(self.root / f"{secret.id}.data", data, mode=0o600)
            meta = {
                "ID": secret.id,
                "Name": name,
                "CreatedAt": secret.created_at,
                "Labels": dict(secret.labels),
            }
            atomic_write(self.root / f"{secret.id}.json", json.dumps(meta).encode(), mode=0o600)
            if old is not None:
                self._unlink(old)
        return secret

    def value(self, secret: Secret) -> bytes:
        return (self.root / f"{secret.id}.data").read_bytes()

    def remove(self, ref: str) -> Secret:
        with self._locked():
            secret = self.find(ref)
            self._unlink(secret)
        return secret

    def _unlink(self, secret: Secret) -> None:
        # The metadata first: a crash in between leaves an unnamed value, never a name
        # without one.
        (self.root / f"{secret.id}.json").unlink(missing_ok=True)
        (self.root / f"{secret.id}.data").unlink(missing_ok=True)


def secret_store(paths: StoragePaths) -> SecretStore:
    return SecretStore(paths.data / "secrets")


def container_secret_dir(paths: StoragePaths, cid: str) -> Path:
    return paths.runtime / "secrets" / cid


def secret_mounts(flags: Sequence[str], *, cid: str, paths: StoragePaths) -> tuple[Mount, ...]:
    """Copy each requested secret into the container's runtime directory; the mounts."""
    requests = [parse_secret_flag(f) for f in flags]
    if not requests:
        return ()
    targets = [r.target for r in requests]
    if len(set(targets)) != len(targets):
        raise ConfigError("two --secret flags have the same target")
    store = secret_store(paths)
    found = [(r, store.find(r.name)) for r in requests]
    cdir = container_secret_dir(paths, cid)
    cdir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cdir.mkdir(mode=0o700, exist_ok=True)
    mounts = []
    for i, (req, secret) in enumerate(found):
        copy = cdir / f"{i}-{secret.id}"
        atomic_write(copy, store.value(secret), mode=0o600)
        os.chmod(copy, req.mode)
        mounts.append(
            Mount(req.target, "bind", str(copy), ("bind", "ro", "nosuid", "nodev", "noexec"))
        )
    return tuple(mounts)


def remove_container_secrets(paths: StoragePaths, cid: str) -> None:
    shutil.rmtree(container_secret_dir(paths, cid), ignore_errors=True)
