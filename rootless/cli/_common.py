"""Small helpers shared by verb modules."""

from __future__ import annotations

import sys


def warn(message: str) -> None:
    print(f"WARN: {message}", file=sys.stderr)
