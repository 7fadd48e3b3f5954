"""Supervision of running containers: logs, restart policies, healthchecks.

The pure building blocks live here (``logfile``, ``policy``, ``health``); the
supervisor that owns a container's processes uses them and does the I/O.
"""
