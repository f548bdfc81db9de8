"""The shape of ``configs/drugs.toml`` and ``configs/labs.toml``, as pydantic models.

Each entry is checked on its own here (types, ranges, choices, the rules between one drug's
fields); ``alerts.catalog`` checks what spans entries (a code or a name belongs to one drug)
while it builds the catalogs. Messages name the key path (``alerts.tables``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    model_validator,
)

from alerts.tables import key_error, one_of, said

DRUG_CLASSES = ("iv_iron", "antiresorptive", "corrective")
SCHEDULES = ("single", "ongoing")
FORMS = ("parenteral", "oral")  # the route kinds a catalog entry's schedule can belong to

PHRASES = {"model_type": "must be a table", "dict_type": "must be a table", "missing": "required"}
NonEmpty = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), said("must be a non-empty string")
]
Strings = Annotated[
    tuple[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)], ...],
    said("must be a list of non-empty strings"),
]
# Strict: ``true`` is never a number of days, 1.5 days is not whole.
PositiveNumber = Annotated[float, Strict(), Field(gt=0), said("must be a positive number")]
Days = Annotated[int, Strict(), Field(ge=0), said("must be a non-negative integer")]


class Entry(BaseModel):
    # Unknown keys are ignored, as they always were: catalogs carry notes for their readers.
    model_config = ConfigDict(extra="ignore", frozen=True)


class DrugEntry(Entry):
    drug_class: Annotated[str, AfterValidator(one_of(DRUG_CLASSES))] = Field(
        validation_alias=AliasChoices("class", "drug_class")
    )
    schedule: Annotated[str, AfterValidator(one_of(SCHEDULES))] = "single"
    name: NonEmpty
    ingredient: NonEmpty | None = None  # default: the name
    names: Strings = ()
    codes: Strings = ()
    effect_days: Days | None = None
    grace_days: Days = 0
    risk: Annotated[str, Strict(), said("must be a string")] = ""
    route: Annotated[str, AfterValidator(one_of(("", *FORMS)))] | None = None
    oral_schedule: Annotated[str, AfterValidator(one_of(SCHEDULES))] | None = None
    oral_effect_days: Days | None = None
    oral_grace_days: Days | None = None

    @model_validator(mode="after")
    def _schedules(self) -> DrugEntry:
        # Antiresorptive "single" doses need an effect interval; iron windows come from the
        # rule config, so effect_days is optional there.
        if self.schedule == "single" and self.drug_class != "iv_iron" and not self.effect_days:
            raise key_error("effect_days", "must be a positive integer")
        if not self.has_oral:
            return self
        if self.drug_class == "iv_iron":
            raise key_error("oral_schedule", "IV iron has no oral form (oral iron never counts)")
        if self.route not in (None, "parenteral"):
            raise key_error("route", "must be parenteral when an oral form is given")
        if self.oral_schedule is None:
            raise key_error("oral_schedule", "must be one of " + ", ".join(SCHEDULES))
        if self.oral_schedule == "single" and not self.oral_effect_days:
            raise key_error("oral_effect_days", "must be a positive integer")
        return self

    @property
    def has_oral(self) -> bool:
        """Whether any oral-form key is given (then the main schedule is the parenteral one)."""
        oral = (self.oral_schedule, self.oral_effect_days, self.oral_grace_days)
        return any(value is not None for value in oral)


class DrugFile(Entry):
    drugs: dict[str, DrugEntry] | None = None


class AnalyteEntry(Entry):
    canonical_unit: NonEmpty
    codes: Strings = ()
    # "spelling" = factor: value in that unit x factor = value in the canonical unit
    units: dict[str, PositiveNumber] = {}


class LabFile(Entry):
    analytes: dict[str, AnalyteEntry] | None = None
