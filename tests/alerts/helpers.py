"""Plain-data builders shared by the clinical-core tests (no I/O beyond reading configs/)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.catalog import DrugCatalog, LabCatalog
from alerts.model import PatientHistory, RuleConfig, StoredOrder, StoredResult
from alerts.readings import DEFAULT_THRESHOLDS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DRUGS = DrugCatalog.from_dict(tomllib.loads((CONFIGS / "drugs.toml").read_text("utf-8")))
LABS = LabCatalog.from_dict(tomllib.loads((CONFIGS / "labs.toml").read_text("utf-8")))
CONFIG = RuleConfig(thresholds=dict(DEFAULT_THRESHOLDS))

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)  # the first IV iron dose in most scenarios
PATIENT = "MRN-0001"


def days(n: float) -> timedelta:
    return timedelta(days=n)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def order(
    key: str,
    drug: str,
    at: datetime,
    control: str = "NW",
    *,
    route: str = "",
    end: datetime | None = None,
    sent: datetime | None = None,
    administered: bool = False,
    completion_status: str = "",
) -> StoredOrder:
    return StoredOrder(
        order_key=key,
        order_control=control,
        drug=drug,
        route=route,
        dose_at=at,
        end_at=end,
        message_time=sent if sent is not None else at,
        ordering_provider="DR1",
        administered=administered,
        completion_status=completion_status,
    )


def result(
    key: str,
    analyte: str,
    value: float | None,
    at: datetime,
    unit: str = "mg/dL",
    *,
    status: str = "F",
    comparator: str = "",
    specimen: str = "",
) -> StoredResult:
    return StoredResult(
        result_key=key,
        analyte=analyte,
        value=value,
        comparator=comparator,
        unit=unit,
        status=status,
        observed_at=at,
        received_at=at,
        specimen=specimen,
    )


def history(orders: list[StoredOrder], results: list[StoredResult]) -> PatientHistory:
    return PatientHistory(PATIENT, "WARD-1", tuple(orders), tuple(results))


# The standard background: FCM on T0 and Prolia 30 days before it.
IRON = order("IRON1", "ferric_carboxymaltose", T0, route="IV")
PROLIA = order("DMAB1", "denosumab_prolia", T0 - days(30), route="SC")
