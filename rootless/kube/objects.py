"""ConfigMaps and Secrets: their data, and what pods take from them (pure).

A pod refers to them by name, in ``env[].valueFrom``, ``envFrom`` and
``configMap``/``secret`` volumes. They come from the played file itself or from
``--configmap`` files. A reference to a map or key that does not exist is an
error at its line unless it says ``optional: true``; ``kube down`` reads
leniently (it only needs the pods' names).
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from rootless._record import Record
from rootless.compose.source import KeyPath
from rootless.kube.reader import DNS_SUBDOMAIN, Doc

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
CONFIG_MAP, SECRET = "ConfigMap", "Secret"
DEFAULT_MODE = 0o644  # Kubernetes' defaultMode for configMap and secret volumes


class ConfigObjects(Record):
    """The ConfigMaps and Secrets known to a play: kind -> name -> key -> value."""

    data: Mapping[str, Mapping[str, Mapping[str, bytes]]]
    lenient: bool = False  # missing maps and keys read as optional (kube down)


class ConfigFile(Record):
    """One file of a configMap or secret volume."""

    path: str  # relative to the volume's directory
    data: bytes
    mode: int


def read_object(doc: Doc, kind: str) -> tuple[str, dict[str, bytes]]:
    """The name and data of a ConfigMap (``data`` as text, ``binaryData`` base64) or a
    Secret (``data`` base64, ``stringData`` as text, winning over ``data``)."""
    text_key, b64_key = ("data", "binaryData") if kind == CONFIG_MAP else ("stringData", "data")
    data = doc.mapping(
        doc.src.data, (), ("apiVersion", "kind", "metadata", text_key, b64_key, "type", "immutable")
    )
    version = doc.string(data.get("apiVersion"), ("apiVersion",), required=True)
    if version != "v1":
        doc.warn(("apiVersion",), 'expected "v1", read as that')
    meta = doc.mapping(data.get("metadata"), ("metadata",), ("name", "labels", "annotations"))
    name = doc.name(meta.get("name"), ("metadata", "name"), DNS_SUBDOMAIN, f"{kind} name")
    out: dict[str, bytes] = {}
    for key, value in _entries(doc, data.get(b64_key), (b64_key,)).items():
        path = (b64_key, key)
        text = doc.string(value, path)
        try:
            out[_key(doc, key, path)] = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise doc.error(path, "is not valid base64") from None
    for key, value in _entries(doc, data.get(text_key), (text_key,)).items():
        path = (text_key, key)
        out[_key(doc, key, path)] = doc.string(value, path).encode()
    return name, out


def _entries(doc: Doc, value: Any, path: KeyPath) -> dict[Any, Any]:
    """A mapping whose keys are the user's (nothing to warn about)."""
    return doc.mapping(value, path, tuple(value) if isinstance(value, dict) else ())


def _key(doc: Doc, key: Any, path: KeyPath) -> str:
    if not isinstance(key, str) or len(key) > 253 or not _KEY.fullmatch(key):
        raise doc.error(path, "a key must be letters, digits, '-', '_' or '.'")
    return key


def lookup(
    doc: Doc, objects: ConfigObjects, kind: str, name: str, optional: bool, path: KeyPath
) -> Mapping[str, bytes] | None:
    """The data of ConfigMap or Secret ``name``; None when it is missing and optional."""
    found = objects.data.get(kind, {}).get(name)
    if found is None and not (optional or objects.lenient):
        raise doc.error(
            path,
            f'no {kind} "{name}" in the file or the --configmap files',
            hint=f"add a {kind} document, or say optional: true",
        )
    return found


def key_value(
    doc: Doc, objects: ConfigObjects, kind: str, ref: Mapping[str, Any], path: KeyPath
) -> str | None:
    """``configMapKeyRef``/``secretKeyRef``: the value, or None when it is optional and
    missing (then the variable is not set, as Kubernetes does)."""
    name = doc.string(ref.get("name"), (*path, "name"), required=True)
    key = doc.string(ref.get("key"), (*path, "key"), required=True)
    optional = doc.boolean(ref.get("optional"), (*path, "optional"))
    data = lookup(doc, objects, kind, name, optional, path)
    if data is None:
        return None
    if key not in data:
        if optional or objects.lenient:
            return None
        raise doc.error(
            (*path, "key"),
            f'{kind} "{name}" has no key "{key}"',
            hint=f"its keys: {', '.join(sorted(data)) or 'none'}; or say optional: true",
        )
    return _text(doc, data[key], path)


def all_values(
    doc: Doc, objects: ConfigObjects, kind: str, ref: Mapping[str, Any], path: KeyPath
) -> dict[str, str]:
    """``envFrom``'s ``configMapRef``/``secretRef``: every key and value."""
    name = doc.string(ref.get("name"), (*path, "name"), required=True)
    optional = doc.boolean(ref.get("optional"), (*path, "optional"))
    data = lookup(doc, objects, kind, name, optional, path) or {}
    return {key: _text(doc, value, path) for key, value in data.items()}


def _text(doc: Doc, value: bytes, path: KeyPath) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise doc.error(path, "an environment variable cannot take a binary value") from None


def volume_files(
    doc: Doc, objects: ConfigObjects, kind: str, spec: Mapping[str, Any], path: KeyPath
) -> tuple[ConfigFile, ...]:
    """The files of a ``configMap`` or ``secret`` volume: every key, or the ``items``
    asked, each with its ``mode`` or the volume's ``defaultMode``."""
    name_key = "name" if kind == CONFIG_MAP else "secretName"
    name = doc.string(spec.get(name_key), (*path, name_key), required=True)
    optional = doc.boolean(spec.get("optional"), (*path, "optional"))
    default = _mode(doc, spec.get("defaultMode"), (*path, "defaultMode"))
    data = lookup(doc, objects, kind, name, optional, path)
    if data is None:
        return ()
    ipath = (*path, "items")
    if spec.get("items") is None:
        return tuple(ConfigFile(key, value, default) for key, value in sorted(data.items()))
    files = []
    for i, item in enumerate(doc.items(spec["items"], ipath)):
        entry = doc.mapping(item, (*ipath, i), ("key", "path", "mode"))
        key = doc.string(entry.get("key"), (*ipath, i, "key"), required=True)
        rel = doc.string(entry.get("path"), (*ipath, i, "path"), required=True)
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or "" in parts:
            raise doc.error((*ipath, i, "path"), f'"{rel}" must be a relative path without ".."')
        if key not in data:
            if optional or objects.lenient:
                continue
            raise doc.error((*ipath, i, "key"), f'{kind} "{name}" has no key "{key}"')
        mode = default
        if entry.get("mode") is not None:
            mode = _mode(doc, entry["mode"], (*ipath, i, "mode"))
        files.append(ConfigFile(posixpath.normpath(rel), data[key], mode))
    return tuple(files)


def _mode(doc: Doc, value: Any, path: KeyPath) -> int:
    if value is None:
        return DEFAULT_MODE
    return doc.integer(value, path, high=0o777)
