"""Plain progress lines (stdout not a terminal) and the quiet display."""

from __future__ import annotations

import io

from rootless.cli._progress import PlainProgress, RichProgress, make_progress
from rootless.registry import Phase, ProgressEvent

LAYER = "sha256:" + "ab" * 32
CONFIG = "sha256:" + "cd" * 32
MANIFEST = "sha256:" + "ef" * 32


def _events() -> list[ProgressEvent]:
    return [
        ProgressEvent("manifest", MANIFEST, Phase.DONE, 500, 500),
        ProgressEvent("config", CONFIG, Phase.START, 0, 900),
        ProgressEvent("layer", LAYER, Phase.START, 0, 4096),
        ProgressEvent("layer", LAYER, Phase.ADVANCE, 1024, 4096),
        ProgressEvent("layer", LAYER, Phase.RETRY, 1024, 4096),
        ProgressEvent("config", CONFIG, Phase.DONE, 900, 900),
        ProgressEvent("layer", LAYER, Phase.START, 0, 4096),
        ProgressEvent("layer", LAYER, Phase.ADVANCE, 4096, 4096),
        ProgressEvent("layer", LAYER, Phase.DONE, 4096, 4096),
        ProgressEvent("layer", "sha256:" + "11" * 32, Phase.EXISTS, 10, 10),
        ProgressEvent("layer", "sha256:" + "22" * 32, Phase.MOUNTED, 10, 10),
    ]


def test_plain_lines_once_per_finished_blob() -> None:
    out = io.StringIO()
    with make_progress(out) as progress:
        assert isinstance(progress, PlainProgress)
        for event in _events():
            progress(event)
    assert out.getvalue().splitlines() == [
        f"Copying manifest {MANIFEST} done",
        f"Copying blob {LAYER} retrying after 1024 of 4096 bytes",
        f"Copying config {CONFIG} done",
        f"Copying blob {LAYER} done",
        f"Copying blob sha256:{'11' * 32} skipped: already exists",
        f"Copying blob sha256:{'22' * 32} skipped: mounted from another repository",
    ]


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with make_progress(out, quiet=True) as progress:
        for event in _events():
            progress(event)
    assert out.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_bars() -> None:
    assert isinstance(make_progress(_Terminal()), RichProgress)
