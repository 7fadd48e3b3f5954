"""Where the engine finds its C helpers (rootless/runtime/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootless.runtime.helpers import HELPER_DIR_ENV, helper_path


def test_the_named_directory_is_the_only_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    tool = tmp_path / "rootless-wait"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv(HELPER_DIR_ENV, str(tmp_path))
    assert helper_path("rootless-wait") == str(tool)
    assert helper_path("rootless-logpump") is None


def test_a_file_that_cannot_run_is_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "rootless-wait").write_text("")
    monkeypatch.setenv(HELPER_DIR_ENV, str(tmp_path))
    assert helper_path("rootless-wait") is None


def test_empty_means_no_helpers(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(HELPER_DIR_ENV, "")
    assert helper_path("rootless-wait") is None
