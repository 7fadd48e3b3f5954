"""Image configs and manifests from commits; ``--change`` parsing; commits into a real store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from rootless.errors import ConfigError, ImageError
from rootless.image import mediatypes as mt
from rootless.image.commit import (
    History,
    apply_changes,
    commit_image,
    layer_media_type,
    parse_change,
    plan_config,
    plan_manifest,
    rfc3339,
)
from rootless.image.layerdiff import WholeTree
from rootless.image.manifest import parse_config, parse_manifest
from rootless.image.store import Store

WHEN = "2024-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ('CMD ["sh", "-c", "echo"]', "CMD"),
        ("CMD=/bin/sh", "CMD"),
        ("cmd echo hi", "CMD"),
        ("ENV A=b", "ENV"),
        ("ENV=A=b", "ENV"),
        ("LABEL=k=v", "LABEL"),
        ("WORKDIR /srv", "WORKDIR"),
        ("HEALTHCHECK --interval=5s CMD true", "HEALTHCHECK"),
    ],
)
def test_parse_change_forms(text: str, keyword: str) -> None:
    assert parse_change(text).keyword == keyword


@pytest.mark.parametrize("text", ["RUN echo", "FROM x", "COPY a b", "", "NONSENSE 1"])
def test_parse_change_refuses_what_cannot_change(text: str) -> None:
    with pytest.raises(ConfigError, match="cannot be changed"):
        parse_change(text)


def test_parse_change_syntax_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid change 'USER'"):
        parse_change("USER")


def test_apply_changes_like_docker() -> None:
    base = {"Env": ["PATH=/bin", "A=old"], "Cmd": ["sh"], "WorkingDir": "/srv"}
    got = apply_changes(
        base,
        [
            "ENV A=new B=${A}-x",
            "ENV C=$PATH:/opt",
            "WORKDIR app",
            "EXPOSE 80 53/udp 8000-8001",
            "LABEL org.example=yes",
            "USER 1000:1000",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN make",
            'HEALTHCHECK --interval=5s --retries=2 CMD ["true"]',
        ],
    )
    assert got["Env"] == ["PATH=/bin", "A=new", "B=old-x", "C=/bin:/opt"]
    assert got["WorkingDir"] == "/srv/app"
    assert got["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert got["Labels"] == {"org.example": "yes"}
    assert got["User"] == "1000:1000"
    assert got["Volumes"] == {"/data": {}}
    assert got["StopSignal"] == "SIGINT"
    assert got["OnBuild"] == ["RUN make"]
    assert got["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert got["Cmd"] == ["sh"]
    assert base["Env"] == ["PATH=/bin", "A=old"]  # the input is not changed


def test_entrypoint_drops_inherited_cmd_but_not_a_new_one() -> None:
    assert apply_changes({"Cmd": ["sh"]}, ["ENTRYPOINT /app"]) == {
        "Cmd": None,
        "Entrypoint": ["/bin/sh", "-c", "/app"],
    }
    got = apply_changes({"Cmd": ["sh"]}, ['CMD ["--help"]', 'ENTRYPOINT ["/app"]'])
    assert got == {"Cmd": ["--help"], "Entrypoint": ["/app"]}


@pytest.mark.parametrize("port", ["http", "80/icmp", "0", "90-80", "70000"])
def test_bad_ports(port: str) -> None:
    with pytest.raises(ConfigError, match="invalid port"):
        apply_changes({}, [f"EXPOSE {port}"])


def test_plan_config_from_parent() -> None:
    parent = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "created": "2020-01-01T00:00:00Z",
        "container": "abc",
        "container_config": {"Cmd": ["old"]},
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64]},
        "history": [{"created_by": "base"}],
        "custom": {"kept": True},
    }
    doc = plan_config(
        parent,
        diff_id="sha256:" + "2" * 64,
        changes=["CMD echo"],
        history=History("RUN echo", comment="c", author="me"),
        created=WHEN,
    )
    assert doc["architecture"] == "arm64" and doc["variant"] == "v8"
    assert "container" not in doc and "container_config" not in doc
    assert doc["custom"] == {"kept": True}
    assert doc["created"] == WHEN and doc["author"] == "me"
    assert doc["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    assert doc["history"][-1] == {
        "created": WHEN,
        "created_by": "RUN echo",
        "author": "me",
        "comment": "c",
    }
    assert doc["config"]["Cmd"] == ["/bin/sh", "-c", "echo"]
    assert parent["rootfs"]["diff_ids"] == ["sha256:" + "1" * 64]  # type: ignore[index]
    parsed = parse_config(json.dumps(doc).encode())
    assert len(parsed.diff_ids) == 2


def test_plan_config_metadata_only_and_fresh() -> None:
    doc = plan_config(None, diff_id=None, changes=["ENV A=b"], created=WHEN)
    assert doc["os"] == "linux" and doc["architecture"]
    assert doc["rootfs"] == {"type": "layers", "diff_ids": []}
    assert doc["history"] == [{"created": WHEN, "empty_layer": True}]
    assert doc["config"] == {"Env": ["A=b"]}


def test_manifests_in_both_formats() -> None:
    config = b"{}"
    layers = [(mt.OCI_LAYER_GZIP, "sha256:" + "a" * 64, 10)]
    oci: Any = json.loads(plan_manifest(config, "sha256:" + "c" * 64, layers, "oci"))
    docker: Any = json.loads(plan_manifest(config, "sha256:" + "c" * 64, layers, "docker"))
    assert oci["mediaType"] == mt.OCI_MANIFEST and oci["config"]["mediaType"] == mt.OCI_CONFIG
    assert docker["mediaType"] == mt.DOCKER_MANIFEST
    assert docker["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert docker["layers"][0]["mediaType"] == mt.DOCKER_LAYER_GZIP
    assert oci["config"]["size"] == 2
    for doc in (oci, docker):
        parse_manifest(json.dumps(doc).encode())


def test_layer_media_types() -> None:
    assert layer_media_type(mt.DOCKER_LAYER_GZIP, "oci") == mt.OCI_LAYER_GZIP
    assert layer_media_type(mt.OCI_LAYER_ZSTD, "oci") == mt.OCI_LAYER_ZSTD
    with pytest.raises(ImageError, match="Docker schema 2 manifest with a zstd"):
        layer_media_type(mt.OCI_LAYER_ZSTD, "docker")


def test_rfc3339() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)
    assert rfc3339(when) == "2024-01-02T03:04:05.120000Z"


def test_commit_into_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin/hello").write_text("#!/bin/sh\necho hello\n")
    when = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    base = commit_image(
        store,
        parent=None,
        layer=WholeTree(root),
        changes=['CMD ["/bin/hello"]'],
        history=History("import"),
        names=["localhost/base:1"],
        created=when,
    )
    assert base.names == ("localhost/base:1",)
    assert (store.layer_dir(base.layers[0].diff_id) / "bin/hello").read_text().endswith("hello\n")
    child = commit_image(
        store, parent=base, changes=["ENV X=1"], fmt="docker", names=["localhost/child:1"]
    )
    assert child.manifest_media_type == mt.DOCKER_MANIFEST
    assert [x.digest for x in child.layers] == [x.digest for x in base.layers]
    assert child.layers[0].media_type == mt.DOCKER_LAYER_GZIP
    config = store.image_config(child)
    assert config.config.cmd == ("/bin/hello",)
    assert config.config.env == ("X=1",)
    assert [h.empty_layer for h in config.history] == [False, True]
    # The same tree and time give the same image: commits are reproducible.
    again = commit_image(
        store, parent=None, layer=WholeTree(root), changes=['CMD ["/bin/hello"]'],
        history=History("import"), created=when,
    )  # fmt: skip
    assert again.id == base.id
    zstd = commit_image(store, parent=base, layer=WholeTree(root), compression="zstd")
    assert zstd.layers[-1].media_type == mt.OCI_LAYER_ZSTD
    with pytest.raises(ImageError, match="Docker schema 2"):
        commit_image(store, parent=zstd, fmt="docker")
    assert list((store.root / "tmp").iterdir()) == []
