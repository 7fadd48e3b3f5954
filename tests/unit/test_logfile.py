from __future__ import annotations

import os
import re
import time

import pytest

from rootless.supervise.logfile import (
    LINE_MAX,
    LogFollower,
    LogWriter,
    follow,
    read_log,
)

T0 = 1_764_863_438 * 10**9  # 2025-12-04T15:50:38Z
RECORD = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}\+00:00 (stdout|stderr) [FP] ")


def data(path, **kw):
    return [r.data for r in read_log(path, **kw)]


def test_records_are_k8s_file_lines(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log) as w:
        w.write("stdout", b"hello\nworld\n", T0 + 123456789)
        w.write("stderr", b"oops\n", T0 + 5)
    assert log.read_bytes() == (
        b"2025-12-04T15:50:38.123456789+00:00 stdout F hello\n"
        b"2025-12-04T15:50:38.123456789+00:00 stdout F world\n"
        b"2025-12-04T15:50:38.000000005+00:00 stderr F oops\n"
    )
    recs = list(read_log(log))
    assert [(r.stream, r.data, r.time_ns) for r in recs] == [
        ("stdout", b"hello\n", T0 + 123456789),
        ("stdout", b"world\n", T0 + 123456789),
        ("stderr", b"oops\n", T0 + 5),
    ]
    assert recs[0].timestamp == "2025-12-04T15:50:38.123456789+00:00"


def test_partial_lines_are_joined_per_stream(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log) as w:
        w.write("stdout", b"abc", T0)
        w.flush(T0 + 1)  # a prompt without newline reaches the log as P
        w.write("stderr", b"err\n", T0 + 2)
        w.write("stdout", b"def\nxyz", T0 + 3)
    # close() flushed "xyz" as a P record
    tags = [line.split(b" ")[2] for line in log.read_bytes().splitlines()]
    assert tags == [b"P", b"F", b"F", b"P"]
    recs = list(read_log(log))
    assert [(r.stream, r.data) for r in recs] == [
        ("stderr", b"err\n"),
        ("stdout", b"abcdef\n"),
        ("stdout", b"xyz"),
    ]
    assert recs[1].time_ns == T0 + 3  # a joined line has the time it was completed


def test_long_line_is_written_in_chunks_and_joined(tmp_path):
    log = tmp_path / "ctr.log"
    line = bytes(range(32, 127)) * 500  # 47500 bytes
    with LogWriter(log) as w:
        w.write("stdout", line[:20000], T0)
        w.write("stdout", line[20000:] + b"\nnext\n", T0 + 1)
    raw = log.read_bytes().splitlines()
    assert all(RECORD.match(r) for r in raw)
    assert max(len(r) for r in raw) <= LINE_MAX + 64
    assert [r.split(b" ")[2] for r in raw] == [b"P", b"P", b"F", b"F"]
    assert data(log) == [line + b"\n", b"next\n"]


def test_unterminated_flood_is_not_buffered(tmp_path):
    """`yes | tr -d '\\n'`: memory stays bounded, the data reaches the file."""
    log = tmp_path / "ctr.log"
    w = LogWriter(log)
    for _ in range(64):
        w.write("stdout", b"y" * 16384, T0)
    on_disk = sum(len(r) - 44 for r in log.read_bytes().splitlines())  # minus record heads
    assert 64 * 16384 - on_disk <= LINE_MAX
    w.write("stdout", b"\n", T0)
    w.close()
    assert data(log) == [b"y" * 64 * 16384 + b"\n"]


def test_rotation_bounds_total_size(tmp_path):
    log = tmp_path / "ctr.log"
    mib = 1024 * 1024
    with LogWriter(log, max_size=mib) as w:
        for i in range(10 * 1024):  # 10 MiB of output in 1 KiB writes
            w.write("stdout", b"%08d " % i + b"x" * 1014 + b"\n", T0 + i)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ctr.log", "ctr.log.1"]
    sizes = [os.path.getsize(tmp_path / f) for f in files]
    assert all(s <= mib for s in sizes)
    assert sum(sizes) <= 2 * mib
    lines = data(log)
    numbers = [int(line[:8]) for line in lines]
    assert numbers[-1] == 10 * 1024 - 1
    assert numbers == list(range(numbers[0], 10 * 1024))  # a contiguous, in-order suffix
    assert len(numbers) > 1024  # more than the current file alone


def test_rotation_keeps_max_files(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log, max_size=4096, max_files=3) as w:
        for i in range(1000):
            w.write("stderr", b"line %d\n" % i, T0 + i)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ctr.log",
        "ctr.log.1",
        "ctr.log.2",
        "ctr.log.3",
    ]
    assert all(p.stat().st_size <= 4096 for p in tmp_path.iterdir())
    assert data(log)[-1] == b"line 999\n"
    assert data(tmp_path / "ctr.log.3")[0] < data(tmp_path / "ctr.log.2")[0]


