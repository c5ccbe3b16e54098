"""nameko's timer with its interval read from the service config, so tests and operators change it without code."""

from __future__ import annotations

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """``@configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)``: the interval is the config's
    ``setting`` (read at start-up), ``default`` when it is not set, and ``off`` stops the timer from ever firing.

    It first fires at start-up (nameko's ``eager``), then every interval: nameko's default first waits a whole
    interval, so an hourly invoice run never ran in a process restarted (deployed, rescheduled) more often than
    hourly. Every timed job here is safe to run at any moment and on several replicas at once."""

    def __init__(self, setting: str, default: float, **kwargs):
        self.setting = setting
        self.default = default
        self.disabled = False
        kwargs.setdefault("eager", True)
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        value = self.container.config.get(self.setting)
        self.disabled = str(value).strip().lower() == "off"
        if not self.disabled:
            self.interval = float(value or self.default)

    def start(self) -> None:
        if not self.disabled:
            super().start()

    def stop(self) -> None:
        if self.gt is not None:
            super().stop()

    def kill(self) -> None:
        if self.gt is not None:
            super().kill()


configured_timer = ConfiguredTimer.decorator
