"""run_in_userns: work inside the user's namespace, and what a failure there prints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.kernel


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import os, sys
        from rootless.errors import ConfigError
        from rootless.runtime.userns import run_in_userns
        """
    ) + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )


def test_the_work_runs_as_root_of_the_mapped_namespace() -> None:
    done = _run("sys.exit(run_in_userns(lambda: 7 if os.getuid() == 0 else 1))")
    assert done.returncode == 7, done.stderr


def test_a_rootless_error_is_reported_with_its_code() -> None:
    done = _run(
        """
        def fail():
            raise ConfigError("no such thing", hint="make it")
        sys.exit(run_in_userns(fail))
        """
    )
    assert done.returncode == 125
    assert "Error: no such thing" in done.stderr


def test_a_bug_prints_its_traceback_instead_of_nothing() -> None:
    done = _run("sys.exit(run_in_userns(lambda: 1 // 0))")
    assert done.returncode == 125
    assert "ZeroDivisionError" in done.stderr and "Traceback" in done.stderr