def test_max_files_zero_truncates(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log, max_size=1000, max_files=0) as w:
        for i in range(200):
            w.write("stdout", b"%d\n" % i, T0)
    assert [p.name for p in tmp_path.iterdir()] == ["ctr.log"]
    assert data(log)[-1] == b"199\n"


def test_record_larger_than_max_size_gets_its_own_file(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log, max_size=100) as w:
        w.write("stdout", b"short\n", T0)
        w.write("stdout", b"z" * 300 + b"\n", T0)
    assert data(log) == [b"short\n", b"z" * 300 + b"\n"]
    assert log.read_bytes().endswith(b" stdout F " + b"z" * 300 + b"\n")
    assert log.read_bytes().count(b"\n") == 1
    assert data(tmp_path / "ctr.log.1") == [b"short\n"]


def test_writer_appends_to_an_existing_log(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log) as w:
        w.write("stdout", b"first run\n", T0)
    with LogWriter(log, max_size=10_000) as w:
        w.write("stdout", b"second run\n", T0 + 1)
    assert data(log) == [b"first run\n", b"second run\n"]


def test_bad_limits_are_refused(tmp_path):
    with pytest.raises(ValueError):
        LogWriter(tmp_path / "a", max_size=0)
    with pytest.raises(ValueError):
        LogWriter(tmp_path / "b", max_files=-1)


def test_since_until_streams_and_timestamps(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log) as w:
        for i in range(10):
            w.write("stdout" if i % 2 == 0 else "stderr", b"%d\n" % i, T0 + i * 10**9)
    assert data(log, since_ns=T0 + 7 * 10**9) == [b"7\n", b"8\n", b"9\n"]
    assert data(log, until_ns=T0 + 2 * 10**9) == [b"0\n", b"1\n", b"2\n"]
    assert data(log, since_ns=T0 + 3 * 10**9, until_ns=T0 + 5 * 10**9) == [b"3\n", b"4\n", b"5\n"]
    assert data(log, streams=("stderr",)) == [b"1\n", b"3\n", b"5\n", b"7\n", b"9\n"]
    assert data(log, tail=2, streams=("stdout",)) == [b"6\n", b"8\n"]
    assert data(log, tail=3, since_ns=T0 + 8 * 10**9) == [b"8\n", b"9\n"]
    assert data(log, tail=0) == []
    assert data(log, tail=1, timestamps=True) == [b"2025-12-04T15:50:47.000000000+00:00 9\n"]


def test_reads_other_offsets_and_skips_torn_lines(tmp_path):
    log = tmp_path / "ctr.log"
    log.write_bytes(
        b"2023-01-01T12:00:00.5+01:00 stdout F from conmon\n"
        b"not a log line\n"
        b"2023-01-01T11:00:01Z stderr F utc\n"
        b"2023-01-01T11:00:02.000000000+00:00 stdout F torn"  # no newline: mid-write
    )
    recs = list(read_log(log))
    assert [r.data for r in recs] == [b"from conmon\n", b"utc\n"]
    assert recs[0].time_ns == 1672570800 * 10**9 + 500_000_000
    assert recs[1].time_ns == 1672570801 * 10**9
    assert [r.data for r in read_log(log, tail=1)] == [b"utc\n"]


def test_missing_log_is_empty(tmp_path):
    assert data(tmp_path / "nothing.log") == []
    assert data(tmp_path / "nothing.log", tail=5) == []


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    """100k lines in the current file, 1000 in the rotated one, a long line at the end."""
    d = tmp_path_factory.mktemp("big")
    log = d / "ctr.log"
    with LogWriter(d / "ctr.log.1") as w:
        w.write("stdout", b"".join(b"old %d\n" % i for i in range(1000)), T0)
    with LogWriter(log) as w:
        for i in range(0, 100_000, 1000):
            w.write("stdout", b"".join(b"line %d\n" % j for j in range(i, i + 1000)), T0 + i)
            w.write("stderr", b"err %d\n" % i, T0 + i)
        w.write("stdout", b"L" * 40_000 + b"\n", T0 + 10**9)
        w.write("stderr", b"tail-partial", T0 + 10**9 + 1)
    return log


