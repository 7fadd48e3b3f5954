"""The small C programs that stand in for Python where a process only waits.

``helpers/rootless-wait.c`` (stage 1 once PID 1 is forked) and
``helpers/rootless-logpump.c`` (a detached container's monitor once it runs) keep an
idle container's engine processes at ~1 MB instead of two interpreters.
helpers/setup-host builds them into /usr/local/libexec/rootless; without them every
process works as before, in Python, at ~10 MB more per container.
"""

from __future__ import annotations

import os

HELPER_DIRS = ("/usr/local/libexec/rootless", "/usr/libexec/rootless")
# One directory to look in instead ("" : use no helper); for tests and packagers.
HELPER_DIR_ENV = "ROOTLESS_HELPER_DIR"


def helper_path(name: str) -> str | None:
    """The path of the executable helper ``name``, or None without one."""
    configured = os.environ.get(HELPER_DIR_ENV)
    dirs = HELPER_DIRS if configured is None else (configured,) if configured else ()
    for directory in dirs:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return None
