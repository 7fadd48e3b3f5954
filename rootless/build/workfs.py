"""Where a build's steps write: a rootfs per step, and the layer the step leaves.

Two drivers, as for containers (``rootless.engine.storage``):

- overlay: each step mounts the stage's layers as lower directories under a fresh
  upper directory, which becomes the step's layer (deletions are whiteouts);
- copy: a stage works in a materialised tree and keeps a second one, the snapshot,
  as it was before the step; the layer is the difference of the two. After the
  step the stored layer is applied to both trees, so they stay equal entry for
  entry (a layer keeps whole-second mtimes) and the next step diffs only its own
  changes. Trees are kept by the layers they hold, so the next step of a stage,
  or a step after cached ones, starts from the tree it left.

Read-only views of a list of layers (``COPY --from``, ``RUN --mount=from=``, the
squash) are overlays without an upper, or materialised trees. Call everything
inside the user's namespace, in the builder's private mount namespace.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from rootless.build.cache import Layer
from rootless.image.layerdiff import DirDiff, TreeSource, UpperDir

if TYPE_CHECKING:
    from rootless.image.store import Store


@attrs.frozen
class StepFs:
    """A step's rootfs (``merged``), and what to write as its layer when it is done."""

    merged: str
    changes: TreeSource


class WorkFs(Protocol):
    def step(self, layers: Sequence[Layer]) -> contextlib.AbstractContextManager[StepFs]:
        """A writable rootfs holding ``layers``; left when the step's layer is stored
        (:meth:`stored`) or abandoned."""
        ...

    def stored(self, fs: StepFs, layers: Sequence[Layer]) -> None:
        """The step's change is stored: the rootfs now holds ``layers``."""
        ...

    def view(self, layers: Sequence[Layer]) -> contextlib.AbstractContextManager[Path]:
        """A read-only view of ``layers`` (do not write to it)."""
        ...


def open_workfs(driver: str, store: Store, work: Path) -> WorkFs:
    if driver == "copy":
        return CopyFs(store, work)
    return OverlayFs(store, work)


def _new_dir(parent: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _overlay_escape(path: Path) -> str:
    # overlayfs splits lowerdir on ':' and its options on ','.
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


class OverlayFs:
    def __init__(self, store: Store, work: Path) -> None:
        self.store = store
        self.work = work
        self.empty = _new_dir(work, "empty-")

    @contextlib.contextmanager
    def step(self, layers: Sequence[Layer]) -> Iterator[StepFs]:
        from rootless.image._fsops import remove_tree
        from rootless.image.rootfs import plan_overlay
        from rootless.sys import mount as sysmount

        step_dir = _new_dir(self.work, "step-")
        upper, workdir, merged = step_dir / "upper", step_dir / "work", step_dir / "merged"
        for d in (upper, workdir, merged):
            d.mkdir()
        lowers = [self.store.layer_dir(layer[3]) for layer in layers] or [self.empty]
        options = plan_overlay(lowers, upper, workdir, merged).options
        sysmount.mount("overlay", str(merged), "overlay", 0, options)
        try:
            yield StepFs(str(merged), UpperDir(upper))
        finally:
            sysmount.umount2(str(merged), sysmount.MNT_DETACH)
            remove_tree(step_dir)

    def stored(self, fs: StepFs, layers: Sequence[Layer]) -> None:
        pass  # the upper directory goes with the step

    @contextlib.contextmanager
    def view(self, layers: Sequence[Layer]) -> Iterator[Path]:
        from rootless.sys import mount as sysmount

        dirs = [self.store.layer_dir(layer[3]) for layer in layers]
        if len(dirs) < 2:  # overlayfs needs two lowers without an upper
            yield dirs[0] if dirs else self.empty
            return
        view = _new_dir(self.work, "view-")
        lowers = ":".join(_overlay_escape(d) for d in reversed(dirs))
        sysmount.mount(
            "overlay", str(view), "overlay", sysmount.MS_RDONLY, f"lowerdir={lowers},userxattr"
        )
        try:
            yield view
        finally:
            sysmount.umount2(str(view), sysmount.MNT_DETACH)
            view.rmdir()


@attrs.define
class _Tree:
    """A working tree and its snapshot, with the layers each holds."""

    tree: Path
    snapshot: Path
    layers: tuple[Layer, ...] = ()
    busy: bool = False


class CopyFs:
    def __init__(self, store: Store, work: Path) -> None:
        self.store = store
        self.work = work
        self.trees: list[_Tree] = []
        self.views: dict[tuple[Layer, ...], Path] = {}

    def _apply(self, layers: Sequence[Layer], *targets: Path) -> None:
        from rootless.image.rootfs import CopyLayer, materialise

        copies = [
            CopyLayer(self.store.layer_dir(x[3]), self.store.layer_info(x[3]).opaque_dirs)
            for x in layers
        ]
        for target in targets:
            materialise(copies, target)

    def _take(self, layers: tuple[Layer, ...]) -> _Tree:
        """An idle tree holding ``layers``: one holding them or fewer of them, else a new one."""
        best = None
        for t in self.trees:
            fits = not t.busy and layers[: len(t.layers)] == t.layers
            if fits and (best is None or len(t.layers) > len(best.layers)):
                best = t
        if best is None:
            best = _Tree(_new_dir(self.work, "tree-"), _new_dir(self.work, "snap-"))
            self.trees.append(best)
        self._apply(layers[len(best.layers) :], best.tree, best.snapshot)
        best.layers = layers
        best.busy = True
        return best

    def _drop(self, t: _Tree) -> None:
        from rootless.image._fsops import remove_tree

        self.trees.remove(t)
        remove_tree(t.tree)
        remove_tree(t.snapshot)

    @contextlib.contextmanager
    def step(self, layers: Sequence[Layer]) -> Iterator[StepFs]:
        t = self._take(tuple(layers))
        try:
            yield StepFs(str(t.tree), DirDiff(t.snapshot, t.tree))
        finally:
            if t.busy:  # not stored: a failed step leaves nothing to build on
                self._drop(t)

    def stored(self, fs: StepFs, layers: Sequence[Layer]) -> None:
        for t in self.trees:
            if str(t.tree) == fs.merged:
                self._apply(layers[len(t.layers) :], t.tree, t.snapshot)
                t.layers = tuple(layers)
                t.busy = False
                return

    @contextlib.contextmanager
    def view(self, layers: Sequence[Layer]) -> Iterator[Path]:
        key = tuple(layers)
        if key not in self.views:
            view = _new_dir(self.work, "view-")
            self._apply(key, view)
            self.views[key] = view
        yield self.views[key]
