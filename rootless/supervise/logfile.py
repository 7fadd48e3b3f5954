"""Container logs in Podman's k8s-file format: write with rotation, read, tail, follow.

One record per line::

    2026-12-04T15:50:38.123456789+00:00 stdout F hello
    2026-12-04T15:50:38.123456789+00:00 stderr P first 16 KiB of a long line
    2026-12-04T15:50:38.123456789+00:00 stderr F ...and its end

``F`` ends a line, ``P`` is a chunk of a line that goes on (longer than the
buffer, or not terminated yet). Times are written in UTC; readers accept any
offset, so files written by Podman's conmon read back too.

Rotation: when a record would take ``path`` past ``max_size`` bytes, ``path``
becomes ``path.1`` (``path.1`` becomes ``path.2`` ...), at most ``max_files`` old
files are kept, and writing goes on in a new ``path``. Disk use is therefore at
most ``max_size * (max_files + 1)``; memory per stream is at most one buffer.
"""

from __future__ import annotations

import collections
import datetime
import functools
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from rootless.errors import SyscallError

STREAMS = ("stdout", "stderr")
LINE_MAX = 16 * 1024  # longest line kept in memory; longer ones are written as P chunks
_JOIN_MAX = 1024 * 1024  # readers hand out a partial line rather than join more than this
_BLOCK = 256 * 1024  # read size for scanning files
_STREAM_NAMES = {b"stdout": "stdout", b"stderr": "stderr"}


def parse_log_opts(opts: Iterable[str]) -> dict[str, int]:
    """``--log-opt`` values as the container record keeps them: ``log_max_size`` (bytes)
    and ``log_max_files`` (old files kept)."""
    from rootless._units import parse_size
    from rootless.errors import ConfigError

    out: dict[str, int] = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        if key == "max-size":
            out["log_max_size"] = parse_size(value, what="log max-size")
        elif key == "max-file" and value.isdigit():
            # Docker's max-file counts the current file too; the writer counts old ones.
            out["log_max_files"] = max(int(value) - 1, 0)
        else:
            raise ConfigError(
                f'unsupported --log-opt "{opt}"', hint="use max-size=SIZE or max-file=N"
            )
    return out


class Record(NamedTuple):
    """One line of output (joined from its P chunks)."""

    time_ns: int  # when the line was completed (its F record)
    timestamp: str  # that time as written in the file
    stream: str  # "stdout" or "stderr"
    data: bytes  # ends with b"\n" when the line was complete


class _Raw(NamedTuple):
    timestamp: str
    time_ns: int
    stream: str
    partial: bool
    text: bytes


@functools.lru_cache(maxsize=256)
def _epoch(seconds_part: str, zone: str) -> int:
    return int(datetime.datetime.fromisoformat(seconds_part + zone).timestamp())


def _parse(line: bytes) -> _Raw | None:
    """A k8s-file line without its newline; None for a torn or foreign line."""
    sp1 = line.find(b" ")
    sp2 = line.find(b" ", sp1 + 1)
    if sp1 < 20 or sp2 < 0:
        return None
    tag = line[sp2 + 1 : sp2 + 2]
    if tag not in (b"F", b"P"):
        return None
    stamp = line[:sp1].decode("ascii", "replace")
    if stamp[-1] in "Zz":
        body, zone = stamp[:-1], "+00:00"
    else:
        body, zone = stamp[:-6], stamp[-6:]
    frac = body[20:29] if len(body) > 20 else ""
    try:
        ns = _epoch(body[:19], zone) * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    except ValueError:
        return None
    raw_stream = line[sp1 + 1 : sp2]
    stream = _STREAM_NAMES.get(raw_stream) or raw_stream.decode("utf-8", "replace")
    return _Raw(stamp, ns, stream, tag == b"P", line[sp2 + 3 :])


