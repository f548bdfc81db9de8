"""What the pure clinical core needs, built once from settings by ``service.bootstrap``."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.advisory import DEFAULT_LOOKBACK_DAYS
from alerts.catalog import DrugCatalog, LabCatalog
from alerts.model import RuleConfig
from alerts.monitoring import MonitoringConfig
from alerts.trends import DEFAULT_DROP_FRACTION
from parsers import ParserConfig

# The interaction the service watches is between these two drug classes (catalog ``class``):
# an order of either can make a patient's history matter, and a patient's results are
# evaluated only once the patient has orders of both.
IV_IRON = "iv_iron"
ANTIRESORPTIVE = "antiresorptive"
INTERACTING_CLASSES = frozenset({IV_IRON, ANTIRESORPTIVE})


@dataclass(frozen=True)
class Clinical:
    """Everything the pure core needs, built once from settings (service.bootstrap)."""

    drugs: DrugCatalog
    labs: LabCatalog
    rules: RuleConfig
    parser: ParserConfig
    history_days: int
    trend_drop_fraction: float = DEFAULT_DROP_FRACTION
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    advisory_lookback_days: int = DEFAULT_LOOKBACK_DAYS  # "in the last 30 days" before the dose
    advisory_late_days: int | None = None  # None: rules.backfill_days (CLINICAL.md, 7 days)
