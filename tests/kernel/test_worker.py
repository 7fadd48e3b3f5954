from __future__ import annotations

import os

import pytest

from rootless.runtime.worker import UsernsWorker, WorkerError


def test_worker_runs_jobs_as_root_of_the_mapped_namespace():
    with UsernsWorker() as w:
        got = w.call("ping", extra=1)
        assert got["uid"] == 0 and got["extra"] == 1
        first = got["uid_map"].split("\n")[0].split()
        assert first == ["0", str(os.getuid()), "1"]
        # A second call reuses the same process.
        assert w.call("ping")["uid"] == 0


def test_worker_reports_unknown_jobs_and_keeps_serving():
    with UsernsWorker() as w:
        with pytest.raises(WorkerError, match="unknown worker job 'nope'"):
            w.call("nope")
        assert w.call("ping")["uid"] == 0
