"""Billing's settings (``shared.runtime.config``), read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from .tax import tax_table


@dataclass(frozen=True)
class BillingSettings:
    tax_rates: dict[str, tuple[str, str]]
    run_batch_size: int
    pdf_font: str | None


class Settings(DependencyProvider):
    def setup(self) -> None:
        config = self.container.config
        self.settings = BillingSettings(
            tax_rates=tax_table(config.get("BILLING_TAX_RATES")),
            run_batch_size=int(config.get("BILLING_RUN_BATCH_SIZE") or 100),
            pdf_font=config.get("BILLING_PDF_FONT") or None,
        )

    def get_dependency(self, worker_ctx) -> BillingSettings:
        return self.settings
