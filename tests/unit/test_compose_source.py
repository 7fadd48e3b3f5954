from __future__ import annotations

import pytest

from rootless.compose.merge import merge_sources
from rootless.compose.source import RESET, Override, dotted, error_at, parse_yaml
from rootless.errors import ConfigError


def test_locations_point_at_keys_and_items():
    src = parse_yaml(
        "services:\n  web:\n    image: x\n    ports:\n      - '80:80'\n      - 81\n", "c.yaml"
    )
    lines = {dotted(p): w.line for p, w in src.locations.items()}
    assert lines["services"] == 1
    assert lines["services.web"] == 2
    assert lines["services.web.image"] == 3
    assert lines["services.web.ports"] == 4
    assert lines["services.web.ports[0]"] == 5
    assert lines["services.web.ports[1]"] == 6


def test_error_prefix_falls_back_to_the_nearest_known_key():
    src = parse_yaml("services:\n  web:\n    environment: [A=1]\n", "c.yaml")
    err = error_at(src.locations, ("services", "web", "environment", "A"), "bad")
    assert err.message == "c.yaml:3: services.web.environment.A: bad"


def test_yaml_1_2_scalars():
    src = parse_yaml("a: 22:22\nb: yes\nc: on\nd: true\ne: 10\nf: 1.5\ng: null\n", "c.yaml")
    assert src.data == {
        "a": "22:22",
        "b": "yes",
        "c": "on",
        "d": True,
        "e": 10,
        "f": 1.5,
        "g": None,
    }


def test_anchors_and_merge_keys():
    src = parse_yaml(
        "x-base: &b\n  image: busybox\n  init: true\nservices:\n  a:\n    <<: *b\n    init: false\n",  # noqa: E501
        "c.yaml",
    )
    assert src.data["services"]["a"] == {"image": "busybox", "init": False}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "services:\n  a: [\n",
            "c.yaml:3: invalid YAML: expected the node content, but found '<stream end>'",
        ),
        ("a: 1\na: 2\n", "c.yaml:2: a: duplicate key"),
        ("- 1\n- 2\n", "c.yaml:1: the top level must be a mapping of keys (services: ...)"),
        (
            "a: !!python/object:os.system 1\n",
            "c.yaml:1: invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",  # noqa: E501
        ),
    ],
)
def test_errors(text, message):
    with pytest.raises(ConfigError) as e:
        parse_yaml(text, "c.yaml")
    assert e.value.message == message


def test_reset_and_override_tags():
    src = parse_yaml("a: !reset null\nb: !override [1]\nc: !override 5\n", "c.yaml")
    assert src.data == {"a": RESET, "b": Override([1]), "c": Override(5)}


def _merge(*texts):
    return merge_sources([parse_yaml(t, f"f{i}.yaml") for i, t in enumerate(texts)])


def test_merge_rules():
    base = """
services:
  web:
    image: a
    command: [one, two]
    environment: [A=1, B=2]
    labels: {x: "1"}
    ports: ["80:80"]
    cap_add: [NET_ADMIN]
    volumes: ["./a:/data", "logs:/logs"]
    depends_on: [db]
    build: ./ctx
    healthcheck: {test: [CMD, a], interval: 5s}
  db: {image: db}
"""
    override = """
services:
  web:
    image: b
    command: [three]
    environment: {B: "20", C: "3"}
    labels: [y=2]
    ports: ["80:80", "443:443"]
    cap_add: [NET_ADMIN, SYS_TIME]
    volumes: ["./b:/data"]
    depends_on: {cache: {condition: service_healthy}}
    build: {dockerfile: Other, args: [V=1]}
    healthcheck: {test: [CMD, b]}
  cache: {image: cache}
"""
    web = _merge(base, override).data["services"]["web"]
    assert web["image"] == "b"
    assert web["command"] == ["three"]
    assert web["environment"] == {"A": "1", "B": "20", "C": "3"}
    assert web["labels"] == {"x": "1", "y": "2"}
    assert web["ports"] == ["80:80", "443:443"]
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]
    assert web["volumes"] == ["./b:/data", "logs:/logs"]
    assert web["depends_on"] == {"db": None, "cache": {"condition": "service_healthy"}}
    assert web["build"] == {"context": "./ctx", "dockerfile": "Other", "args": ["V=1"]}
    assert web["healthcheck"] == {"test": ["CMD", "b"], "interval": "5s"}


def test_merge_reset_and_override():
    merged = _merge(
        "services:\n  web:\n    image: a\n    ports: ['80:80']\n    environment: {A: '1'}\n  old: {image: o}\n",  # noqa: E501
        "services:\n  web:\n    ports: !reset []\n    environment: !override {B: '2'}\n  old: !reset\n",  # noqa: E501
    )
    assert merged.data["services"] == {"web": {"image": "a", "environment": {"B": "2"}}}


def test_merged_locations_follow_the_last_file():
    merged = _merge(
        "services:\n  web:\n    image: a\n    ports: ['80:80']\n",
        "\n\nservices:\n  web:\n    image: b\n    ports: ['81:81']\n",
    )
    at = merged.locations
    assert (at[("services", "web", "image")].file, at[("services", "web", "image")].line) == (
        "f1.yaml",
        5,
    )
    # concatenated lists point at their key in the last file, not at a wrong item
    assert ("services", "web", "ports", 0) not in at
    assert error_at(at, ("services", "web", "ports", 1), "bad").message == (
        "f1.yaml:6: services.web.ports[1]: bad"
    )
