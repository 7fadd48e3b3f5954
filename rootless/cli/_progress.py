"""Drawing the registry's progress events: rich bars on a terminal, plain lines otherwise.

Plain lines follow Podman's wording and appear once per blob, when it is finished,
so parallel transfers never interleave half lines::

    Copying blob sha256:5f70bf18... done
    Copying blob sha256:9ad63333... skipped: already exists
    Copying config sha256:3f57d9401... done
    Copying manifest sha256:b3c8d12... done

rich is imported only when a terminal display starts.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, TextIO

from rootless.registry import Phase, ProgressEvent

if TYPE_CHECKING:
    import rich.progress

_NOUNS = {"layer": "blob", "blob": "blob", "config": "config", "manifest": "manifest"}
_OUTCOMES = {
    Phase.DONE: "done",
    Phase.EXISTS: "skipped: already exists",
    Phase.MOUNTED: "skipped: mounted from another repository",
}


def plain_line(event: ProgressEvent) -> str | None:
    """The line for *event* in plain mode, or None if it prints nothing."""
    noun = _NOUNS.get(event.kind, event.kind)
    outcome = _OUTCOMES.get(event.phase)
    if outcome is not None:
        return f"Copying {noun} {event.digest} {outcome}"
    if event.phase is Phase.RETRY:
        return f"Copying {noun} {event.digest} retrying after {event.done} of {event.total} bytes"
    return None


class ProgressDisplay:
    """A progress callback; use it as a context manager so a terminal display is closed."""

    def __call__(self, event: ProgressEvent) -> None:
        """Show *event*."""

    def close(self) -> None:
        """Finish the display."""

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class PlainProgress(ProgressDisplay):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, event: ProgressEvent) -> None:
        line = plain_line(event)
        if line is not None:
            print(line, file=self._stream, flush=True)


class RichProgress(ProgressDisplay):
    """One bar per blob; finished manifests are printed as lines above the bars."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._progress: rich.progress.Progress | None = None
        self._tasks: dict[str, rich.progress.TaskID] = {}

    def _start(self) -> rich.progress.Progress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(file=self._stream),
        )
        progress.start()
        # A caller that never closes the display must not leave the cursor hidden.
        atexit.register(self.close)
        self._progress = progress
        return progress

    def __call__(self, event: ProgressEvent) -> None:
        progress = self._progress or self._start()
        noun = _NOUNS.get(event.kind, event.kind)
        short = event.digest.partition(":")[2][:12]
        if event.kind == "manifest":
            if event.phase in _OUTCOMES:
                progress.console.print(f"Copying {noun} {short} {_OUTCOMES[event.phase]}")
            return
        task = self._tasks.get(event.digest)
        if task is None:
            task = progress.add_task(f"Copying {noun} {short}", total=event.total or None)
            self._tasks[event.digest] = task
        outcome = _OUTCOMES.get(event.phase)
        if outcome is not None:
            description = f"Copying {noun} {short} {outcome}"
            progress.update(task, description=description, completed=event.total)
        elif event.phase is Phase.RETRY:
            progress.update(task, description=f"Copying {noun} {short} retrying", completed=0)
        else:
            progress.update(task, completed=event.done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            atexit.unregister(self.close)


def make_progress(stream: TextIO, *, quiet: bool = False) -> ProgressDisplay:
    """Bars when *stream* is a terminal, plain lines when it is not, nothing when quiet."""
    if quiet:
        return ProgressDisplay()
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)
