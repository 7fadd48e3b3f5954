"""Kubernetes probes <-> the engine's healthcheck (pure).

A container has one healthcheck, so the first ``exec`` probe of liveness,
readiness and startup becomes it: ``periodSeconds`` is the interval,
``timeoutSeconds`` the timeout, ``failureThreshold`` the retries and
``initialDelaySeconds`` the start period (Kubernetes' defaults: 10s, 1s, 3, 0).
As in Kubernetes, a failing liveness probe restarts the container.
``httpGet``, ``tcpSocket`` and ``grpc`` probes would need a client inside the
image, so they are warned about and not run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rootless.compose.source import KeyPath
from rootless.kube.reader import Doc

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_PROBE = (
    "exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "periodSeconds",
    "timeoutSeconds", "failureThreshold", "successThreshold", "terminationGracePeriodSeconds",
)  # fmt: skip
_DEFAULTS = {"periodSeconds": 10, "timeoutSeconds": 1, "failureThreshold": 3}


def health_extra(doc: Doc, container: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
    """The run options (``RunOptions.extra``) for the container's probes: the
    ``--health-*`` flags, and ``--health-on-failure=restart`` when they come from a
    liveness probe (a failing one restarts the container, as in Kubernetes)."""
    chosen: dict[str, Any] | None = None
    liveness = False
    for key in PROBES:
        ppath = (*path, key)
        probe = doc.mapping(container.get(key), ppath, _PROBE)
        if not probe:
            continue
        handler = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if k in probe]
        if handler != ["exec"]:
            what = " and ".join(handler) or "no handler"
            doc.warn(ppath, f"{what} probes are not run by kube play (only exec), ignored")
            continue
        if chosen is not None:
            doc.warn(ppath, "a container has one healthcheck, made from its first exec probe; "
                     "this one is ignored")  # fmt: skip
            continue
        chosen = _flags(doc, probe, ppath)
        liveness = key == "livenessProbe"
    if chosen is None:
        return {}
    return {"health_flags": chosen, **({"health_on_failure": "restart"} if liveness else {})}


def _flags(doc: Doc, probe: Mapping[str, Any], path: KeyPath) -> dict[str, Any]:
    epath = (*path, "exec")
    command = doc.strings(doc.mapping(probe["exec"], epath, ("command",)).get("command"),
                          (*epath, "command"))  # fmt: skip
    if not command:
        raise doc.error((*epath, "command"), "an exec probe needs a command")
    seconds = {
        key: doc.integer(probe.get(key, default), (*path, key), low=1)
        for key, default in _DEFAULTS.items()
    }
    delay = doc.integer(probe.get("initialDelaySeconds", 0), (*path, "initialDelaySeconds"))
    if probe.get("successThreshold", 1) != 1:
        doc.warn((*path, "successThreshold"), "only 1 is supported, read as 1")
    return {
        "cmd": json.dumps(["CMD", *command]),
        "interval": f"{seconds['periodSeconds']}s",
        "timeout": f"{seconds['timeoutSeconds']}s",
        "retries": seconds["failureThreshold"],
        "start_period": f"{delay}s" if delay else None,
        "disabled": False,
    }


def liveness_probe(health: Mapping[str, Any]) -> dict[str, Any]:
    """The ``livenessProbe`` for a stored healthcheck (``HealthConfig.to_json()``)."""
    test = list(health["Test"])
    command = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    probe: dict[str, Any] = {"exec": {"command": command}}
    for key, field in (("periodSeconds", "Interval"), ("timeoutSeconds", "Timeout")):
        probe[key] = max(1, math.ceil(int(health.get(field) or 0) / 1e9))
    if health.get("StartPeriod"):
        probe["initialDelaySeconds"] = math.ceil(int(health["StartPeriod"]) / 1e9)
    probe["failureThreshold"] = max(1, int(health.get("Retries") or 1))
    return probe
