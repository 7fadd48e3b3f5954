"""Layer unpack throughput on a Debian-like layer (about 7,000 entries, 200 MB).

Builds the layer once from this machine's /usr (cached in the temp dir), then
unpacks it with rootless and with GNU tar into the same file system, cold
(fresh directory) each round, and prints times and the ratio.

    python tests/bench/bench_unpack.py [--dir DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rootless.image._fsops import remove_tree
from rootless.image.unpack import unpack_layer

ENTRIES = 7000
BYTES = 200 << 20


def build_layer(path: Path) -> None:
    total = count = 0
    with tarfile.open(path.with_suffix(""), "w", format=tarfile.PAX_FORMAT) as tf:
        for root, dirs, files in os.walk("/usr"):
            dirs.sort()
            for name in [".", *sorted(files)]:
                full = os.path.normpath(os.path.join(root, name))
                st = os.lstat(full)
                if os.path.isfile(full) and not os.path.islink(full):
                    if total + st.st_size > BYTES or not os.access(full, os.R_OK):
                        continue
                    total += st.st_size
                tf.add(full, arcname=full.lstrip("/"), recursive=False)
                count += 1
                if count >= ENTRIES:
                    break
            if count >= ENTRIES:
                break
    with open(path.with_suffix(""), "rb") as src, gzip.open(path, "wb", 6) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    path.with_suffix("").unlink()


def _r(times: list[float]) -> list[float]:
    return [round(t, 2) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    layer = Path(tempfile.gettempdir()) / f"rootless-bench-layer-{os.getuid()}.tar.gz"
    if not layer.exists():
        build_layer(layer)
    work = Path(tempfile.mkdtemp(prefix="rootless-bench-unpack-", dir=args.dir))
    try:
        ours, theirs = [], []
        for i in range(args.rounds):
            dest = work / f"r{i}"
            dest.mkdir()
            t = time.perf_counter()
            with open(layer, "rb") as src:
                info = unpack_layer(src, dest)
            ours.append(time.perf_counter() - t)
            remove_tree(dest)
            dest.mkdir()
            t = time.perf_counter()
            subprocess.run(["tar", "-xzf", str(layer), "-C", str(dest)], check=True)
            theirs.append(time.perf_counter() - t)
            remove_tree(dest)
        mb = info.size / 1e6
        gz = layer.stat().st_size / 1e6
        print(f"layer: {info.entries} entries, {mb:.0f} MB unpacked, {gz:.0f} MB gzip")
        best = min(ours)
        print(f"rootless unpack: best {best:.2f}s ({mb / best:.0f} MB/s), all {_r(ours)}")
        print(f"GNU tar -xzf:    best {min(theirs):.2f}s, all {_r(theirs)}")
        print(f"ratio rootless/tar: {min(ours) / min(theirs):.2f}")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    main()
