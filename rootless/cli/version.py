"""rootless version: the versions of rootless, Python and the host, like podman version."""

from __future__ import annotations

import argparse

LABELS = (("Version", "Version"), ("Python Version", "PythonVersion"),
          ("Git Commit", "GitCommit"), ("Built", "BuiltTime"), ("OS/Arch", "OsArch"),
          ("OS", "Os"), ("Kernel", "Kernel"))  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", metavar="FORMAT", help="json or a Go template")


def main(args: argparse.Namespace) -> int:
    from rootless.cli._format import render
    from rootless.hostinfo import version_info

    info = version_info()
    if not args.format:
        client = info["Client"]
        print("Client:         rootless")
        for label, key in LABELS:
            print(f"{label + ':':<16}{client[key]}")
        return 0
    if args.format.strip() == "json":
        import json

        print(json.dumps(info, indent=4))
        return 0
    print(render([info], args.format, columns=()), end="")
    return 0
