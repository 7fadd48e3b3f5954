"""Pure parts of engine/archive_ops (overlay options, layer paths, load output) and the
store's gc roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rootless.engine.archive_ops import layer_of, loaded_lines, plan_export_overlay
from rootless.errors import ImageError
from rootless.image.commit import History, commit_image
from rootless.image.layerdiff import WholeTree
from rootless.image.overlayfmt import overlay_lowerdirs, overlay_upperdir, split_unescaped, unescape
from rootless.image.rootfs import plan_overlay
from rootless.image.store import Store

HEX = "ab" * 32


def test_split_and_unescape_follow_overlayfs_escapes() -> None:
    assert split_unescaped(r"a\,b,c\:d:e", ",") == [r"a\,b", r"c\:d:e"]
    assert split_unescaped(r"x\\:y", ":") == [r"x\\", "y"]
    assert unescape(r"a\,b\:c\\d") == r"a,b:c\d"


def test_lowerdirs_and_upperdir_round_trip_plan_overlay() -> None:
    lowers = [Path("/s/layers/1/diff"), Path("/odd:dir,x/diff")]
    plan = plan_overlay(lowers, Path("/c/up,per"), Path("/c/work"), Path("/c/merged"))
    assert overlay_lowerdirs(plan.options) == ["/odd:dir,x/diff", "/s/layers/1/diff"]
    assert overlay_upperdir(plan.options) == "/c/up,per"
    assert overlay_upperdir("lowerdir=/a") is None
    assert overlay_lowerdirs("") == []


def test_export_overlay_puts_the_upper_on_top_read_only() -> None:
    plan = plan_overlay(
        [Path("/l/base"), Path("/l/top")], Path("/c/up:per"), Path("/c/work"), Path("/m")
    )
    planned = plan_export_overlay(plan.options)
    assert planned == r"lowerdir=/c/up\:per:/l/top:/l/base,userxattr"
    assert "upperdir" not in planned and "workdir" not in planned
    assert overlay_lowerdirs(planned) == ["/c/up:per", "/l/top", "/l/base"]
    with pytest.raises(ImageError, match="no lowerdir or upperdir"):
        plan_export_overlay("lowerdir=/a")
    with pytest.raises(ImageError, match="over the kernel's 4095"):
        plan_export_overlay("lowerdir=" + "/x" * 2100 + ",upperdir=/u,workdir=/w")


def test_layer_of_names_only_store_layer_dirs() -> None:
    root = Path("/data/storage")
    assert layer_of(f"/data/storage/layers/{HEX}/diff", root) == f"sha256:{HEX}"
    assert layer_of(f"/data/storage/layers/{HEX}", root) is None
    assert layer_of(f"/elsewhere/layers/{HEX}/diff", root) is None
    assert layer_of("/data/storage/layers/nothex/diff", root) is None


def test_loaded_lines_name_each_image_or_its_id() -> None:
    class Rec:
        def __init__(self, id: str, names: tuple[str, ...]) -> None:
            self.id, self.names = id, names

    records = [Rec("sha256:1", ("localhost/a:1", "localhost/a:2")), Rec("sha256:2", ())]
    assert loaded_lines(records) == [  # type: ignore[arg-type]
        "Loaded image: localhost/a:1",
        "Loaded image: localhost/a:2",
        "Loaded image: sha256:2",
    ]


def test_gc_keeps_layers_named_as_roots(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("data")
    store = Store(tmp_path / "store")
    record = commit_image(store, parent=None, layer=WholeTree(tree), history=History("t"))
    diff_id = record.layers[0].diff_id
    layer = store.layer_dir(diff_id)

    store.remove_image(record.id, keep_layers={diff_id})
    assert layer.is_dir() and (layer / "f").read_text() == "data"
    report = store.gc(keep_layers=[diff_id])
    assert report.layers == 0 and layer.is_dir()
    assert os.listdir(store.root / "blobs" / "sha256") == []  # blobs are not roots

    assert store.gc().layers == 1
    assert not layer.parent.exists()
