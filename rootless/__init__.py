"""rootless: a rootless, daemonless OCI container engine."""

__version__ = "0.1.0"
