"""helpers/mkimage-debian: finding the host's Debian mirror in apt's sources files."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType

HELPER = Path(__file__).resolve().parents[2] / "helpers/mkimage-debian"


def load_helper() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("mkimage_debian", str(HELPER))
    spec = importlib.util.spec_from_loader("mkimage_debian", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_stanzas_give_binary_mirrors_and_their_suites() -> None:
    helper = load_helper()
    assert helper.parse_mirrors(DEB822, deb822=True) == [
        ("http://deb.debian.org/debian", ["bookworm", "bookworm-updates"]),
        ("http://deb.debian.org/debian-security", ["bookworm-security"]),
    ]


def test_one_line_format_skips_options_comments_and_deb_src() -> None:
    helper = load_helper()
    text = (
        "# deb http://old.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 trusted=yes signed-by=/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert helper.parse_mirrors(text, deb822=False) == [
        ("http://mirror.example/debian", ["bookworm"])
    ]
