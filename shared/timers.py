"""nameko's timer with its interval read from the service config, so tests and operators change it without code."""

from __future__ import annotations

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    """``@configured_timer("CONTRACTING_SLA_EVALUATION_INTERVAL_SECONDS", 60.0)``: the interval is the config's
    ``setting`` (read at start-up), ``default`` when it is not set."""

    def __init__(self, setting: str, default: float, **kwargs):
        self.setting = setting
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.setting) or self.default)


configured_timer = ConfiguredTimer.decorator
