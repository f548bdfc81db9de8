"""Plain data the clinical core works on: a patient's stored history in, findings out.

The service loads a ``PatientHistory`` from the database, calls the pure functions of
``alerts.rules`` with an explicit ``now``, and stores what they return. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

RULE_INTERACTION = "iron-antiresorptive-mineral"

ANALYTE_PHOSPHATE = "phosphate"
ANALYTE_CALCIUM = "calcium"
ANALYTE_IONIZED_CALCIUM = "ionized_calcium"
ANALYTE_CORRECTED_CALCIUM = "corrected_calcium"  # a lab-reported albumin-corrected calcium
ANALYTE_ALBUMIN = "albumin"
TRIGGER_ANALYTES = (ANALYTE_PHOSPHATE, ANALYTE_CALCIUM, ANALYTE_IONIZED_CALCIUM)


class Severity(IntEnum):
    """Ordered so that max() picks the worst; the names are what pages and metrics show."""

    INFO = 0
    WARNING = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        return cls[text.upper()]


@dataclass(frozen=True)
class Thresholds:
    """Lower limits in the analyte's canonical unit: a value below ``high`` pages."""

    unit: str  # canonical unit: "mg/dL" for phosphate and calcium, "mmol/L" for ionized calcium
    warning: float
    high: float
    critical: float


@dataclass(frozen=True)
class RuleConfig:
    """Clinical knobs of the interaction rule; defaults and their sources live in configs/."""

    iron_window_days: int = 28
    thresholds: dict[str, Thresholds] = field(default_factory=dict)  # keyed by trigger analyte
    albumin_pairing_hours: int = 48
    double_trouble_hours: int = 72
    backfill_days: int = 7  # results older than this when processed go to the worklist
    counted_statuses: tuple[str, ...] = ("F", "C", "U")  # OBX-11 values that may alert
    parenteral_routes: tuple[str, ...] = ("IV", "IVP", "IVPB", "IVF", "INTRAVENOUS", "IVPUSH")


@dataclass(frozen=True)
class StoredOrder:
    """One stored pharmacy order message for a catalogued drug (an RDE, or later an RAS).

    All messages of one order share ``order_key``; the rules replay them in ``message_time``
    order to derive what was actually given (new, replaced, cancelled, discontinued).
    """

    order_key: str  # placer order id, else filler order id, else the message control id
    order_control: str  # ORC-1
    drug: str  # drug catalog key
    route: str
    dose_at: datetime
    end_at: datetime | None
    message_time: datetime  # MSH-7 (else dose_at): orders of one key are applied in this order
    ordering_provider: str = ""
    administered: bool = False  # True for an RAS administration (a dose that really happened)
    completion_status: str = ""  # RXA-20 of an administration: NA (not given), RE (refused), ...


@dataclass(frozen=True)
class StoredResult:
    """The current version of one result (corrections replace earlier versions)."""

    result_key: str  # stable identity across corrections: order id + code (+ time if no order)
    analyte: str
    value: float | None
    comparator: str
    unit: str
    status: str
    observed_at: datetime
    received_at: datetime  # processing time when this version was stored
    reference_range: str = ""
    code: str = ""
    specimen: str = ""  # the OBR it was reported in (filler, else placer order id); "" if none


@dataclass(frozen=True)
class PatientHistory:
    patient_id: str
    location: str
    orders: tuple[StoredOrder, ...]
    results: tuple[StoredResult, ...]


@dataclass(frozen=True)
class Exposure:
    """A dose (iron) or an effect interval (antiresorptive) derived from the orders."""

    drug: str  # catalog key
    drug_class: str  # "iv_iron" | "antiresorptive" | "corrective"
    start: datetime  # dose time (iron) / start of effect (antiresorptive)
    end: datetime  # iron: end of its risk window; antiresorptive: end of effect interval
    order_key: str
    ordering_provider: str = ""


@dataclass(frozen=True)
class Finding:
    """One alert's current state, as the rule sees it from the whole stored history.

    The dedup key identifies patient, rule, analyte and iron episode; re-evaluating the same
    history yields the same findings with the same keys.
    """

    rule: str
    dedup_key: str
    patient_id: str
    analyte: str  # trigger analyte
    severity: Severity
    result: StoredResult  # the worst qualifying result (lowest value in canonical unit)
    value_canonical: float  # that result in the canonical unit (albumin-corrected if applied)
    corrected_for_albumin: bool
    iron: Exposure  # latest dose whose window holds the result, with an antiresorptive overlap
    episode_start: datetime  # first dose of the iron episode
    days_since_iron: int
    antiresorptive: Exposure
    backfilled: bool  # every qualifying result was older than backfill_days when processed
    double_trouble: bool = False  # severity raised one tier because both minerals were low


@dataclass(frozen=True)
class AlertState:
    """What the database remembers of an alert, for deciding whether to notify again."""

    dedup_key: str
    severity: Severity
    value_canonical: float
    status: str  # "open" | "resolved" | "worklist"


@dataclass(frozen=True)
class NotificationPlan:
    """What to tell people about one alert after an evaluation: one of DESIGN.md's events."""

    event: str  # "alert" | "update" | "resolved"
    finding: Finding | None  # None only for "resolved" when no finding remains
    dedup_key: str