def test_tail_of_a_big_file_is_fast_and_right(big_log):
    t = time.perf_counter()
    got = data(big_log, tail=4)
    elapsed = time.perf_counter() - t
    assert got == [b"line 99999\n", b"err 99000\n", b"L" * 40_000 + b"\n", b"tail-partial"]
    t = time.perf_counter()
    everything = data(big_log)
    full = time.perf_counter() - t
    assert len(everything) == 1000 + 100_000 + 100 + 2
    assert elapsed < 0.05 and elapsed < full / 5, (elapsed, full)


def test_tail_spans_rotated_files(tmp_path):
    log = tmp_path / "ctr.log"
    with LogWriter(log, max_size=200, max_files=2) as w:
        for i in range(12):
            w.write("stdout", b"%02d\n" % i, T0 + i)
    assert os.path.exists(f"{log}.1")
    n_current = len(data(log)) - len(data(f"{log}.1")) - len(data(f"{log}.2"))
    assert data(log, tail=n_current + 1)[0] != data(log, tail=n_current)[0]
    assert data(log, tail=7) == [b"%02d\n" % i for i in range(5, 12)]


def test_tail_with_stream_filter_reads_far_enough(big_log):
    assert data(big_log, tail=2, streams=("stderr",)) == [b"err 99000\n", b"tail-partial"]


def test_follow_across_growth_and_rotation(tmp_path):
    log = tmp_path / "ctr.log"
    w = LogWriter(log, max_size=1000, max_files=1)
    w.write("stdout", b"before 1\nbefore 2\n", T0)
    steps = iter(range(6))

    def wait() -> bool:
        step = next(steps, None)
        if step is None:
            w.close()
            return False
        # Each step rotates about once (more than max_files rotations between two polls
        # would lose a file); a line is split across two writes.
        w.write("stdout", b"".join(b"s%d-%02d\n" % (step, k) for k in range(10)) + b"part", T0)
        w.write("stdout", b"ial %d\n" % step, T0)
        return True

    got = [r.data for r in follow(log, wait=wait, tail=1)]
    expected = [b"before 2\n"]
    for step in range(6):
        expected += [b"s%d-%02d\n" % (step, k) for k in range(10)]
        expected.append(b"partial %d\n" % step)
    assert got == expected
    assert os.path.exists(f"{log}.1")


def test_follow_sees_a_log_created_later_and_finishes_partials(tmp_path):
    log = tmp_path / "ctr.log"
    writer = []

    def wait() -> bool:
        if not writer:
            writer.append(LogWriter(log))
            writer[0].write("stderr", b"late\nno newline", T0)
            writer[0].flush(T0)
            return True
        writer[0].close()
        return False

    recs = list(follow(log, wait=wait))
    assert [(r.stream, r.data) for r in recs] == [("stderr", b"late\n"), ("stderr", b"no newline")]


def test_follower_poll_picks_up_a_torn_record_once_complete(tmp_path):
    log = tmp_path / "ctr.log"
    log.write_bytes(b"2025-12-04T15:50:38.000000000+00:00 stdout F one\n2025-12-04T15:5")
    f = LogFollower(log)
    assert [r.data for r in f.history()] == [b"one\n"]
    assert list(f.poll()) == []
    with open(log, "ab") as out:
        out.write(b"0:39.000000000+00:00 stdout F two\n")
    assert [r.data for r in f.poll()] == [b"two\n"]
    f.close()


def test_follower_after_truncation_reads_from_start(tmp_path):
    log = tmp_path / "ctr.log"
    log.write_bytes(b"2025-12-04T15:50:38.000000000+00:00 stdout F aaaaaaaaaaaaa\n")
    f = LogFollower(log, timestamps=True)
    assert len(list(f.history())) == 1
    log.write_bytes(b"2025-12-04T15:50:39.000000000+00:00 stdout F b\n")
    assert [r.data for r in f.poll()] == [b"2025-12-04T15:50:39.000000000+00:00 b\n"]
    f.close()


def test_random_writes_round_trip_with_records_bounded(tmp_path):
    import random

    rng = random.Random(7)
    log = tmp_path / "ctr.log"
    sent = {"stdout": b"", "stderr": b""}
    with LogWriter(log, line_max=16) as w:
        for _ in range(2000):
            stream = rng.choice(("stdout", "stderr"))
            newline = rng.choice((0.01, 0.1, 0.5))  # long lines, mixed, many short ones
            size = rng.randrange(60)
            chunk = b"".join(rng.choices((b"a", b"\n"), (1 - newline, newline), k=size))
            w.write(stream, chunk, T0)
            sent[stream] += chunk
            if rng.random() < 0.05:
                w.flush(T0)
    for line in log.read_bytes().splitlines():
        assert RECORD.match(line)
        assert len(line.split(b" ", 3)[3]) <= 16
    for stream in sent:
        assert b"".join(data(log, streams=(stream,))) == sent[stream]