class _Stamp:
    """Formats the record time; the date part is computed once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, ns: int) -> str:
        second, frac = divmod(ns, 1_000_000_000)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._text}.{frac:09d}+00:00"


class LogWriter:
    """Appends a container's output to ``path`` as k8s-file records.

    ``write`` buffers at most ``line_max`` bytes of an unterminated line per
    stream; call ``flush`` when a stream goes quiet or ends so that a prompt
    without a newline reaches the log. Data is not fsynced per line: ``sync``
    (also done by ``close``) does that.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_size: int | None = None,
        max_files: int = 1,
        *,
        line_max: int = LINE_MAX,
    ) -> None:
        if max_files < 0 or (max_size is not None and max_size <= 0):
            raise ValueError("max_size must be > 0 and max_files >= 0")
        self.path = Path(path)
        self.max_size = max_size
        self.max_files = max_files
        self._line_max = line_max
        self._pending = {name: bytearray() for name in STREAMS}
        self._stamp = _Stamp()
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as e:
            raise SyscallError("open", e.errno or 0, path=str(self.path)) from None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, stream: str, data: bytes, now_ns: int | None = None) -> None:
        """Log ``data`` read from ``stream``; all its lines get the time ``now_ns``."""
        pending = self._pending[stream]
        head = f"{self._stamp(time.time_ns() if now_ns is None else now_ns)} {stream} ".encode()
        lines = data.split(b"\n")
        rest = lines.pop()  # after the last newline: not a line yet
        out: list[bytes] = []
        pending_before = len(pending)
        if lines:
            if pending:
                lines[0] = bytes(pending) + lines[0]
                pending.clear()
            if not self._long_line(data, pending_before):
                sep = b"\n" + head + b"F "
                out.append(head + b"F " + sep.join(lines) + b"\n")
            else:
                for line in lines:
                    out.append(self._chunks(head, line, partial=False))
        pending += rest
        if len(pending) > self._line_max:
            cut = len(pending) - len(pending) % self._line_max
            if cut == len(pending):
                cut -= self._line_max  # keep the last full buffer: a newline may end it
            out.append(self._chunks(head, bytes(pending[:cut]), partial=True))
            del pending[:cut]
        if out:
            self._append(b"".join(out))

    def _long_line(self, data: bytes, pending: int) -> bool:
        """Whether a complete line in ``data`` may pass line_max (never a false "no").

        A line longer than line_max holds an aligned window of line_max/2 bytes
        without a newline, so a few ``find`` calls replace one ``len`` per line.
        """
        first = data.find(b"\n")
        if pending + first > self._line_max:
            return True
        step = max(1, self._line_max // 2)
        last = data.rfind(b"\n")
        return any(data.find(b"\n", k, k + step) < 0 for k in range(first, last - step + 1, step))

    def _chunks(self, head: bytes, line: bytes, *, partial: bool) -> bytes:
        """``line`` as P records of at most ``line_max`` bytes, ending with F unless partial."""
        size = self._line_max
        parts = [line[i : i + size] for i in range(0, max(len(line), 1), size)]
        last = b"P " if partial else b"F "
        records = [head + b"P " + p + b"\n" for p in parts[:-1]]
        records.append(head + last + parts[-1] + b"\n")
        return b"".join(records)

    def flush(self, now_ns: int | None = None) -> None:
        """Write buffered unterminated lines as P records."""
        stamp = self._stamp(time.time_ns() if now_ns is None else now_ns)
        out = []
        for stream, pending in self._pending.items():
            if pending:
                head = f"{stamp} {stream} ".encode()
                out.append(self._chunks(head, bytes(pending), partial=True))
                pending.clear()
        if out:
            self._append(b"".join(out))

    def _append(self, blob: bytes) -> None:
        """Write whole records, rotating first when the next one would pass max_size."""
        start = 0
        while start < len(blob):
            end = len(blob)
            if self.max_size is not None and self._size + end - start > self.max_size:
                room = self.max_size - self._size
                cut = blob.rfind(b"\n", start, start + room) if room > 0 else -1
                if cut < 0:
                    if self._size > 0:
                        self._rotate()
                        continue
                    # A record larger than max_size gets a file of its own.
                    cut = blob.find(b"\n", start)
                end = cut + 1
            self._write_all(memoryview(blob)[start:end])
            start = end

    def _write_all(self, view: memoryview) -> None:
        while view:
            try:
                n = os.write(self._fd, view)
            except OSError as e:
                raise SyscallError("write", e.errno or 0, path=str(self.path)) from None
            self._size += n
            view = view[n:]

    def _rotate(self) -> None:
        path = str(self.path)
        try:
            if self.max_files == 0:
                os.unlink(path)
            else:
                for i in range(self.max_files - 1, 0, -1):
                    if os.path.exists(f"{path}.{i}"):
                        os.rename(f"{path}.{i}", f"{path}.{i + 1}")
                os.rename(path, f"{path}.1")
        except OSError as e:
            raise SyscallError("rotate", e.errno or 0, path=path) from None
        os.close(self._fd)
        self._fd = self._open()
        self._size = 0

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            self.flush()
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = -1


# Reading ---------------------------------------------------------------------


class _Source(NamedTuple):
    fd: int
    end: int  # read up to here: the size when the reader started


def _open_sources(path: Path, current: int | None = None) -> list[_Source]:
    """The log files oldest first: path.N ... path.1, then path (or the open ``current``).

    Each file is opened before reading begins, so a rotation meanwhile (which only
    renames) changes nothing; a file seen twice under two names is read once.
    """
    sources: list[_Source] = []
    seen: set[tuple[int, int]] = set()
    names = [str(path)]
    i = 1
    while os.path.exists(f"{path}.{i}"):
        names.append(f"{path}.{i}")
        i += 1
    for n, name in enumerate(names):
        if n == 0 and current is not None:
            fd = os.dup(current)
        else:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as e:
                _close(sources)
                raise SyscallError("open", e.errno or 0, path=name) from None
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) in seen:
            os.close(fd)
            continue
        seen.add((st.st_dev, st.st_ino))
        sources.append(_Source(fd, st.st_size))
    sources.reverse()
    return sources


