"""Contracting's DependencyProviders and entrypoints that read the service's settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nameko.extensions import DependencyProvider

from shared.runtime.timers import configured_timer  # noqa: F401  (re-exported for the service)


@dataclass(frozen=True)
class ContractingSettings:
    sla_grace: timedelta
    max_backdate_days: int


class Settings(DependencyProvider):
    """The contracting settings (``shared.runtime.config``) a worker needs, read once at start-up."""

    def setup(self) -> None:
        config = self.container.config
        self.settings = ContractingSettings(
            sla_grace=timedelta(seconds=float(config.get("CONTRACTING_SLA_GRACE_SECONDS", 3600))),
            max_backdate_days=int(config.get("CONTRACTING_MAX_BACKDATE_DAYS", 31)),
        )

    def get_dependency(self, worker_ctx) -> ContractingSettings:
        return self.settings
