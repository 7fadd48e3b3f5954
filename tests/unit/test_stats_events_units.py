"""stats and events, the pure parts: /proc parsing, rows, the log's lines, filters, formats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import attrs
import pytest

from rootless import _events
from rootless.engine import events as ev
from rootless.engine import stats
from rootless.errors import ConfigError
from rootless.hostinfo import _git_commit

STAT = b"42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 70 30 5 5 20 0 1 0 100 4096000 250"


def test_stat_ticks_include_reaped_children():
    assert stats.parse_stat_ticks(STAT) == (70 + 30 + 5 + 5, 250)


def test_keyed_files_in_bytes():
    rollup = b"55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss: 1200 kB\nPss: 800 kB\n"
    assert stats.parse_keyed(rollup) == {"Rss": 1200 * 1024, "Pss": 800 * 1024}
    io = b"rchar: 10\nread_bytes: 4096\nwrite_bytes: 8192\n"
    assert stats.parse_keyed(io)["write_bytes"] == 8192


def test_net_dev_leaves_out_loopback():
    data = (
        b"Inter-|   Receive |  Transmit\n face |bytes packets|bytes\n"
        b"    lo: 500 5 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n"
        b"  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
        b"   tap: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n"
    )
    assert stats.parse_net_dev(data) == (1001, 2002)


def test_sample_processes_from_a_fake_proc(tmp_path: Path):
    for pid, pss in (("10", b"Pss: 100 kB\n"), ("11", None)):
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_bytes(STAT)
        if pss:
            (tmp_path / pid / "smaps_rollup").write_bytes(pss)
        (tmp_path / pid / "io").write_bytes(b"read_bytes: 1\nwrite_bytes: 2\n")
    total = stats.sample_processes([10, 11, 12], str(tmp_path))  # 12 is gone
    page = 4096
    assert total == {
        "cpu_ticks": 220,
        "memory": 100 * 1024 + 250 * page,  # PSS, else RSS
        "pids": 2,
        "block_read": 2,
        "block_write": 4,
    }


HOST = stats.Host(clock_ticks=100, memory=8_000_000_000)


def test_cpu_percent_over_the_interval_and_on_average():
    prev = stats.Sample("a" * 64, "web", True, when=10.0, cpu_ticks=1000, uptime=100.0)
    cur = stats.Sample("a" * 64, "web", True, when=12.0, cpu_ticks=1300, memory=2_000_000,
                       pids=3, net_rx=1500, net_tx=20, uptime=102.0)  # fmt: skip
    row = stats.stats_row(prev, cur, HOST)
    assert row["CPUPerc"] == "150.00%"  # 3 s of CPU in 2 s: one and a half CPUs
    assert row["AvgCPU"] == f"{100 * 13 / 102:.2f}%"
    assert row["CPUTime"] == "13s"
    assert row["MemUsage"] == "2MB / 8GB" and row["MemPerc"] == "0.03%"
    assert row["NetIO"] == "1.5kB / 20B" and row["PIDs"] == 3 and row["ID"] == "a" * 12
    # no previous sample: the average since the start
    assert stats.stats_row(None, cur, HOST)["CPUPerc"] == row["AvgCPU"]
    # a total that went down (a process exited, its time not reaped) is no negative CPU
    assert stats.stats_row(cur, attrs.evolve(prev, when=13.0), HOST)["CPU"] == 0.0


def test_a_stopped_container_shows_dashes():
    row = stats.stats_row(None, stats.Sample("b" * 64, "off", False, when=1.0), HOST)
    assert row["PIDs"] == "--" and row["CPUPerc"] == "0.00%" and row["MemUsage"] == "0B / 8GB"


def test_event_lines_are_json_below_pipe_buf():
    line = _events.encode("container", "died", id="c" * 64, name="web", image="busybox",
                          attributes={"containerExitCode": "3"}, time_ns=5)  # fmt: skip
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    event = ev.parse_line(line)
    assert event == ev.Event(5, "container", "died", "c" * 64, "web", "busybox",
                             {"containerExitCode": "3"})  # fmt: skip
    long = _events.encode("container", "create", id="c" * 64, name="n" * 9000,
                          attributes={"k": "v" * 9000}, time_ns=1)  # fmt: skip
    assert len(long) < 4096
    parsed = ev.parse_line(long)
    assert parsed is not None and parsed.attributes == {} and parsed.name == "n" * 200
    assert ev.parse_line(b'{"time": 1, "type"') is None
    assert ev.parse_line(b"[]") is None


def test_emit_appends_and_makes_the_directory(tmp_path: Path):
    _events.emit(tmp_path, "image", "pull", id="sha", name="busybox")
    _events.emit(tmp_path, "image", "tag", id="sha", name="b:1")
    path = _events.log_path(tmp_path)
    events = ev.read_events(path, ev.parse_filters([]))
    assert [(e.status, e.name) for e in events] == [("pull", "busybox"), ("tag", "b:1")]
    assert ev.read_events(tmp_path / "none.log", ev.parse_filters([])) == []


def test_a_full_log_rotates_once_and_both_generations_are_read(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(_events, "MAX_LOG", 300)
    for i in range(10):
        _events.emit(tmp_path, "container", "create", id=str(i), name=f"c{i}")
    path = _events.log_path(tmp_path)
    assert path.stat().st_size < 300 + _events.MAX_LINE
    names = [e.name for e in ev.read_events(path, ev.parse_filters([]))]
    # only two generations are kept: the newest events, in order, without a gap
    assert names == [f"c{i}" for i in range(10 - len(names), 10)] and len(names) >= 3
    assert _events.older_log(path).exists()


def test_following_goes_on_into_the_new_file_after_a_rotation(tmp_path: Path, monkeypatch):
    import threading

    monkeypatch.setattr(_events, "MAX_LOG", 300)
    monkeypatch.setattr(ev, "POLL_SECONDS", 0.01)
    path = _events.log_path(tmp_path)
    _events.emit(tmp_path, "container", "create", id="0", name="first")
    seen: list[str] = []
    filt = ev.parse_filters([], until_ns=time.time_ns() + 2_000_000_000)
    follower = threading.Thread(
        target=ev.follow_events, args=(path, filt, lambda e: seen.append(e.name))
    )
    follower.start()
    for i in range(1, 12):
        _events.emit(tmp_path, "container", "create", id=str(i), name=f"c{i}")
        time.sleep(0.05)
    follower.join(timeout=10)
    assert seen == ["first"] + [f"c{i}" for i in range(1, 12)]


def _event(kind: str, status: str, name: str, t: int = 10, image: str = "") -> ev.Event:
    return ev.Event(t, kind, status, "abcdef" + "0" * 58, name, image, {})


def test_filters_or_within_a_key_and_across_keys():
    events = [
        _event("container", "start", "web", image="busybox"),
        _event("container", "died", "web", image="busybox"),
        _event("container", "start", "db"),
        _event("image", "pull", "busybox"),
    ]

    def names(*filters: str, since: int | None = None, until: int | None = None) -> list[str]:
        f = ev.parse_filters(filters, since, until)
        return [f"{e.status} {e.name}" for e in events if f.matches(e)]

    assert names("event=start") == ["start web", "start db"]
    assert names("event=start", "event=died", "container=web") == ["start web", "died web"]
    assert names("type=image") == ["pull busybox"]
    assert names("image=busybox") == ["start web", "died web", "pull busybox"]
    assert names("container=abcdef") == ["start web", "died web", "start db"]  # an ID prefix
    assert names("status=died") == ["died web"]
    assert names(since=11) == [] and names(until=9) == []
    assert len(names(since=10, until=10)) == 4
    for bad in ("type", "color=red", "event="):
        with pytest.raises(ConfigError, match="invalid filter"):
            ev.parse_filters([bad])


def test_label_filter_matches_a_key_or_a_key_and_value():
    web = ev.Event(10, "container", "start", "a" * 64, "web", "", {"tier": "web", "x": ""})
    assert ev.parse_filters(["label=tier"]).matches(web)
    assert ev.parse_filters(["label=tier=web"]).matches(web)
    assert ev.parse_filters(["label=x="]).matches(web)
    assert not ev.parse_filters(["label=tier=db"]).matches(web)
    assert not ev.parse_filters(["label=other"]).matches(web)


def test_event_formats():
    event = ev.Event(1_700_000_000_123_456_789, "container", "died", "f" * 64, "web", "busybox",
                     {"containerExitCode": "0"})  # fmt: skip
    text = ev.format_text(event)
    assert text.endswith(
        f" container died {'f' * 64} (containerExitCode=0, image=busybox, name=web)"
    )
    assert ".123456789 " in text
    fields = json.loads(ev.formatter("json")(event))
    assert fields["Time"] == "2023-11-14T22:13:20.123456789Z" and fields["Status"] == "died"
    assert ev.formatter("{{.Type}}/{{.Status}} {{.Name}}")(event) == "container/died web\n"
    with pytest.raises(ConfigError):
        ev.formatter("{{.Name")


def test_git_commit_of_a_worktree_checkout(tmp_path: Path):
    common = tmp_path / "repo.git"
    (common / "worktrees" / "wt").mkdir(parents=True)
    (common / "worktrees" / "wt" / "HEAD").write_text("ref: refs/heads/topic\n")
    (common / "worktrees" / "wt" / "commondir").write_text("../..\n")
    (common / "packed-refs").write_text("# pack-refs\n" + "a" * 40 + " refs/heads/topic\n")
    checkout = tmp_path / "checkout"
    (checkout / "rootless").mkdir(parents=True)
    (checkout / ".git").write_text(f"gitdir: {common / 'worktrees' / 'wt'}\n")
    assert _git_commit(str(checkout / "rootless")) == "a" * 40
    assert _git_commit(str(tmp_path / "nowhere" / "rootless")) == ""