def _close(sources: list[_Source]) -> None:
    for src in sources:
        os.close(src.fd)


def _forward_lines(src: _Source, start: int = 0) -> Iterator[bytes]:
    """Complete lines of ``src`` from ``start``; a torn last line is left out."""
    carry = b""
    pos = start
    while pos < src.end:
        block = os.pread(src.fd, min(_BLOCK, src.end - pos), pos)
        if not block:
            break
        pos += len(block)
        lines = (carry + block).split(b"\n")
        carry = lines.pop()
        yield from lines


def _backward_lines(src: _Source) -> Iterator[bytes]:
    """Complete lines of ``src``, last first, reading blocks from the end."""
    pos = src.end
    carry: bytes | None = None  # the start of a line whose beginning is not read yet
    while pos > 0:
        n = min(_BLOCK, pos)
        pos -= n
        block = os.pread(src.fd, n, pos)
        lines = (block + carry).split(b"\n") if carry is not None else block.split(b"\n")
        if carry is None:
            lines.pop()  # after the last newline: empty, or a torn record
        carry = lines[0]
        yield from reversed(lines[1:])
    if carry:
        yield carry


class _Joiner:
    """Joins P chunks with their F record, per stream."""

    def __init__(self) -> None:
        self._parts: dict[str, list[bytes]] = {}
        self._sizes: dict[str, int] = {}
        self._last: dict[str, _Raw] = {}

    def feed(self, raw: _Raw) -> Record | None:
        parts = self._parts.get(raw.stream)
        if raw.partial:
            if parts is None:
                parts = self._parts[raw.stream] = []
                self._sizes[raw.stream] = 0
            parts.append(raw.text)
            self._sizes[raw.stream] += len(raw.text)
            self._last[raw.stream] = raw
            if self._sizes[raw.stream] < _JOIN_MAX:
                return None
            return self._take(raw.stream, b"")  # bounded memory: hand out what we have
        if parts is None:
            return Record(raw.time_ns, raw.timestamp, raw.stream, raw.text + b"\n")
        parts.append(raw.text)
        self._last[raw.stream] = raw
        return self._take(raw.stream, b"\n")

    def _take(self, stream: str, end: bytes) -> Record:
        parts = self._parts.pop(stream)
        del self._sizes[stream]
        last = self._last.pop(stream)
        parts.append(end)
        return Record(last.time_ns, last.timestamp, stream, b"".join(parts))

    def finish(self) -> list[Record]:
        """Lines not terminated (yet): their chunks so far, oldest first."""
        records = [self._take(stream, b"") for stream in list(self._parts)]
        return sorted(records, key=lambda r: r.time_ns)


