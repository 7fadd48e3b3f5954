"""Registry credentials in the containers ``auth.json`` format (Podman's, read also from Docker's).

The file is ``{"auths": {"<registry>[/<namespace>]": {"auth": base64("user:password")}}}``.
Login writes ``$REGISTRY_AUTH_FILE`` or ``$XDG_RUNTIME_DIR/containers/auth.json``; lookups also
read ``$XDG_CONFIG_HOME/containers/auth.json`` and ``~/.docker/config.json``, first match wins.
Credential helpers (``credHelpers``, ``credsStore``) are not supported.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from rootless._atomic import atomic_write, flock
from rootless.errors import ConfigError

_DOCKER_HUB_ALIASES = frozenset({"index.docker.io", "registry-1.docker.io", "docker.io"})


@attrs.frozen
class Credentials:
    username: str
    password: str = attrs.field(repr=False)


@attrs.frozen
class AuthFiles:
    """Where credentials are written (``write_path``) and read (``read_paths``, in order)."""

    write_path: Path
    read_paths: tuple[Path, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthFiles:
        env = os.environ if environ is None else environ
        home = Path(env.get("HOME") or Path.home())
        config_home = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        docker_dir = Path(env.get("DOCKER_CONFIG") or home / ".docker")
        if env.get("REGISTRY_AUTH_FILE"):
            write = Path(env["REGISTRY_AUTH_FILE"])
        else:
            runtime = Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
            write = runtime / "containers" / "auth.json"
        reads = (write, config_home / "containers" / "auth.json", docker_dir / "config.json")
        return cls(write, tuple(dict.fromkeys(reads)))

    @classmethod
    def only(cls, path: str | os.PathLike[str]) -> AuthFiles:
        """Just *path*, read and written (the CLI's ``--authfile``)."""
        return cls(Path(path), (Path(path),))


def normalize_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``http://host:5000/`` -> ``host:5000``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            for suffix in ("/v1/", "/v1", "/v2/", "/v2"):
                if key.endswith(suffix):
                    key = key[: -len(suffix)]
    key = key.rstrip("/")
    host, slash, rest = key.partition("/")
    if host in _DOCKER_HUB_ALIASES:
        host = "docker.io"
    return host + slash + rest


def _candidates(registry: str, repository: str | None) -> list[str]:
    """Keys from most to least specific: host/ns/name, host/ns, host."""
    registry = normalize_key(registry)
    keys = []
    if repository:
        parts = repository.split("/")
        keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [*keys, registry]


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read auth file {path}: {exc.strerror}") from None
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(
            f"cannot read auth file {path}: invalid JSON ({exc})", hint="fix or remove the file"
        ) from None
    if not isinstance(doc, dict):
        raise ConfigError(f"cannot read auth file {path}: not a JSON object")
    return doc


def _decode(entry: Any, key: str, path: Path) -> Credentials | None:
    if not isinstance(entry, dict) or not entry.get("auth"):
        return None
    try:
        user, sep, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, TypeError):
        sep = ""
    if not sep:
        raise ConfigError(f'cannot read auth file {path}: bad "auth" value for {key}')
    return Credentials(user, password)


def lookup(files: AuthFiles, registry: str, repository: str | None = None) -> Credentials | None:
    """The credentials for *registry* (and *repository*), or None for anonymous access."""
    wanted = _candidates(registry, repository)
    for path in files.read_paths:
        auths = _read(path).get("auths")
        if not isinstance(auths, dict):
            continue
        entries = {normalize_key(k): v for k, v in auths.items()}
        for key in wanted:
            creds = _decode(entries.get(key), key, path)
            if creds is not None:
                return creds
    return None


def _lock(path: Path) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path.with_name(f"{path.name}.lock")


def _write(path: Path, doc: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode(), mode=0o600)


def store_credentials(files: AuthFiles, registry: str, creds: Credentials) -> None:
    """Save *creds* for *registry* in ``files.write_path`` (0600, atomic, locked)."""
    path = files.write_path
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    try:
        with flock(_lock(path)):
            doc = _read(path)
            auths = doc.setdefault("auths", {})
            if not isinstance(auths, dict):
                raise ConfigError(f'cannot update auth file {path}: "auths" is not an object')
            key = normalize_key(registry)
            for other in [k for k in auths if normalize_key(k) == key]:
                del auths[other]
            auths[key] = {"auth": token}
            _write(path, doc)
    except OSError as exc:
        raise ConfigError(f"cannot write auth file {path}: {exc.strerror}") from None


def remove_credentials(files: AuthFiles, registry: str | None) -> bool:
    """Forget *registry* (None: every registry); False if nothing was stored for it."""
    path = files.write_path
    try:
        with flock(_lock(path)):
            doc = _read(path)
            auths = doc.get("auths")
            if not isinstance(auths, dict):
                return False
            key = None if registry is None else normalize_key(registry)
            gone = [k for k in auths if key is None or normalize_key(k) == key]
            for k in gone:
                del auths[k]
            if gone:
                _write(path, doc)
            return bool(gone)
    except OSError as exc:
        raise ConfigError(f"cannot write auth file {path}: {exc.strerror}") from None
