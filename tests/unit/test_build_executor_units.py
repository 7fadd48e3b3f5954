"""Pure and file-level parts of the build executor: cache keys, the index, sources."""

from __future__ import annotations

import os
import tarfile

import pytest

from rootless.build.cache import BuildCache, FileSums, StepResult, base_key, step_key
from rootless.build.context import (
    Placement,
    SourceRoot,
    copy_items,
    digest_items,
    extract_archive,
    is_archive,
    resolve_sources,
)
from rootless.build.dockerfile import parse_instruction
from rootless.build.executor import _as_literal, find_containerfile
from rootless.build.ignore import IgnoreMatcher
from rootless.build.run import run_args as _run_args
from rootless.errors import BuildError
from rootless.image.commit import ChangeState, apply_instruction

ME = Placement((os.getuid(), os.getgid()))


def test_step_keys_chain_and_ignore_line_numbers():
    parent = base_key("sha256:" + "a" * 64)
    run = parse_instruction("RUN make", line=3)
    assert step_key(parent, run) == step_key(parent, parse_instruction("RUN make", line=9))
    assert step_key(parent, run) != step_key(parent, parse_instruction("RUN make all"))
    assert step_key(parent, run) != step_key(base_key(None), run)
    assert step_key(parent, run, extra=["A=1"]) != step_key(parent, run, extra=["A=2"])


def test_cache_index_round_trip(tmp_path):
    cache = BuildCache(tmp_path / "c")
    key = base_key(None)
    assert cache.get(key) is None
    result = StepResult({"config": {"Env": ["A=1"]}}, (("m", "sha256:" + "b" * 64, 3, "d"),))
    cache.put(key, result)
    assert cache.get(key) == result
    (tmp_path / "c" / (key.partition(":")[2] + ".json")).write_text("{broken")
    assert cache.get(key) is None


def test_substituted_values_are_not_substituted_again():
    config: dict[str, object] = {"Env": ["HOME=/root"]}
    env = parse_instruction("ENV A=x")
    literal = env.__class__(line=1, end_line=1, text="ENV", pairs=(("A", "$HOME 'q' \\"),))
    apply_instruction(config, _as_literal(literal), ChangeState())
    assert config["Env"] == ["HOME=/root", "A=$HOME 'q' \\"]


def test_run_args_shell_exec_and_heredoc():
    assert _run_args(parse_instruction("RUN echo hi"), ("/bin/sh", "-c")) == [
        "/bin/sh",
        "-c",
        "echo hi",
    ]
    assert _run_args(parse_instruction('RUN ["a", "b"]'), ("/bin/sh", "-c")) == ["a", "b"]


def test_find_containerfile(tmp_path):
    with pytest.raises(BuildError, match="no Containerfile or Dockerfile"):
        find_containerfile(tmp_path, None)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert find_containerfile(tmp_path, None) == tmp_path / "Dockerfile"
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    assert find_containerfile(tmp_path, None) == tmp_path / "Containerfile"


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "dir" / "sub").mkdir(parents=True)
    (ctx / "dir" / "a.txt").write_text("a\n")
    (ctx / "dir" / "b.log").write_text("b\n")
    (ctx / "dir" / "sub" / "c.txt").write_text("c\n")
    (ctx / "top.txt").write_text("top\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    (ctx / "up").symlink_to("../outside.txt")
    (ctx / "abs").symlink_to(tmp_path / "outside.txt")
    (ctx / "inner").symlink_to("dir/a.txt")
    return SourceRoot(ctx, IgnoreMatcher.from_text("**/*.log\n"))


def test_sources_resolve_inside_the_context(context):
    assert [i.rel for i in resolve_sources(context, ["inner"])] == ["dir/a.txt"]
    assert [i.rel for i in resolve_sources(context, ["dir/*.txt", "top.*"])] == [
        "dir/a.txt",
        "top.txt",
    ]
    for escaping in ("up", "abs", "../outside.txt", "dir/b.log"):
        with pytest.raises(BuildError, match="not in the build context"):
            resolve_sources(context, [escaping])


def test_digest_follows_content_not_mtime(context):
    items = resolve_sources(context, ["dir"])
    before = digest_items(context, items)
    os.utime(context.path / "dir" / "a.txt", (1, 1))
    assert digest_items(context, items) == before
    (context.path / "dir" / "b.log").write_text("ignored, so no change\n")
    assert digest_items(context, items) == before
    (context.path / "dir" / "sub" / "c.txt").write_text("C\n")
    assert digest_items(context, items) != before


def test_file_sums_spare_reading_unchanged_files_and_persist(context, tmp_path):
    items = resolve_sources(context, ["dir"])
    plain = digest_items(context, items)
    sums = FileSums(tmp_path / "sums.json")
    assert digest_items(context, items, sums) == plain
    sums.save()
    again = FileSums(tmp_path / "sums.json")
    a_txt = os.stat(context.path / "dir" / "a.txt")
    assert again.get(a_txt) is not None
    again.put(a_txt, "0" * 64)  # what a known file hashes to is taken, not read again
    assert digest_items(context, items, again) != plain
    (context.path / "dir" / "a.txt").write_text("a\n")  # rewritten: a new ctime, read again
    assert digest_items(context, items, again) == plain


def test_copy_places_like_docker(context, tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "link").symlink_to("/etc")  # an absolute link inside the rootfs stays inside
    copy_items(context, resolve_sources(context, ["dir"]), str(root), "/app", ME)
    assert sorted(os.listdir(root / "app")) == ["a.txt", "sub"]
    copy_items(context, resolve_sources(context, ["top.txt"]), str(root), "/link/", ME)
    assert (root / "etc" / "top.txt").read_text() == "top\n"
    copy_items(context, resolve_sources(context, ["top.txt"]), str(root), "/new/name", ME)
    assert (root / "new" / "name").read_text() == "top\n"
    mode = Placement(ME.owner, 0o600)
    copy_items(context, resolve_sources(context, ["inner"]), str(root), "/m", mode)
    assert (root / "m").stat().st_mode & 0o777 == 0o600


def test_archives_unpack_inside_the_root(tmp_path):
    src = tmp_path / "t.tar.gz"
    with tarfile.open(src, "w:gz") as tar:
        info = tarfile.TarInfo("d/f")
        info.size = 2
        info.uid, info.gid = os.getuid(), os.getgid()
        import io

        tar.addfile(info, io.BytesIO(b"hi"))
    assert is_archive(str(src)) and not is_archive(str(tmp_path))
    root = tmp_path / "root"
    root.mkdir()
    extract_archive(str(src), str(root), "/x", ME)
    assert (root / "x" / "d" / "f").read_text() == "hi"
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.addfile(tarfile.TarInfo("../evil"))
    with pytest.raises(BuildError, match="climbs out"):
        extract_archive(str(bad), str(root), "/x", ME)
