"""How a unit calls rootless: the installed entry point, or this interpreter."""

from __future__ import annotations

import shutil
import site
import sys
from pathlib import Path

from rootless.systemd.generate import Invocation


def default_invocation() -> Invocation:
    """The ``rootless`` script on PATH; otherwise ``python -m rootless`` with the absolute
    interpreter path, and ``PYTHONPATH`` when rootless is not installed in it (a checkout)."""
    script = shutil.which("rootless")
    if script is not None:
        return Invocation((str(Path(script).resolve()),))
    import rootless

    root = Path(rootless.__file__).resolve().parent.parent
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    env = () if root in installed else (("PYTHONPATH", str(root)),)
    return Invocation((sys.executable, "-m", "rootless"), env)
