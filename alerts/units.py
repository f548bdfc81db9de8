"""Spelling-normalisation of laboratory units (OBX-6), so one table of factors covers them all.

Units arrive as ``mg/dL``, ``MG/DL``, ``mg/dl``, ``mg / dL``, ``mg/100mL``, ``mmol/L``, ``mmol/l``,
``µmol/L``... (CLINICAL.md "Laboratory codes"). ``normalise_unit`` maps every spelling of one unit
to one key; the lab catalog stores its factors under those keys. Pure and fast: no I/O.
"""

from __future__ import annotations

import re

_SPACES = re.compile(r"\s+")

# Equivalent spellings after lower-casing and removing spaces. "100ml" is a decilitre
# ("mg/100mL" is mg/dL, as old reports write it); "µ", "μ" (micro sign / Greek mu) and "mc" are "u".
_ALIASES = {
    "mg/100ml": "mg/dl",
    "mg%": "mg/dl",
    "g/100ml": "g/dl",
    "mmol/litre": "mmol/l",
    "mmol/liter": "mmol/l",
    "ug/l": "ng/ml",  # 1 µg/L = 1 ng/mL
    "ng/l": "pg/ml",  # 1 ng/L = 1 pg/mL
}


def normalise_unit(unit: str) -> str:
    """Return the canonical spelling key of ``unit`` ("" stays "").

    Case and white space are ignored; UCUM-style brackets and a trailing "." are dropped.
    The result is only a lookup key, never shown to people.
    """
    text = _SPACES.sub("", unit).lower().strip(".")
    text = text.replace("[", "").replace("]", "")
    text = text.replace("µ", "u").replace("μ", "u").replace("mcmol", "umol").replace("mcg", "ug")
    return _ALIASES.get(text, text)
