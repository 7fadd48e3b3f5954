"""Pure parts of cp, diff, top and system df; the tar sides on plain host directories."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from rootless.engine import copying as cp
from rootless.engine import processes as ps
from rootless.engine.container_ops import Change, diff_json, parse_overlay_options, scan_upper
from rootless.engine.system_ops import DfRow, plan_image_usage

# -- cp planning ---------------------------------------------------------------------


def test_parse_cp_args_sides() -> None:
    assert cp.parse_cp_args("box:/etc/passwd", "/tmp/x") == cp.CopyPlan(
        "box", "out", "/etc/passwd", "/tmp/x"
    )
    assert cp.parse_cp_args("./file:with:colons", "box:etc") == cp.CopyPlan(
        "box", "in", "/etc", "./file:with:colons"
    )
    assert cp.parse_cp_args("-", "box:/tmp").host_path == "-"
    with pytest.raises(cp.CopyError, match="one of the paths must be in a container"):
        cp.parse_cp_args("/a", "/b")
    with pytest.raises(cp.CopyError, match="between containers"):
        cp.parse_cp_args("a:/x", "b:/y")


@pytest.mark.parametrize(
    ("path", "ref"),
    [
        ("/etc/passwd", cp.SourceRef("/etc", "passwd", "passwd", False)),
        ("/etc/", cp.SourceRef("/etc", "", "etc", False)),
        ("/etc/.", cp.SourceRef("/etc", "", "etc", True)),
        ("/", cp.SourceRef("/", "", ".", True)),
        ("rel", cp.SourceRef(".", "rel", "rel", False)),
    ],
)
def test_plan_source(path: str, ref: cp.SourceRef) -> None:
    assert cp.plan_source(path) == ref


def test_plan_placement_follows_docker_rules() -> None:
    place = cp.plan_placement
    assert place("/d", "dir", src_is_dir=False, contents=False, src_name="f") == cp.Placement(
        "/d", "f"
    )
    assert place("/d", "dir", src_is_dir=True, contents=True, src_name="s") == cp.Placement(
        "/d", None
    )
    assert place("/d/f", "file", src_is_dir=False, contents=False, src_name="x") == cp.Placement(
        "/d", "f"
    )
    assert place("/d/new", "missing", src_is_dir=True, contents=False, src_name="s") == (
        cp.Placement("/d", "new")
    )
    with pytest.raises(cp.CopyError, match="directory onto the file"):
        place("/d/f", "file", src_is_dir=True, contents=False, src_name="s")
    with pytest.raises(cp.CopyError, match="does not exist"):
        place("/nope/", "missing", src_is_dir=False, contents=False, src_name="f")


def test_member_names_are_confined() -> None:
    assert cp.member_parts("./a//b/./c") == ["a", "b", "c"]
    assert cp.member_parts("/abs/x") == ["abs", "x"]
    with pytest.raises(cp.CopyError, match="climbs out"):
        cp.member_parts("a/../../etc")
    top = ["src"]
    assert cp.relocate(["src", "x"], top, cp.Placement("/d", "new")) == ["new", "x"]
    assert cp.relocate(["src"], top, cp.Placement("/d", None)) is None
    with pytest.raises(cp.CopyError, match="outside"):
        cp.relocate(["other"], top, cp.Placement("/d", None))


# -- the tar sides on the host -------------------------------------------------------


def _tar(build) -> io.BytesIO:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        build(tar)
    buf.seek(0)
    return buf


def _add(tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    data = kw.pop("data", b"")
    assert isinstance(data, bytes)
    for k, v in kw.items():
        setattr(info, k, v)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def test_round_trip_of_a_tree(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"data")
    os.link(src / "sub" / "f", src / "hard")
    os.symlink("/absolute/target", src / "link")
    os.mkfifo(src / "fifo")
    (src / "sub").chmod(0o750)
    buf = io.BytesIO()
    cp.write_tar(buf, cp.host_side(), cp.plan_source(str(src)), "the host")
    buf.seek(0)
    dest = tmp_path / "dest"
    dest.mkdir()
    cp.extract_tar(buf, cp.host_side(), str(dest), cp.ExtractOptions())
    out = dest / "src"
    assert (out / "sub" / "f").read_bytes() == b"data"
    assert os.stat(out / "hard").st_ino == os.stat(out / "sub" / "f").st_ino
    assert os.readlink(out / "link") == "/absolute/target"
    assert (out / "fifo").is_fifo()
    assert (out / "sub").stat().st_mode & 0o777 == 0o750


def test_extract_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()

    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "d", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "d/esc", tarfile.SYMTYPE, linkname=str(victim))
        _add(tar, "d/esc/pwned", data=b"x")

    with pytest.raises(cp.CopyError, match="esc is not a directory"):
        cp.extract_tar(_tar(build), cp.host_side(), str(dest), cp.ExtractOptions())
    assert list(victim.iterdir()) == []


def test_extract_replaces_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    os.symlink(victim, dest / "d" / "f")

    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "d", tarfile.DIRTYPE, mode=0o755)
        _add(tar, "d/f", data=b"new")

    cp.extract_tar(_tar(build), cp.host_side(), str(dest), cp.ExtractOptions())
    assert victim.read_text() == "keep"
    assert (dest / "d" / "f").read_bytes() == b"new" and not (dest / "d" / "f").is_symlink()


def test_stream_tar_refuses_dotdot(tmp_path: Path) -> None:
    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "../escape", data=b"x")

    with pytest.raises(cp.CopyError, match="climbs out"):
        cp.extract_tar(
            _tar(build), cp.host_side(), str(tmp_path), cp.ExtractOptions(from_stream=True)
        )
    assert not (tmp_path.parent / "escape").exists()


def test_type_clash_needs_overwrite(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()

    def build(tar: tarfile.TarFile) -> None:
        _add(tar, "x", data=b"file")

    with pytest.raises(cp.CopyError, match="--overwrite"):
        cp.extract_tar(
            _tar(build), cp.host_side(), str(tmp_path), cp.ExtractOptions(from_stream=True)
        )
    cp.extract_tar(
        _tar(build),
        cp.host_side(),
        str(tmp_path),
        cp.ExtractOptions(overwrite=True, from_stream=True),
    )
    assert (tmp_path / "x").read_bytes() == b"file"


# -- diff ----------------------------------------------------------------------------


def test_parse_overlay_options_unescapes() -> None:
    opts = r"lowerdir=/l/b\:c:/l/a,upperdir=/c/up\,per,workdir=/c/work,userxattr"
    assert parse_overlay_options(opts) == (["/l/b:c", "/l/a"], "/c/up,per")


def _xattrs_work(path: Path) -> bool:
    try:
        os.setxattr(path, "user.test", b"1")
    except OSError:
        return False
    return True


def test_scan_upper(tmp_path: Path) -> None:
    base, top, upper = tmp_path / "base", tmp_path / "top", tmp_path / "upper"
    for d in (base / "etc", base / "opq", top / "etc", upper / "etc", upper / "opq", upper / "new"):
        d.mkdir(parents=True)
    for f in (base / "etc" / "passwd", base / "opq" / "old", top / "etc" / "hosts"):
        f.write_text("")
    (upper / "etc" / "hosts").write_text("changed")
    (upper / "etc" / "added").write_text("")
    (upper / "new" / "f").write_text("")
    (upper / "opq" / "kept").write_text("")
    if not _xattrs_work(upper):
        pytest.skip("no user xattrs on this file system")
    os.setxattr(upper / "opq", "user.overlay.opaque", b"y")
    (upper / "etc" / "passwd").write_text("")
    os.setxattr(upper / "etc" / "passwd", "user.overlay.whiteout", b"y")
    changes = scan_upper(str(upper), [str(top), str(base)])
    assert [(c.kind, c.path) for c in changes] == [
        ("C", "/etc"),
        ("A", "/etc/added"),
        ("C", "/etc/hosts"),
        ("D", "/etc/passwd"),
        ("A", "/new"),
        ("A", "/new/f"),
        ("C", "/opq"),
        ("A", "/opq/kept"),
        ("D", "/opq/old"),
    ]
    assert diff_json([Change("/a", "A"), Change("/b", "D")]) == {
        "added": ["/a"],
        "deleted": ["/b"],
    }


# -- top -----------------------------------------------------------------------------


def _proc(host: int, pid: int, ppid: int, uid: int = 100000, comm: str = "sh") -> ps.ProcInfo:
    return ps.ProcInfo(
        host_pid=host, pid=pid, host_ppid=ppid, uid=uid, gid=uid, comm=comm,
        args=(comm, "-c", "x"), state="S", cpu_ticks=150, start_ticks=1000, tty_nr=0,
        nice=0, pgid_host=host, vsz=4096 * 1024, rss=1024 * 1024,
    )  # fmt: skip


def test_plan_top_maps_pids_users_and_formats() -> None:
    ctx = ps.TopContext(
        uid_map=((0, 1000, 1), (1, 100000, 65536)),
        gid_map=((0, 1000, 1), (1, 100000, 65536)),
        passwd="root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        group="root:x:0:\n",
        uptime=40.0,
        clock_ticks=100,
    )
    procs = [_proc(500, 1, 400, uid=1000), _proc(501, 7, 500, uid=100999, comm="sleep")]
    rows = ps.plan_top(procs, ps.parse_descriptors([]), ctx)
    assert rows == [
        ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"],
        ["root", "1", "0", "5.000", "30s", "?", "1.5s", "sh"],
        ["app", "7", "1", "5.000", "30s", "?", "1.5s", "sleep"],
    ]
    rows = ps.plan_top(procs, ps.parse_descriptors(["%p,%a", "hpid", "group"]), ctx)
    assert rows[0] == ["PID", "COMMAND", "HPID", "GROUP"]
    assert rows[2] == ["7", "sleep -c x", "501", "1000"]
    with pytest.raises(Exception, match="unknown top descriptor"):
        ps.parse_descriptors(["nope"])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (1.5, "1.5s"), (20.386825206, "20.386825206s"), (125, "2m5s"), (3723, "1h2m3s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert ps.go_duration(seconds) == text


def test_tty_names_and_id_maps() -> None:
    assert ps.tty_name(0) == "?"
    assert ps.tty_name((136 << 8) | 3) == "pts/3"
    m = ps.parse_id_map("         0       1000          1\n         1     100000      65536\n")
    assert ps.to_inside(1000, m) == 0
    assert ps.to_inside(100999, m) == 1000
    assert ps.to_inside(5, m) == 65534


# -- system df -----------------------------------------------------------------------


def test_image_usage_counts_shared_layers_once() -> None:
    images = [("a", ["l1", "l2"]), ("b", ["l1", "l3"]), ("c", ["l4"])]
    sizes = {"l1": 100, "l2": 10, "l3": 20, "l4": 5}
    row = plan_image_usage(images, sizes, used=["a"])
    assert row == DfRow("Images", 3, 1, 135, 25)
    assert row.to_json()["Reclaimable"] == "25B (19%)"
    assert DfRow("Containers", 0, 0, 0, 0).to_json()["Reclaimable"] == "0B (0%)"
