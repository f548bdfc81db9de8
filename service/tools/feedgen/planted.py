"""Planted cases: patients in whom the interaction rule must page exactly once.

Each variant is a short clinical story on a timeline relative to the IV iron dose (day 0):
a baseline BMP (calcium clearly normal) and a CBC the day before, the antiresorptive and
ferric carboxymaltose orders, one clearly normal value of the analyte, then one low value
that pages. Nothing after it is worse, the other mineral is never low (no "double trouble"),
albumin is never sent for these patients (so corrected calcium equals measured calcium), and
no value falls in the warning band, so the expected severity at the first page is unambiguous.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from service.tools.feedgen.builder import Item, RecordBuilder
from service.tools.feedgen.catalog import (
    BACKGROUND_RANGES,
    BMP,
    CALCIUM,
    CBC,
    FERRIC_CARBOXYMALTOSE,
    HEMOGLOBIN,
    MAGNESIUM,
    PHOS_MG,
    PHOSPHATE,
    PHOSPHATE_MOLAR,
    PROLIA,
    RECLAST,
    Drug,
    LabTest,
    render_value,
    result_body,
)
from service.tools.feedgen.hl7 import PatientSegments, number_obx, obx_body
from service.tools.feedgen.model import PlantedCase

DAY = 86_400
HOUR = 3_600


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    analyte: str
    severity: str
    antiresorptive: Drug
    antiresorptive_day: float  # relative to the iron dose; positive = after the iron
    test: LabTest
    normal_value: float
    low_value: float  # numeric part as reported
    low_comparator: str  # "" (NM) or "<" (SN)
    critical_below: float | None  # in the test's unit, for the OBX-8 "LL" flag
    normal_day: float
    low_day: float
    description: str


VARIANTS: tuple[Variant, ...] = (
    Variant(
        name="phosphate-high-denosumab",
        analyte="phosphate",
        severity="high",
        antiresorptive=PROLIA,
        antiresorptive_day=-14,
        test=PHOSPHATE,
        normal_value=3.4,
        low_value=1.4,
        low_comparator="",
        critical_below=1.0,
        normal_day=6,
        low_day=14,
        description=(
            "Prolia 60 mg SC 14 days before ferric carboxymaltose 750 mg IV; phosphate 3.4 on "
            "day 6, 1.4 mg/dL on day 14 (< 2.0: high)"
        ),
    ),
    Variant(
        name="calcium-high-denosumab-after-iron",
        analyte="calcium",
        severity="high",
        antiresorptive=PROLIA,
        antiresorptive_day=3,
        test=CALCIUM,
        normal_value=9.3,
        low_value=7.6,
        low_comparator="",
        critical_below=7.0,
        normal_day=7,
        low_day=12,
        description=(
            "ferric carboxymaltose 750 mg IV, Prolia 60 mg SC 3 days later; calcium 9.3 on day 7, "
            "7.6 mg/dL on day 12 (< 8.0: high; no albumin sent)"
        ),
    ),
    Variant(
        name="phosphate-molar-denosumab",
        analyte="phosphate",
        severity="high",
        antiresorptive=PROLIA,
        antiresorptive_day=-10,
        test=PHOSPHATE_MOLAR,
        normal_value=1.10,
        low_value=0.45,
        low_comparator="",
        critical_below=0.32,
        normal_day=5,
        low_day=15,
        description=(
            "Prolia 60 mg SC 10 days before ferric carboxymaltose 750 mg IV; phosphate (14879-1) "
            "1.10 mmol/L on day 5, 0.45 mmol/L = 1.39 mg/dL on day 15 (high)"
        ),
    ),
    Variant(
        name="phosphate-sn-critical-zoledronic",
        analyte="phosphate",
        severity="critical",
        antiresorptive=RECLAST,
        antiresorptive_day=-12,
        test=PHOSPHATE,
        normal_value=3.1,
        low_value=0.5,
        low_comparator="<",
        critical_below=1.0,
        normal_day=6,
        low_day=11,
        description=(
            "Reclast 5 mg IV 12 days before ferric carboxymaltose 750 mg IV; phosphate 3.1 on "
            "day 6, SN '<^0.5' mg/dL on day 11 (< 1.0: critical)"
        ),
    ),
    Variant(
        name="calcium-critical-zoledronic",
        analyte="calcium",
        severity="critical",
        antiresorptive=RECLAST,
        antiresorptive_day=-5,
        test=CALCIUM,
        normal_value=9.1,
        low_value=6.8,
        low_comparator="",
        critical_below=7.0,
        normal_day=8,
        low_day=19,
        description=(
            "Reclast 5 mg IV 5 days before ferric carboxymaltose 750 mg IV; calcium 9.1 on day 8, "
            "6.8 mg/dL on day 19 (< 7.0: critical; no albumin sent)"
        ),
    ),
    Variant(
        name="phosphate-critical-zoledronic",
        analyte="phosphate",
        severity="critical",
        antiresorptive=RECLAST,
        antiresorptive_day=-7,
        test=PHOSPHATE,
        normal_value=3.2,
        low_value=0.8,
        low_comparator="",
        critical_below=1.0,
        normal_day=7,
        low_day=17,
        description=(
            "Reclast 5 mg IV 7 days before ferric carboxymaltose 750 mg IV; phosphate 3.2 on "
            "day 7, 0.8 mg/dL on day 17 (< 1.0: critical)"
        ),
    ),
)

LATE_DELAY_MAX = 60 * HOUR  # a late order arrives at most 2.5 days after the result


def late_order_for(index: int, late_orders: bool) -> str:
    """Which RDE of planted case `index` arrives after its low result ("" = none)."""
    if not late_orders:
        return ""
    return ("", "antiresorptive", "iron")[index % 3]


def case_extent(variant: Variant) -> tuple[int, int]:
    """(first, last) event second of a case relative to its iron dose, late order included."""
    first = min(variant.antiresorptive_day * DAY - 2 * HOUR, -22 * HOUR)
    last = variant.low_day * DAY + LATE_DELAY_MAX + 2 * HOUR
    return int(first), int(last)


def _background_body(test: LabTest, rng: random.Random) -> str:
    low, high = BACKGROUND_RANGES[test]
    step = 10**-test.decimals
    value = low + step * int(rng.random() * (round((high - low) / step) + 1))
    return result_body(test, value)


def _panel_bodies(
    tests: tuple[LabTest, ...], target: LabTest, body: str, rng: random.Random
) -> list[str]:
    return [body if t is target else _background_body(t, rng) for t in tests]


def _mineral_bodies(variant: Variant, value: float, low: bool, rng: random.Random) -> list[str]:
    test = variant.test
    if low and variant.low_comparator:
        body = obx_body(
            value_type="SN",
            code=test.code,
            name=test.name,
            value=f"{variant.low_comparator}^{render_value(test, value)}",
            unit=test.unit,
            reference_range=test.reference_range,
            flag="LL",
        )
    else:
        body = result_body(test, value, critical_below=variant.critical_below)
    if test is CALCIUM:
        return _panel_bodies(BMP.tests, CALCIUM, body, rng)
    # Phosphate with a normal magnesium (context only, never a trigger).
    return [body, _background_body(MAGNESIUM, rng)]


def plant_case(
    builder: RecordBuilder,
    *,
    index: int,
    patient: PatientSegments,
    iron_sec: int,
    late_order: str,
) -> tuple[list[Item], PlantedCase]:
    """Render every record of planted case `index` (variant index % len(VARIANTS))."""
    rng = builder.rng
    variant = VARIANTS[index % len(VARIANTS)]
    panel = BMP.obr4 if variant.test is CALCIUM else PHOS_MG.obr4
    items: list[Item] = []

    baseline = iron_sec - 22 * HOUR
    items.append(
        builder.oru(
            patient=patient,
            msg_sec=baseline + 50 * 60,
            obs_sec=baseline,
            panel=BMP.obr4,
            obx_lines=number_obx(_panel_bodies(BMP.tests, CALCIUM, result_body(CALCIUM, 9.5), rng)),
            kind="oru-relevant",
        )
    )
    # Iron-deficiency anaemia is why the iron is given: haemoglobin 8.9 (irrelevant to rules).
    cbc = [_background_body(t, rng) for t in CBC.tests]
    cbc[CBC.tests.index(HEMOGLOBIN)] = result_body(HEMOGLOBIN, 8.9)
    items.append(
        builder.oru(
            patient=patient,
            msg_sec=baseline + 40 * 60,
            obs_sec=baseline + 120,
            panel=CBC.obr4,
            obx_lines=number_obx(cbc),
            kind="oru-background",
        )
    )

    normal_obs = iron_sec + int(variant.normal_day * DAY) + int(rng.random() * 4 * HOUR)
    items.append(
        builder.oru(
            patient=patient,
            msg_sec=normal_obs + 70 * 60,
            obs_sec=normal_obs,
            panel=panel,
            obx_lines=number_obx(_mineral_bodies(variant, variant.normal_value, False, rng)),
            kind="oru-relevant",
        )
    )
    low_obs = iron_sec + int(variant.low_day * DAY)
    items.append(
        builder.oru(
            patient=patient,
            msg_sec=low_obs + 80 * 60,
            obs_sec=low_obs,
            panel=panel,
            obx_lines=number_obx(_mineral_bodies(variant, variant.low_value, True, rng)),
            kind="oru-relevant",
        )
    )
    # A late order is documented 26-60 h after the low result was drawn: later than the result
    # in feed order, but inside the 7-day limit, so it must page rather than go to the worklist.
    late_at = low_obs + 26 * HOUR + int(rng.random() * 34 * HOUR)

    iron_order = late_at if late_order == "iron" else iron_sec - 3 * HOUR
    items.append(
        builder.rde(
            patient=patient,
            order_sec=iron_order,
            dose_sec=iron_sec,
            drug=FERRIC_CARBOXYMALTOSE,
            kind="rde-iron",
        )
    )
    ar_sec = iron_sec + int(variant.antiresorptive_day * DAY)
    ar_order = late_at if late_order == "antiresorptive" else ar_sec - 2 * HOUR
    items.append(
        builder.rde(
            patient=patient,
            order_sec=ar_order,
            dose_sec=ar_sec,
            drug=variant.antiresorptive,
            kind="rde-antiresorptive",
        )
    )

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    description = variant.description
    if late_order:
        description += f"; the {late_order} order arrives after the low result"
    case = PlantedCase(
        patient_id=patient.mrn,
        analyte=variant.analyte,
        severity=variant.severity,
        iron_drug=FERRIC_CARBOXYMALTOSE.ingredient,
        antiresorptive_drug=variant.antiresorptive.ingredient,
        description=description,
        variant=variant.name,
        value=variant.low_value,
        unit=variant.test.unit,
        code=variant.test.code,
        observed_at=at(low_obs),
        iron_dose_at=at(iron_sec),
        antiresorptive_dose_at=at(ar_sec),
        late_order=late_order,
    )
    return items, case
