"""Drug and lab catalogs: classification, unit conversion, validation of the shipped configs."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import pytest

from alerts.catalog import CatalogError, DrugCatalog, LabCatalog, UnknownUnit
from tests.alerts.helpers import CONFIGS, DRUGS, LABS


@pytest.mark.parametrize(
    ("codes", "names", "expected"),
    [
        # free text with strength and form still finds the generic (CLINICAL.md example)
        ([], ["Ferric carboxymaltose 750 mg/15 mL inj"], "ferric_carboxymaltose"),
        # brand, shouting case
        ([], ["INJECTAFER 750MG"], "ferric_carboxymaltose"),
        # brand beats generic in the same text: Xgeva's 28-day interval, not generic 210
        ([], ["XGEVA (denosumab) 120 mg/1.7 mL"], "denosumab_xgeva"),
        # brand in a second name field beats the generic in the first
        ([], ["denosumab 60 mg", "Prolia"], "denosumab_prolia"),
        # generic alone maps to the conservative long interval
        ([], ["Denosumab 60 mg/mL syringe"], "denosumab"),
        # biosimilar suffix is not a word character: still the ingredient
        ([], ["denosumab-bbdz 60 mg"], "denosumab"),
        # longest name wins: "iron isomaltoside 1000" over nothing shorter of another drug
        ([], ["Iron isomaltoside 1000 (Monofer) 100mg/mL"], "ferric_derisomaltose"),
        # multi-word names tolerate extra spaces
        ([], ["zoledronic   acid 5 mg"], "zoledronic_acid"),
        # RxNorm product code, exact
        (["1435174"], [], "ferric_carboxymaltose"),
        # ATC code, case-insensitive
        (["m05bx04"], ["something else"], "denosumab"),
        # code match wins over a name match
        (["993452"], ["Xgeva"], "denosumab_prolia"),
        # unknown code falls back to the name
        (["LOCAL123"], ["Venofer 200 mg"], "iron_sucrose"),
        # oral iron is not in the catalog
        ([], ["Ferrous sulfate 325 mg tab"], None),
        # whole words only: "prolia" inside another word does not match
        ([], ["proliant 10 mg"], None),
        # nothing at all
        ([], [], None),
        # unknown drug
        (["999"], ["paracetamol 1 g"], None),
        # corrective therapy is catalogued too
        ([], ["Potassium Phosphates 15 mmol IV"], "potassium_phosphate"),
    ],
)
def test_classify(codes: list[str], names: list[str], expected: str | None) -> None:
    assert DRUGS.classify(codes, names) == expected


def test_shipped_drug_catalog_covers_clinical_table() -> None:
    # every row of the CLINICAL.md drug table is present, in the right class
    assert set(DRUGS.keys("iv_iron")) == {
        "ferric_carboxymaltose",
        "ferric_derisomaltose",
        "iron_sucrose",
        "ferumoxytol",
        "sodium_ferric_gluconate",
        "iron_dextran",
    }
    for key in (
        "denosumab",
        "zoledronic_acid",
        "ibandronate",
        "pamidronate",
        "alendronate",
        "risedronate",
        "romosozumab",
    ):
        assert DRUGS[key].drug_class == "antiresorptive"
    assert DRUGS["denosumab_prolia"].effect_days == 210
    assert DRUGS["denosumab"].effect_days == 210  # generic: the conservative longer interval
    assert DRUGS["zoledronic_acid"].effect_days == 365
    assert DRUGS["ferric_carboxymaltose"].risk == "high"
    assert DRUGS.get("nope") is None


def _drugs() -> dict[str, Any]:
    return tomllib.loads((CONFIGS / "drugs.toml").read_text("utf-8"))


def _labs() -> dict[str, Any]:
    return tomllib.loads((CONFIGS / "labs.toml").read_text("utf-8"))


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # the example from the brief: a bad effect interval names its key
        (
            "drugs.denosumab.effect_days",
            0,
            "drugs.denosumab.effect_days: must be a positive integer",
        ),
        # a missing effect interval on a single-dose antiresorptive is an error too
        ("drugs.pamidronate.effect_days", _DELETE, "drugs.pamidronate.effect_days:"),
        # booleans are not day counts
        ("drugs.alendronate.grace_days", True, "drugs.alendronate.grace_days:"),
        # unknown class
        ("drugs.ferumoxytol.class", "iron", "drugs.ferumoxytol.class: must be one of"),
        # unknown schedule
        ("drugs.ferumoxytol.schedule", "weekly", "drugs.ferumoxytol.schedule:"),
        # names must be strings
        ("drugs.ferumoxytol.names", ["ok", 3], "drugs.ferumoxytol.names:"),
        # a name may belong to one drug only
        ("drugs.ferumoxytol.names", ["venofer"], "drugs.ferumoxytol.names: 'venofer' is already"),
        # a code may belong to one drug only
        ("drugs.iron_sucrose.codes", ["1435169"], "drugs.iron_sucrose.codes: '1435169' is already"),
        # display name required
        ("drugs.iron_dextran.name", "", "drugs.iron_dextran.name: must be a non-empty string"),
    ],
)
def test_drug_catalog_errors_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        DrugCatalog.from_dict(_set(_drugs(), path, value))
    assert str(info.value).startswith(message)


def test_drug_catalog_requires_drugs_table() -> None:
    # an empty file is an error, not an empty catalog that never alerts
    with pytest.raises(CatalogError, match=r"^drugs: must be a table"):
        DrugCatalog.from_dict({})


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # conversion factor must be a positive number
        (
            "analytes.phosphate.units.mmol/L",
            0,
            "analytes.phosphate.units.mmol/L: must be a positive",
        ),
        # a code may map to one analyte only
        ("analytes.albumin.codes", ["2777-1"], "analytes.albumin.codes: '2777-1' is already"),
        # a units table must be a table
        ("analytes.albumin.units", ["g/L"], "analytes.albumin.units: must be a table"),
        # canonical unit required
        ("analytes.calcium.canonical_unit", _DELETE, "analytes.calcium.canonical_unit:"),
    ],
)
def test_lab_catalog_errors_name_the_key(path: str, value: Any, message: str) -> None:
    data = _labs()
    if path.startswith("analytes.phosphate.units."):
        data = copy.deepcopy(data)
        data["analytes"]["phosphate"]["units"]["mmol/L"] = value
    else:
        data = _set(data, path, value)
    with pytest.raises(CatalogError) as info:
        LabCatalog.from_dict(data)
    assert str(info.value).startswith(message)


def test_lab_code_map() -> None:
    # LOINC codes from CLINICAL.md map to analyte keys, upper-case
    expected = {
        "2777-1": "phosphate",
        "14879-1": "phosphate",
        "17861-6": "calcium",
        "2000-8": "calcium",
        "1994-3": "ionized_calcium",
        "1995-0": "ionized_calcium",
        "17864-0": "ionized_calcium",
        "29265-6": "corrected_calcium",
        "1751-7": "albumin",
        "19123-9": "magnesium",
        "2601-3": "magnesium",
        "2731-8": "pth",
        "2160-0": "creatinine",
        "14682-9": "creatinine",
        "62292-8": "vitamin_d",
        "PHOS": "phosphate",
    }
    for code, analyte in expected.items():
        assert LABS.code_map[code] == analyte


@pytest.mark.parametrize(
    ("analyte", "value", "unit", "expected"),
    [
        ("phosphate", 2.0, "mg/dL", 2.0),  # canonical unit is identity
        ("phosphate", 2.0, "MG/DL", 2.0),  # case
        ("phosphate", 2.0, "mg/dl", 2.0),  # case
        ("phosphate", 2.0, "mg/100mL", 2.0),  # old spelling of a decilitre
        ("phosphate", 1.0, "mmol/L", 3.097),  # CLINICAL.md factor
        ("phosphate", 1.0, " mmol / l ", 3.097),  # spaces
        ("calcium", 2.0, "mmol/L", 8.016),  # 4.008 mg/dL per mmol/L
        ("calcium", 4.0, "mEq/L", 8.016),  # divalent: 1 mEq/L = 0.5 mmol/L
        ("ionized_calcium", 4.008, "mg/dL", 1.0),  # mass to moles
        ("ionized_calcium", 2.0, "meq/l", 1.0),  # mEq/L to mmol/L
        ("corrected_calcium", 2.0, "mmol/L", 8.016),  # 29265-6 reported in SI
        ("albumin", 35.0, "g/L", 3.5),  # 1 g/dL = 10 g/L
        ("albumin", 3.5, "G/DL", 3.5),  # case
        ("creatinine", 88.42, "µmol/L", 1.0),  # micro sign normalised
    ],
)
def test_to_canonical(analyte: str, value: float, unit: str, expected: float) -> None:
    assert LABS.to_canonical(analyte, value, unit) == pytest.approx(expected, rel=1e-3)
    assert LABS.understands(analyte, unit)


@pytest.mark.parametrize(
    ("analyte", "unit"),
    [
        ("phosphate", ""),  # a missing unit is not guessed
        ("phosphate", "mg/L"),  # plausible but not accepted
        ("albumin", "mg/dL"),  # wrong scale for albumin
        ("phosphate", "mEq/L"),  # phosphate valence is pH-dependent: not accepted
        ("potassium", "mmol/L"),  # unknown analyte
    ],
)
def test_unknown_units_raise(analyte: str, unit: str) -> None:
    assert not LABS.understands(analyte, unit)
    with pytest.raises(UnknownUnit) as info:
        LABS.to_canonical(analyte, 1.0, unit)
    assert analyte in str(info.value)


def test_canonical_units() -> None:
    # the canonical units the rule thresholds are written in
    assert LABS.canonical_unit("phosphate") == "mg/dL"
    assert LABS.canonical_unit("calcium") == "mg/dL"
    assert LABS.canonical_unit("ionized_calcium") == "mmol/L"
    assert LABS.canonical_unit("albumin") == "g/dL"
    with pytest.raises(UnknownUnit):
        LABS.canonical_unit("potassium")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        # an oral form needs a schedule
        ("drugs.ibandronate.oral_schedule", "weekly", "drugs.ibandronate.oral_schedule: must be"),
        # a single-dose oral form needs its effect interval
        ("drugs.ibandronate.oral_schedule", "single", "drugs.ibandronate.oral_effect_days:"),
        # grace days are whole days
        ("drugs.ibandronate.oral_grace_days", 1.5, "drugs.ibandronate.oral_grace_days:"),
        # with an oral form the main schedule is the parenteral one
        ("drugs.ibandronate.route", "oral", "drugs.ibandronate.route: must be parenteral"),
        # a route kind is oral or parenteral
        ("drugs.alendronate.route", "PO", "drugs.alendronate.route: must be one of"),
        # oral iron never counts, so IV iron has no oral form
        ("drugs.iron_sucrose.oral_schedule", "ongoing", "drugs.iron_sucrose.oral_schedule:"),
    ],
)
def test_oral_form_errors_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        DrugCatalog.from_dict(_set(_drugs(), path, value))
    assert str(info.value).startswith(message)


def test_ibandronate_schedule_depends_on_the_route() -> None:
    # [CLIN]: IV every 3 months; PO while the order is active + 30 days
    drug = DRUGS["ibandronate"]
    [iv] = drug.forms("parenteral")
    [po] = drug.forms("oral")
    assert (iv.schedule, iv.effect_days) == ("single", 90)
    assert (po.schedule, po.grace_days) == ("ongoing", 30)
    assert set(drug.forms("")) == {iv, po}  # unknown route: both
    assert DRUGS["alendronate"].forms("parenteral") == DRUGS["alendronate"].forms("oral")
