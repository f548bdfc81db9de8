"""Clinical core (pure rules) and paging adapters of LabSentinel."""

from alerts.catalog import CatalogError, Drug, DrugCatalog, LabCatalog, UnknownUnit
from alerts.dedup import dedup_key
from alerts.exposures import derive_exposures
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient

__all__ = [
    "CatalogError",
    "Drug",
    "DrugCatalog",
    "LabCatalog",
    "UnknownUnit",
    "dedup_key",
    "derive_exposures",
    "evaluate_patient",
    "plan_notifications",
]
