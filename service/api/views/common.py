"""Small helpers every view shares: ISO times, drug names and patient identity as shown."""

from __future__ import annotations

from datetime import datetime

from alerts.identity import split_patient_key
from service.api.context import ApiContext


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def drug_name(ctx: ApiContext, key: str) -> str:
    """The catalog's display name of a drug key; the key itself when the catalog lacks it."""
    drug = ctx.clinical.drugs.get(key) if key else None
    return drug.name if drug is not None else key


def identity(key: str) -> dict[str, str]:
    """A patient key as the API shows it: PID-3.1 and the PID-3.4 that assigned it."""
    identifier, authority = split_patient_key(key)
    return {"id": identifier, "authority": authority}
