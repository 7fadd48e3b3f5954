"""Whether to verify TLS for a registry: the ``--tls-verify`` flag, else registries.conf."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rootless.image.registries_conf import RegistriesConf


def tls_verify_for(registry: str, flag: bool | None, conf: RegistriesConf | None = None) -> bool:
    """True unless plain http / unverified TLS is allowed for *registry*.

    *registry* is ``host[:port]``, or a whole ``host/repository`` name so that a
    ``[[registry]]`` with a longer prefix applies. An explicit ``--tls-verify``
    (*flag*) wins; otherwise ``insecure = true`` for the registry in *conf* (default:
    the user's and the system's registries.conf) turns verification off.
    """
    if flag is not None:
        return flag
    if conf is None:
        from rootless.image import registries_conf

        conf = registries_conf.load()
    return not conf.is_insecure(registry)