class _Filter:
    def __init__(
        self,
        streams: Collection[str],
        since_ns: int | None,
        until_ns: int | None,
        timestamps: bool,
    ) -> None:
        self.streams = frozenset(streams)
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.timestamps = timestamps

    def keeps(self, stream: str, time_ns: int) -> bool:
        return (
            stream in self.streams
            and (self.since_ns is None or time_ns >= self.since_ns)
            and (self.until_ns is None or time_ns <= self.until_ns)
        )

    def apply(self, records: Iterable[Record]) -> Iterator[Record]:
        for rec in records:
            if self.keeps(rec.stream, rec.time_ns):
                if self.timestamps:
                    rec = rec._replace(data=rec.timestamp.encode() + b" " + rec.data)
                yield rec


def _join(lines: Iterator[bytes], joiner: _Joiner) -> Iterator[Record]:
    for line in lines:
        raw = _parse(line)
        if raw is not None:
            rec = joiner.feed(raw)
            if rec is not None:
                yield rec


def _all_lines(sources: list[_Source]) -> Iterator[bytes]:
    for src in sources:
        yield from _forward_lines(src)


def _tail_lines(sources: list[_Source], n: int, filt: _Filter) -> list[bytes]:
    """Enough raw lines from the end to hold the last ``n`` lines that pass ``filt``.

    Reads backwards; stops once it has ``n`` lines (or reached ``since``) and the P
    chunks that begin them, so the work is bounded by what is shown, not by file size.
    """
    collected: list[bytes] = []
    count = 0
    open_streams: set[str] = set()  # streams whose earliest collected record is a P chunk
    later: set[str] = set()  # streams with a record after the current one
    extra = 0  # bytes read after ``count`` was reached, looking for line starts
    for src in reversed(sources):
        for line in _backward_lines(src):
            raw = _parse(line)
            if raw is None:
                continue
            collected.append(line)
            if raw.partial:
                open_streams.add(raw.stream)
            else:
                open_streams.discard(raw.stream)
            ends_line = not raw.partial or raw.stream not in later
            later.add(raw.stream)
            if ends_line and filt.keeps(raw.stream, raw.time_ns):
                count += 1
            done = count >= n or (filt.since_ns is not None and raw.time_ns < filt.since_ns)
            if done:
                extra += len(line)
                if not (open_streams & filt.streams) or extra > _JOIN_MAX:
                    collected.reverse()
                    return collected
    collected.reverse()
    return collected


def _history(
    sources: list[_Source], tail: int | None, filt: _Filter, joiner: _Joiner
) -> Iterator[Record]:
    if tail is None:
        yield from filt.apply(_join(_all_lines(sources), joiner))
        return
    if tail <= 0:
        return
    lines = _tail_lines(sources, tail, filt)
    last: collections.deque[Record] = collections.deque(maxlen=tail)
    last.extend(filt.apply(_join(iter(lines), joiner)))
    last.extend(filt.apply(joiner.finish()))
    yield from last


def read_log(
    path: str | os.PathLike[str],
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    streams: Collection[str] = STREAMS,
    timestamps: bool = False,
) -> Iterator[Record]:
    """The lines of a container log (rotated files first), joined and filtered.

    ``since_ns``/``until_ns`` are inclusive bounds (nanoseconds since the epoch,
    as Docker applies them); ``tail`` keeps the last N lines that pass the filters
    (``tail=0``: none); ``timestamps`` puts each line's time and a space before
    its data, as ``logs -t`` prints. A missing log reads as empty.
    """
    filt = _Filter(streams, since_ns, until_ns, timestamps)
    sources = _open_sources(Path(path))
    try:
        joiner = _Joiner()
        yield from _history(sources, tail, filt, joiner)
        if tail is None:
            yield from filt.apply(joiner.finish())
    finally:
        _close(sources)


