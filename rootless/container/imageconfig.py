"""Docker's rules for combining an image's config with what the user asked (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from rootless.errors import ConfigError


def plan_command(
    image_entrypoint: Sequence[str] | None,
    image_cmd: Sequence[str] | None,
    *,
    entrypoint: str | None = None,
    args: Sequence[str] = (),
) -> tuple[str, ...]:
    """The container's argv.

    - ``--entrypoint X`` replaces the image's ENTRYPOINT and drops its CMD
      (``--entrypoint ""`` clears it); arguments after the image replace CMD.
    - The result is ENTRYPOINT + CMD; empty is an error naming the fix.
    """
    if entrypoint is not None:
        ep: tuple[str, ...] = (entrypoint,) if entrypoint else ()
        cmd: tuple[str, ...] = tuple(args)
    else:
        ep = tuple(image_entrypoint or ())
        cmd = tuple(args) if args else tuple(image_cmd or ())
    argv = ep + cmd
    if not argv:
        raise ConfigError(
            "no command specified: the image has no ENTRYPOINT or CMD",
            hint="give a command after the image name, or --entrypoint",
        )
    return argv


def merge_env(
    image_env: Sequence[str], user_env: Sequence[tuple[str, str]]
) -> tuple[tuple[str, str], ...]:
    """The image's ENV first, the user's -e/--env-file values winning."""
    merged: dict[str, str] = {}
    for item in image_env:
        key, _, value = item.partition("=")
        if key:
            merged[key] = value
    merged.update(dict(user_env))
    return tuple(merged.items())
