"""The build cache: which stored layer and config a step made last time.

A step's key chains its parent's key (the base image ID, or the previous step's
key) with what the step does: the instruction as substituted, the ARG values a
RUN sees, the network it runs with, and for COPY/ADD the hash of the source
files (see :func:`rootless.build.context.digest_items`). So a changed file
changes its COPY's key and every key after it, and nothing before it.

The index is a directory of small JSON files under the image store,
``build-cache/<key>.json``: the image config and the layer list the step left.
An entry whose blobs or layers the store no longer has (gc removed them) is a miss.

``build-cache/sums.json`` keeps the content hash of each context file hashed
before, by its device, inode, size, mtime and ctime, so an unchanged file is not
read again (any write changes its ctime).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from rootless._atomic import atomic_write
from rootless.build.dockerfile import Instruction

# (media type, blob digest, size, diff ID), base first
Layer = tuple[str, str, int, str]


@attrs.frozen
class StepResult:
    """An image in the making: its config document and layers."""

    config: dict[str, Any]
    layers: tuple[Layer, ...]


def _fields(ins: Instruction) -> Any:
    def keep(attribute: attrs.Attribute[Any], value: Any) -> bool:
        return attribute.name not in ("line", "end_line")

    return attrs.asdict(ins, filter=keep, recurse=True)


def step_key(parent: str, ins: Instruction, *, extra: Sequence[str] = ()) -> str:
    """The cache key of ``ins`` (already substituted) on top of ``parent``. Pure."""
    doc = {
        "parent": parent,
        "keyword": ins.keyword,
        "text": ins.text,
        "fields": _fields(ins),
        "extra": list(extra),
    }
    data = json.dumps(doc, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def base_key(image_id: str | None) -> str:
    """The key a stage starts from: its base image's ID, or scratch."""
    return "sha256:" + hashlib.sha256(f"base {image_id or 'scratch'}".encode()).hexdigest()


class BuildCache:
    """Key -> :class:`StepResult`, as JSON files in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / f"{key.partition(':')[2]}.json"

    def get(self, key: str) -> StepResult | None:
        try:
            doc = json.loads(self._path(key).read_bytes())
            layers = tuple((str(m), str(d), int(s), str(i)) for m, d, s, i in doc["layers"])
            return StepResult(dict(doc["config"]), layers)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: StepResult) -> None:
        doc = {"config": result.config, "layers": [list(layer) for layer in result.layers]}
        atomic_write(self._path(key), json.dumps(doc, separators=(",", ":")).encode())


_SUMS_KEPT = 100_000  # above this, a save keeps only what the last build used


class FileSums:
    """Content hashes of files by their stat identity, loaded from and saved to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.used: dict[str, str] = {}
        try:
            known = json.loads(path.read_bytes())
            self.known: dict[str, str] = known if isinstance(known, dict) else {}
        except (OSError, ValueError):
            self.known = {}

    @staticmethod
    def _key(st: os.stat_result) -> str:
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def get(self, st: os.stat_result) -> str | None:
        key = self._key(st)
        found = self.used.get(key) or self.known.get(key)
        if found is not None:
            self.used[key] = found
        return found

    def put(self, st: os.stat_result, digest: str) -> None:
        self.used[self._key(st)] = digest

    def save(self) -> None:
        """Write what this build used, with what was known (unless there is too much)."""
        if all(self.known.get(k) == v for k, v in self.used.items()):
            return
        doc = self.used if len(self.known) > _SUMS_KEPT else {**self.known, **self.used}
        atomic_write(self.path, json.dumps(doc, separators=(",", ":")).encode())
