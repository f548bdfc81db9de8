"""What the synthetic hospital orders and measures: lab tests, panels, drugs, demographics.

Everything here is fabricated for testing. Names are obviously fake (family names such as
TESTPATIENT), social security numbers use the never-issued 999 area, addresses use the ZZ
state. LOINC codes follow CLINICAL.md; panel codes (OBR-4) are local on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.tools.feedgen.hl7 import escape, obx_body


@dataclass(frozen=True, slots=True)
class LabTest:
    code: str  # LOINC
    name: str
    unit: str
    reference_range: str
    ref_low: float
    ref_high: float
    decimals: int


def _flag(test: LabTest, value: float, critical_below: float | None = None) -> str:
    if critical_below is not None and value < critical_below:
        return "LL"
    if value < test.ref_low:
        return "L"
    if value > test.ref_high:
        return "H"
    return "N"


def render_value(test: LabTest, value: float) -> str:
    return f"{value:.{test.decimals}f}"


def result_body(
    test: LabTest,
    value: float,
    *,
    status: str = "F",
    critical_below: float | None = None,
) -> str:
    """OBX body (see `hl7.obx_body`) for a numeric (NM) result of `test`."""
    return obx_body(
        value_type="NM",
        code=test.code,
        name=test.name,
        value=render_value(test, value),
        unit=test.unit,
        reference_range=test.reference_range,
        flag=_flag(test, value, critical_below),
        status=status,
    )


SODIUM = LabTest("2951-2", "Sodium", "mmol/L", "136-145", 136, 145, 0)
POTASSIUM = LabTest("2823-3", "Potassium", "mmol/L", "3.5-5.1", 3.5, 5.1, 1)
CHLORIDE = LabTest("2075-0", "Chloride", "mmol/L", "98-107", 98, 107, 0)
CO2 = LabTest("2028-9", "Carbon dioxide, total", "mmol/L", "22-29", 22, 29, 0)
BUN = LabTest("3094-0", "Urea nitrogen", "mg/dL", "7-20", 7, 20, 0)
CREATININE = LabTest("2160-0", "Creatinine", "mg/dL", "0.6-1.3", 0.6, 1.3, 2)
GLUCOSE = LabTest("2345-7", "Glucose", "mg/dL", "70-99", 70, 99, 0)
CALCIUM = LabTest("17861-6", "Calcium", "mg/dL", "8.5-10.5", 8.5, 10.5, 1)
PROTEIN = LabTest("2885-2", "Protein, total", "g/dL", "6.0-8.3", 6.0, 8.3, 1)
ALBUMIN = LabTest("1751-7", "Albumin", "g/dL", "3.5-5.0", 3.5, 5.0, 1)
ALT = LabTest("1742-6", "Alanine aminotransferase", "U/L", "7-56", 7, 56, 0)
AST = LabTest("1920-8", "Aspartate aminotransferase", "U/L", "10-40", 10, 40, 0)
ALP = LabTest("6768-6", "Alkaline phosphatase", "U/L", "44-147", 44, 147, 0)
BILIRUBIN = LabTest("1975-2", "Bilirubin, total", "mg/dL", "0.1-1.2", 0.1, 1.2, 1)
WBC = LabTest("6690-2", "Leukocytes", "10*3/uL", "4.5-11.0", 4.5, 11.0, 1)
HEMOGLOBIN = LabTest("718-7", "Hemoglobin", "g/dL", "12.0-17.5", 12.0, 17.5, 1)
PLATELETS = LabTest("777-3", "Platelets", "10*3/uL", "150-400", 150, 400, 0)
PHOSPHATE = LabTest("2777-1", "Phosphate", "mg/dL", "2.5-4.5", 2.5, 4.5, 1)
PHOSPHATE_MOLAR = LabTest("14879-1", "Phosphate", "mmol/L", "0.81-1.45", 0.81, 1.45, 2)
MAGNESIUM = LabTest("19123-9", "Magnesium", "mg/dL", "1.7-2.2", 1.7, 2.2, 1)

# Background values are drawn from these ranges (inclusive, in steps of the last decimal).
# Calcium 8.8-10.2 and phosphate 2.8-4.5 as the brief requires. Albumin stays 3.5-4.2 so the
# albumin-corrected calcium, Ca + 0.8 * (4.0 - albumin), never drops below 8.64 (no warning).
BACKGROUND_RANGES: dict[LabTest, tuple[float, float]] = {
    SODIUM: (136, 145),
    POTASSIUM: (3.6, 5.0),
    CHLORIDE: (98, 107),
    CO2: (22, 29),
    BUN: (8, 20),
    CREATININE: (0.62, 1.25),
    GLUCOSE: (72, 160),
    CALCIUM: (8.8, 10.2),
    PROTEIN: (6.2, 8.0),
    ALBUMIN: (3.5, 4.2),
    ALT: (10, 45),
    AST: (12, 38),
    ALP: (50, 130),
    BILIRUBIN: (0.2, 1.1),
    WBC: (4.5, 11.0),
    HEMOGLOBIN: (11.0, 16.5),
    PLATELETS: (150, 400),
    PHOSPHATE: (2.8, 4.5),
    MAGNESIUM: (1.8, 2.2),
}
# Negative controls: low values in patients with no exposure (must never page).
LOW_RANGES: dict[LabTest, tuple[float, float]] = {
    CALCIUM: (6.6, 7.9),
    PHOSPHATE: (0.7, 1.9),
}


def value_grid(test: LabTest, low: float, high: float) -> list[float]:
    step = 10**-test.decimals
    count = round((high - low) / step)
    return [round(low + i * step, test.decimals) for i in range(count + 1)]


def body_table(test: LabTest, low: float, high: float) -> tuple[str, ...]:
    """Every OBX body for values low..high, so the hot loop only picks one."""
    return tuple(result_body(test, v) for v in value_grid(test, low, high))


@dataclass(frozen=True, slots=True)
class Panel:
    obr4: str  # OBR-4 universal service id (local code)
    tests: tuple[LabTest, ...]
    relevant: bool  # carries phosphate, calcium or albumin


BMP = Panel(
    "BMP^Basic metabolic panel^L",
    (SODIUM, POTASSIUM, CHLORIDE, CO2, BUN, CREATININE, GLUCOSE, CALCIUM),
    True,
)
CMP = Panel(
    "CMP^Comprehensive metabolic panel^L",
    BMP.tests + (PROTEIN, ALBUMIN, ALT, AST, ALP, BILIRUBIN),
    True,
)
CBC = Panel("CBC^Complete blood count^L", (WBC, HEMOGLOBIN, PLATELETS), False)
PHOS = Panel("PHOS^Phosphorus^L", (PHOSPHATE,), True)
MG = Panel("MG^Magnesium^L", (MAGNESIUM,), False)
ALB = Panel("ALB^Albumin^L", (ALBUMIN,), True)
PHOS_MG = Panel("PHOSMG^Phosphorus and magnesium^L", (PHOSPHATE, MAGNESIUM), True)


@dataclass(frozen=True, slots=True)
class Drug:
    ingredient: str  # what a page would name ("ferric carboxymaltose")
    drug_class: str  # "iron", "antiresorptive" or "other"
    code: str  # RXE-2.1
    text: str  # RXE-2.2 (unescaped)
    system: str  # RXE-2.3
    amount: str  # RXE-3
    units: str  # RXE-5
    form: str  # RXE-6
    route: str  # RXR-1

    @property
    def give_code(self) -> str:
        return f"{escape(self.code)}^{escape(self.text)}^{escape(self.system)}"


# RxCUIs: 1435169 / 1435174 and 993452 from CLINICAL.md (FDA data); 705875 is the Reclast
# product RxCUI in openFDA's NDC record for Reclast 5 mg/100 mL. The Venofer code is local.
FERRIC_CARBOXYMALTOSE = Drug(
    ingredient="ferric carboxymaltose",
    drug_class="iron",
    code="1435169",
    text="Ferric carboxymaltose 750 mg/15 mL",
    system="RXNORM",
    amount="750",
    units="mg",
    form="INJ",
    route="IV",
)
INJECTAFER = Drug(
    ingredient="ferric carboxymaltose",
    drug_class="iron",
    code="1435174",
    text="Injectafer 750 mg/15 mL",
    system="RXNORM",
    amount="750",
    units="mg",
    form="INJ",
    route="IV",
)
VENOFER = Drug(
    ingredient="iron sucrose",
    drug_class="iron",
    code="LF2001",
    text="Venofer (iron sucrose) 200 mg/10 mL",
    system="L",
    amount="200",
    units="mg",
    form="INJ",
    route="IV",
)
PROLIA = Drug(
    ingredient="denosumab",
    drug_class="antiresorptive",
    code="993452",
    text="Prolia 60 mg/mL",
    system="RXNORM",
    amount="60",
    units="mg",
    form="INJ",
    route="SC",
)
RECLAST = Drug(
    ingredient="zoledronic acid",
    drug_class="antiresorptive",
    code="705875",
    text="Reclast 5 mg/100 mL",
    system="RXNORM",
    amount="5",
    units="mg",
    form="INJ",
    route="IV",
)

BACKGROUND_IRON = (INJECTAFER, FERRIC_CARBOXYMALTOSE, VENOFER, VENOFER)
BACKGROUND_ANTIRESORPTIVE = (PROLIA, PROLIA, RECLAST)


def _other(code: str, text: str, amount: str, units: str, form: str, route: str) -> Drug:
    return Drug(
        ingredient=text.split(" ")[0].lower(),
        drug_class="other",
        code=code,
        text=text,
        system="L",
        amount=amount,
        units=units,
        form=form,
        route=route,
    )


# Repeats weight the draw. Ferrous sulfate (oral iron) must never count as IV iron; the
# piperacillin text exercises escaping ("&" → \T\).
OTHER_DRUGS = (
    _other("LF0101", "Ceftriaxone 1 g/50 mL", "1", "g", "INJ", "IV"),
    _other("LF0101", "Ceftriaxone 1 g/50 mL", "1", "g", "INJ", "IV"),
    _other("LF0102", "Heparin 5,000 units/mL", "5000", "U", "INJ", "SC"),
    _other("LF0102", "Heparin 5,000 units/mL", "5000", "U", "INJ", "SC"),
    _other("LF0103", "Pantoprazole 40 mg tablet", "40", "mg", "TAB", "PO"),
    _other("LF0103", "Pantoprazole 40 mg tablet", "40", "mg", "TAB", "PO"),
    _other("LF0104", "Ferrous sulfate 325 mg tablet", "325", "mg", "TAB", "PO"),
    _other("LF0104", "Ferrous sulfate 325 mg tablet", "325", "mg", "TAB", "PO"),
    _other("LF0105", "Piperacillin & tazobactam 4.5 g/100 mL", "4.5", "g", "INJ", "IV"),
    _other("LF0106", "Enoxaparin 40 mg/0.4 mL", "40", "mg", "INJ", "SC"),
    _other("LF0107", "Acetaminophen 500 mg tablet", "1000", "mg", "TAB", "PO"),
    _other("LF0108", "Vancomycin 1 g/200 mL", "1", "g", "INJ", "IV"),
    _other("LF0109", "Insulin lispro 100 units/mL", "4", "U", "INJ", "SC"),
    _other("LF0110", "Potassium chloride 20 mEq ER tablet", "20", "meq", "TAB", "PO"),
)

PROVIDERS = (
    "1234567^DOC^ALPHA^^^^^^NPI",
    "2345678^DOC^BRAVO^^^^^^NPI",
    "3456789^DOC^CHARLIE^^^^^^NPI",
    "4567890^DOC^DELTA^^^^^^NPI",
)

# Fake names. "O'TESTCASE" and "TEST&TRIAL" exercise escaping in PID-5.
FAMILY_NAMES = (
    "TESTPATIENT",
    "TESTPATIENT",
    "SYNTHETIC",
    "DEMOCASE",
    "FAKERSON",
    "O'TESTCASE",
    "TEST&TRIAL",
    "SAMPLE-DOE",
)
GIVEN_NAMES = (
    "ALPHA",
    "BRAVO",
    "CHARLIE",
    "DELTA",
    "ECHO",
    "FOXTROT",
    "GOLF",
    "HOTEL",
    "INDIA",
    "JULIETT",
    "KILO",
    "LIMA",
    "MIKE",
    "NOVEMBER",
    "OSCAR",
    "PAPA",
    "QUEBEC",
    "ROMEO",
    "SIERRA",
    "TANGO",
    "UNIFORM",
    "VICTOR",
    "WHISKEY",
    "XRAY",
    "YANKEE",
    "ZULU",
)
WARDS = ("4W", "4W", "5N", "3E", "6S", "ICU", "ONC")
SERVICES = {"4W": "MED", "5N": "MED", "3E": "SUR", "6S": "NEP", "ICU": "ICU", "ONC": "ONC"}
