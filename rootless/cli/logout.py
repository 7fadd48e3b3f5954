"""rootless logout: forget the credentials saved for a registry (or for all of them)."""

from __future__ import annotations

import argparse

from rootless.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="forget every registry's credentials")
    p.add_argument(
        "--authfile",
        metavar="FILE",
        help="credentials file (default: $REGISTRY_AUTH_FILE, else "
        "$XDG_RUNTIME_DIR/containers/auth.json)",
    )
    p.add_argument("registry", nargs="?", metavar="REGISTRY", help="host[:port][/namespace]")


def main(args: argparse.Namespace) -> int:
    from rootless.registry import AuthFiles, logout

    if args.all == (args.registry is not None):
        raise ConfigError(
            "cannot log out: give either a REGISTRY or --all",
            hint="e.g. rootless logout quay.io",
        )
    files = AuthFiles.only(args.authfile) if args.authfile else AuthFiles.from_env()
    logout(args.registry, auth_files=files)
    print(f"Removed login credentials for {args.registry or 'all registries'}")
    return 0
