"""save, load, import, export and commit through the CLI, as the unprivileged user;
interop with skopeo and podman; garbage collection keeps the layers containers mount."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import ok, podman_env, stop_podman

pytestmark = pytest.mark.kernel


def storage(rootless) -> Path:
    return rootless.data_home / "rootless" / "storage"


def inspect(rootless, image: str) -> dict:
    return json.loads(ok(rootless("image", "inspect", image)))[0]


@pytest.fixture
def rootfs_tar(busybox_rootfs: Path, tmp_path: Path) -> Path:
    (busybox_rootfs / "etc" / "motd").write_text("from the tarball\n")
    (busybox_rootfs / "etc" / "doomed").write_text("to be deleted\n")
    out = tmp_path / "rootfs.tar"
    subprocess.run(
        ["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", str(busybox_rootfs),
         "-cf", str(out), "."],
        check=True,
    )  # fmt: skip
    return out


@pytest.fixture
def imported(rootless, rootfs_tar: Path) -> str:
    """The busybox rootfs imported as localhost/base:1; its full image ID."""
    out = ok(rootless("import", "-c", 'CMD ["cat", "/etc/motd"]', str(rootfs_tar), "base:1"))
    return out.split()[-1]


def run(rootless, *args: str) -> str:
    return ok(rootless("run", "--rm", "--network", "none", *args))


# -- import ---------------------------------------------------------------------------------


def test_import_with_changes_runs(rootless, rootfs_tar):
    r = rootless(
        "import", "-c", "ENV GREETING=hi", "-c", "CMD=echo $GREETING", "-m", "first",
        str(rootfs_tar), "imp:1",
    )  # fmt: skip
    image_id = ok(r).split()[-1]
    assert len(image_id) == 64
    info = inspect(rootless, "localhost/imp:1")
    assert info["Id"] == image_id
    assert info["Config"]["Cmd"] == ["/bin/sh", "-c", "echo $GREETING"]
    assert "GREETING=hi" in info["Config"]["Env"]
    assert info["History"][-1]["comment"] == "first"
    assert run(rootless, "localhost/imp:1") == "hi\n"


def test_import_from_stdin_without_a_name(rootless, rootfs_tar):
    r = subprocess.run(
        rootless.command("import", "-"),
        stdin=open(rootfs_tar, "rb"),  # noqa: SIM115
        capture_output=True,
        env=rootless.env,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    image_id = r.stdout.decode().split()[-1]
    (info,) = json.loads(ok(rootless("images", "--format", "json")))
    assert info["Id"] == image_id and info["Dangling"]


def test_import_refuses_a_hostile_tarball(rootless, tmp_path):
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape")
        tar.addfile(info)
    r = rootless("import", str(evil), "evil:1")
    assert r.returncode == 125
    assert "Error:" in r.stderr and "escape" in r.stderr
    assert ok(rootless("images", "-q")) == ""
    assert list((storage(rootless) / "blobs" / "sha256").iterdir()) == []


# -- commit ---------------------------------------------------------------------------------


CHANGE_FILES = (
    "echo changed > /etc/motd; rm /etc/doomed; mkdir -p /data; echo x > /data/f;"
    " chown -R 1000:1000 /data"
)


def test_commit_keeps_changes_deletions_and_owners(rootless, imported):
    ok(rootless("run", "--network", "none", "--name", "c1", "localhost/base:1", "sh", "-c",
                CHANGE_FILES))  # fmt: skip
    r = rootless(
        "commit", "-c", 'CMD ["sh", "-c", "cat /etc/motd; ls /etc; stat -c %u:%g /data/f"]',
        "-m", "my change", "-a", "Ana <ana@example.org>", "c1", "committed:2",
    )  # fmt: skip
    image_id = ok(r).split()[-1]
    info = inspect(rootless, "localhost/committed:2")
    assert info["Id"] == image_id
    assert info["Author"] == "Ana <ana@example.org>"
    assert info["History"][-1]["comment"] == "my change"
    assert len(info["RootFS"]["Layers"]) == 2
    assert (
        info["RootFS"]["Layers"][0] == inspect(rootless, "localhost/base:1")["RootFS"]["Layers"][0]
    )
    assert info["ManifestType"] == "application/vnd.oci.image.manifest.v1+json"

    out = run(rootless, "localhost/committed:2").splitlines()
    assert out[0] == "changed"
    assert "doomed" not in out[1:-1] and "motd" in out[1:-1]
    assert out[-1] == "1000:1000"
    # On the host the committed layer's file belongs to a subordinate ID.
    layer = storage(rootless) / "layers" / info["RootFS"]["Layers"][1].split(":")[1] / "diff"
    assert (layer / "data" / "f").stat().st_uid >= 100000


def test_commit_docker_format_and_dangling(rootless, imported):
    ok(rootless("run", "--network", "none", "--name", "c2", "localhost/base:1", "true"))
    image_id = ok(rootless("commit", "--format", "docker", "c2")).split()[-1]
    info = inspect(rootless, image_id)
    assert info["ManifestType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert info["RepoTags"] == []


def test_commit_errors(rootless, imported):
    r = rootless("commit", "nosuch", "x:1")
    assert r.returncode == 125 and 'no container with name or ID "nosuch"' in r.stderr
    ok(rootless("create", "--network", "none", "--name", "c3", "localhost/base:1", "true"))
    r = rootless("commit", "-c", "RUN make", "c3", "x:1")
    assert r.returncode == 125 and "invalid change 'RUN make'" in r.stderr


def test_commit_of_a_rootfs_container(rootless, busybox_rootfs):
    ok(rootless("run", "--network", "none", "--name", "rc", "--rootfs", str(busybox_rootfs),
                "sh", "-c", "echo made > /made"))  # fmt: skip
    ok(rootless("commit", "-c", 'CMD ["cat", "/made"]', "rc", "fromdir:1"))
    assert run(rootless, "localhost/fromdir:1") == "made\n"


# -- export ---------------------------------------------------------------------------------


def tar_members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers()}


def test_export_shows_the_merged_files(rootless, imported, tmp_path):
    ok(rootless("run", "--network", "none", "--name", "ex", "localhost/base:1", "sh", "-c",
                CHANGE_FILES))  # fmt: skip
    out = tmp_path / "ex.tar"
    ok(rootless("export", "-o", str(out), "ex"))
    members = tar_members(out)
    assert "etc/doomed" not in members
    assert {"bin/busybox", "etc/passwd", "data/f"} <= members.keys()
    assert (members["data/f"].uid, members["data/f"].gid) == (1000, 1000)
    assert members["bin/busybox"].uid == 0
    with tarfile.open(out) as tar:
        motd = tar.extractfile(tar.getmember("etc/motd"))
        assert motd is not None and motd.read() == b"changed\n"
    # The same through stdout.
    r = subprocess.run(rootless.command("export", "ex"), capture_output=True, env=rootless.env,
                       check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    piped = tmp_path / "piped.tar"
    piped.write_bytes(r.stdout)
    assert tar_members(piped).keys() == members.keys()
    # No mount or temp dir is left behind in the container's directory.
    cid = ok(rootless("inspect", "--format", "{{.Id}}", "ex")).strip()
    cdir = rootless.data_home / "rootless" / "containers" / cid
    assert not [p for p in cdir.iterdir() if p.name.startswith("export-")]


def test_export_of_a_rootfs_container(rootless, busybox_rootfs, tmp_path):
    ok(rootless("create", "--network", "none", "--name", "rx", "--rootfs", str(busybox_rootfs),
                "true"))  # fmt: skip
    out = tmp_path / "rx.tar"
    ok(rootless("export", "-o", str(out), "rx"))
    assert {"bin/busybox", "etc/passwd"} <= tar_members(out).keys()


def on_a_terminal(rootless, *args: str) -> subprocess.CompletedProcess[bytes]:
    main, secondary = pty.openpty()
    try:
        return subprocess.run(rootless.command(*args), stdout=secondary, stdin=secondary,
                              stderr=subprocess.PIPE, env=rootless.env, check=False)  # fmt: skip
    finally:
        os.close(main)
        os.close(secondary)


def test_tars_are_never_written_to_or_read_from_a_terminal(rootless, imported):
    ok(rootless("create", "--network", "none", "--name", "tty", "localhost/base:1", "true"))
    for args, message in (
        (("save", "localhost/base:1"), b"refusing to write an image archive to a terminal"),
        (("export", "tty"), b"refusing to write a tar archive to a terminal"),
        (("load",), b"cannot read an image archive from a terminal"),
        (("import", "-"), b"cannot read a tarball from a terminal"),
    ):
        r = on_a_terminal(rootless, *args)
        assert r.returncode == 125, args
        assert message in r.stderr, r.stderr


# -- save and load --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_load_round_trip_through_pipes(rootless, imported, tmp_path, fmt):
    ok(rootless("tag", "localhost/base:1", "localhost/base:2"))
    saved = subprocess.run(
        rootless.command("save", "--format", fmt, "base:1"),
        capture_output=True, env=rootless.env, check=False,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    # Asked by one name: saved under that one only.
    ok(rootless("rmi", "-f", imported))
    assert list((storage(rootless) / "layers").iterdir()) == []
    loaded = subprocess.run(
        rootless.command("load"), input=saved.stdout, capture_output=True, env=rootless.env,
        check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.decode() == "Loaded image: localhost/base:1\n"
    info = inspect(rootless, "localhost/base:1")
    assert info["Id"] == imported
    assert info["RepoTags"] == ["localhost/base:1"]
    assert run(rootless, "localhost/base:1") == "from the tarball\n"


def test_save_several_images_to_a_file_and_load(rootless, imported, tmp_path):
    ok(rootless("run", "--network", "none", "--name", "s1", "localhost/base:1", "sh", "-c",
                "echo second > /etc/motd"))  # fmt: skip
    second = ok(rootless("commit", "s1", "second:1")).split()[-1]
    out = tmp_path / "two.tar"
    ok(rootless("save", "-o", str(out), "base:1", second[:12]))
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [m["RepoTags"] for m in manifest] == [["localhost/base:1"], ["localhost/second:1"]]
    ok(rootless("rm", "s1"))
    ok(rootless("rmi", "localhost/second:1", "localhost/base:1"))
    r = rootless("image", "load", "-i", str(out))
    assert ok(r).splitlines() == [
        "Loaded image: localhost/base:1",
        "Loaded image: localhost/second:1",
    ]
    assert run(rootless, "localhost/second:1") == "second\n"


def test_save_and_load_errors(rootless, tmp_path):
    r = rootless("save", "-o", str(tmp_path / "x.tar"), "localhost/nothing:1")
    assert r.returncode == 125 and "localhost/nothing:1: image not known" in r.stderr
    assert not (tmp_path / "x.tar").exists()
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    r = rootless("load", "-i", str(junk))
    assert r.returncode == 125 and f"cannot load {junk}: not a tar archive" in r.stderr


def test_write_errors_are_reported_not_raised(rootless, imported, tmp_path):
    r = rootless("save", "-o", str(tmp_path / "no" / "such" / "dir.tar"), "base:1")
    assert r.returncode == 125
    assert "Error: cannot write" in r.stderr and "No such file or directory" in r.stderr
    assert "Traceback" not in r.stderr
    ok(rootless("create", "--network", "none", "--name", "pipe", "localhost/base:1", "true"))
    for args in (("save", "base:1"), ("export", "pipe")):
        r = subprocess.run(
            f"{' '.join(rootless.command(*args))} | head -c 10 >/dev/null",
            shell=True, capture_output=True, text=True, env=rootless.env, check=False,
        )  # fmt: skip
        assert "Traceback" not in r.stderr and "Exception" not in r.stderr, r.stderr
        assert "Error: cannot write the archive: the reader closed the pipe" in r.stderr


def test_skopeo_reads_what_save_writes_and_load_reads_skopeo(rootless, imported, tmp_path):
    docker_tar, oci_tar = tmp_path / "d.tar", tmp_path / "o.tar"
    ok(rootless("save", "-o", str(docker_tar), "base:1"))
    ok(rootless("save", "--format", "oci-archive", "-o", str(oci_tar), "base:1"))
    for ref in (f"docker-archive:{docker_tar}", f"oci-archive:{oci_tar}"):
        info = json.loads(subprocess.run(["skopeo", "inspect", "--config", ref],
                                         capture_output=True, check=True).stdout)  # fmt: skip
        assert info["config"]["Cmd"] == ["cat", "/etc/motd"]
    copied = tmp_path / "copied.tar"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"docker-archive:{docker_tar}",
         f"oci-archive:{copied}:localhost/viaskopeo:3"],
        check=True,
    )  # fmt: skip
    before = inspect(rootless, "localhost/base:1")
    ok(rootless("rmi", "localhost/base:1"))
    assert ok(rootless("load", "-i", str(copied))) == "Loaded image: localhost/viaskopeo:3\n"
    # skopeo writes the config anew when it converts to OCI: same content, new digest.
    after = inspect(rootless, "localhost/viaskopeo:3")
    assert after["Config"] == before["Config"]
    assert after["RootFS"] == before["RootFS"]
    assert run(rootless, "localhost/viaskopeo:3") == "from the tarball\n"


def test_podman_loads_our_save_and_we_load_podmans(rootless, imported, tmp_path):
    env, short = podman_env(tmp_path)

    def podman(*args: str) -> str:
        r = subprocess.run(["podman", *args], capture_output=True, text=True, env=env,
                           check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        return r.stdout

    ours = tmp_path / "ours.tar"
    ok(rootless("save", "-o", str(ours), "base:1"))
    try:
        podman("load", "-q", "-i", str(ours))
        assert podman("image", "inspect", "--format", "{{.Id}}", "localhost/base:1").strip() == (
            imported
        )
        podman("tag", "localhost/base:1", "localhost/frompodman:7")
        theirs = tmp_path / "theirs.tar"
        podman("save", "-q", "-o", str(theirs), "localhost/frompodman:7")
    finally:
        stop_podman(env, short)
    ok(rootless("rmi", "localhost/base:1"))
    assert ok(rootless("load", "-i", str(theirs))) == "Loaded image: localhost/frompodman:7\n"
    assert inspect(rootless, "localhost/frompodman:7")["Id"] == imported
    assert run(rootless, "localhost/frompodman:7") == "from the tarball\n"


# -- gc roots ---------------------------------------------------------------------------------


def test_gc_keeps_the_layers_a_container_mounts(rootless, imported, rootfs_tar):
    """Even when the image record is gone (a removal racing a create), rmi's and prune's
    garbage collection leave the layers an existing container mounts."""
    ok(rootless("create", "--network", "none", "--name", "keeper", "localhost/base:1", "cat",
                "/etc/motd"))  # fmt: skip
    other = ok(rootless("import", "-c", "ENV OTHER=1", str(rootfs_tar), "other:1")).split()[-1]
    layers = storage(rootless) / "layers"
    kept = sorted(p.name for p in layers.iterdir())
    assert len(kept) == 1  # both images share the layer

    # A container holds its image: prune -a leaves it.
    ok(rootless("untag", "localhost/base:1"))
    assert ok(rootless("image", "prune", "-a", "-f")).split() == [other]
    assert sorted(p.name for p in layers.iterdir()) == kept

    # Now lose the image record behind the container's back.
    db = sqlite3.connect(storage(rootless) / "images.db")
    with db:
        db.execute("DELETE FROM images WHERE id = ?", (f"sha256:{imported}",))
    db.close()
    ok(rootless("import", str(rootfs_tar), "third:1"))
    ok(rootless("rmi", "localhost/third:1"))  # rmi collects garbage
    ok(rootless("image", "prune", "-a", "-f"))  # so does prune
    assert sorted(p.name for p in layers.iterdir()) == kept
    r = rootless("start", "-a", "keeper")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "from the tarball\n"

    # Once the container is gone, its layers go too.
    ok(rootless("rm", "keeper"))
    ok(rootless("image", "prune", "-a", "-f"))
    assert list(layers.iterdir()) == []
