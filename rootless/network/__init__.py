"""User-mode networking for containers (docs/networking.md).

Modules, each imported where needed so the CLI's start stays light:

* ``mode``: parse ``--network`` values (pure)
* ``ports``: parse ``-p``/``-P``, choose and check host ports
* ``etcfiles``: /etc/hosts, /etc/resolv.conf, /etc/hostname contents (pure);
  ``hostfacts`` reads what they need from the host
* ``slirp``, ``pasta``: start a helper for a container's namespace; both return a
  ``helper.NetworkHelper``
"""
