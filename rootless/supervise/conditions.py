"""Whether a started container meets a dependency condition (pure, on its record).

Compose's ``depends_on`` conditions: ``service_started`` (met once it was started),
``service_healthy`` (its healthcheck passed) and ``service_completed_successfully``
(it exited 0). A condition that can no longer be met is an error that names the
container and how to see why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rootless.errors import ConfigError, ContainerStartError

if TYPE_CHECKING:
    from rootless.container.records import ContainerRecord

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")


def condition_met(record: ContainerRecord, condition: str, service: str) -> bool:
    """True when ``record`` (of ``service``) meets ``condition``, False while it may
    still; raises when it cannot anymore."""
    if condition == "service_started":
        return True
    running = record.status in ("running", "restarting")
    if condition == "service_completed_successfully":
        if running:
            return False
        if record.exit_code != 0:
            raise ContainerStartError(
                f"service {service} didn't complete successfully: container "
                f"{record.name} exited with code {record.exit_code}",
                hint=f"see its output: rootless logs {record.name}",
            )
        return True
    if not record.options.get("health"):
        raise ConfigError(
            f'service "{service}" has no healthcheck, so it can never be "service_healthy"',
            hint=f"give {service} a healthcheck, or use condition: service_started",
        )
    status = (record.health or {}).get("Status")
    if status == "healthy" and running:  # not the health its last run ended with
        return True
    if status == "unhealthy" or not running:
        why = "is unhealthy" if running else f"exited with code {record.exit_code}"
        raise ContainerStartError(
            f"dependency failed to start: container {record.name} {why}",
            hint=f"see its output and healthcheck: rootless logs {record.name}; "
            f"rootless inspect {record.name}",
        )
    return False


def not_met_in_time(record: ContainerRecord, condition: str, timeout: float) -> ContainerStartError:
    return ContainerStartError(
        f"dependency failed to start: container {record.name} is not "
        f"{condition.removeprefix('service_')} after {timeout:g} s",
        hint=f"see its output: rootless logs {record.name}",
    )


def met_word(condition: str) -> str:
    """How progress shows a met condition: Started, Healthy, Completed_successfully."""
    return condition.removeprefix("service_").capitalize()