class LogFollower:
    """Reads a log as it grows, across rotations; ``poll`` never blocks.

    Async code calls ``poll`` between sleeps; :func:`follow` wraps it for plain
    loops. Lines not yet terminated are held until their F record arrives, and
    handed out by ``finish`` when the container is done.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        streams: Collection[str] = STREAMS,
        timestamps: bool = False,
    ) -> None:
        self.path = Path(path)
        self._filter = _Filter(streams, since_ns, until_ns, timestamps)
        self._joiner = _Joiner()
        self._fd = -1
        self._ino = (0, 0)
        self._pos = 0
        self._carry = b""

    def history(self, tail: int | None = None) -> Iterator[Record]:
        """What the log holds now (the last ``tail`` lines); ``poll`` goes on from there."""
        self._try_open()
        sources = _open_sources(self.path, self._fd if self._fd >= 0 else None)
        try:
            if self._fd >= 0:
                # The current file is read up to its last newline; poll takes the rest.
                current = sources[-1]
                self._pos = _after_last_newline(current)
                sources[-1] = current._replace(end=self._pos)
            yield from _history(sources, tail, self._filter, self._joiner)
        finally:
            _close(sources)

    def _try_open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        except OSError as e:
            raise SyscallError("open", e.errno or 0, path=str(self.path)) from None
        st = os.fstat(fd)
        self._fd, self._ino, self._pos, self._carry = fd, (st.st_dev, st.st_ino), 0, b""
        return True

    def poll(self) -> Iterator[Record]:
        """Records written since the last call; handles rotation and truncation."""
        if self._fd < 0 and not self._try_open():
            return
        yield from self._drain()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:  # between the rename and the new file
            return
        if (st.st_dev, st.st_ino) != self._ino:
            yield from self._drain()  # what was written before the rename
            os.close(self._fd)
            self._fd = -1
            if self._try_open():
                yield from self._drain()
        elif st.st_size < self._pos:  # truncated in place
            self._pos, self._carry = 0, b""
            yield from self._drain()

    def _drain(self) -> Iterator[Record]:
        while True:
            block = os.pread(self._fd, _BLOCK, self._pos)
            if not block:
                return
            self._pos += len(block)
            lines = (self._carry + block).split(b"\n")
            self._carry = lines.pop()
            yield from self._filter.apply(_join(iter(lines), self._joiner))

    def finish(self) -> Iterator[Record]:
        """The unterminated lines still held; then the follower is closed."""
        yield from self._filter.apply(self._joiner.finish())
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _after_last_newline(src: _Source) -> int:
    pos = src.end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        nl = os.pread(src.fd, pos - start, start).rfind(b"\n")
        if nl >= 0:
            return start + nl + 1
        pos = start
    return 0


def follow(
    path: str | os.PathLike[str],
    *,
    wait: Callable[[], bool],
    since_ns: int | None = None,
    until_ns: int | None = None,
    tail: int | None = None,
    streams: Collection[str] = STREAMS,
    timestamps: bool = False,
) -> Iterator[Record]:
    """``logs -f``: the log so far, then new lines as they are written.

    When there is nothing new, ``wait()`` is called: it may sleep, and returns
    False once no more output can come (the container exited); the rest of the
    log is then read and the generator ends.
    """
    follower = LogFollower(
        path, since_ns=since_ns, until_ns=until_ns, streams=streams, timestamps=timestamps
    )
    try:
        yield from follower.history(tail)
        while True:
            got = False
            for rec in follower.poll():
                got = True
                yield rec
            if not got and not wait():
                yield from follower.poll()
                yield from follower.finish()
                return
    finally:
        follower.close()
