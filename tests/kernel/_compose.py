"""What the compose kernel tests share: a project file and the compose command on it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def project(tmp_path: Path, text: str) -> Path:
    """``text`` as ``proj/compose.yaml`` under ``tmp_path``; its path."""
    d = tmp_path / "proj"
    d.mkdir(exist_ok=True)
    (d / "compose.yaml").write_text(text)
    return d / "compose.yaml"


def compose(rootless: Any, file: Path, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``rootless compose -f FILE -p demo ARGS``."""
    return rootless("compose", "-f", str(file), "-p", "demo", *args, **kw)  # type: ignore[no-any-return]
