"""OBX-5 -> (value, comparator, value_text).

Rules (the clinical core only acts on results with a number):

- NM, ST, TX, FT and an empty OBX-2: the text of the first repetition, read as an optional
  comparator and a decimal number (``"1.2"``, ``"<0.5"``, ``">= 3"``); anything else gives
  value None. Feeds put numbers in ST and ``<0.5`` in NM, so all of these are read alike.
- SN (``comparator^num1^separator^num2``): a single number with an optional comparator gives
  that number (``"<^0.5"`` -> 0.5 with comparator "<"). A range or ratio (``"^1^-^3"``,
  ``"^1^:^128"``), the comparator ``<>`` or a non-numeric num1 gives value None: no single
  number says where the result lies. value_text is the SN rendered without delimiters
  (``"<0.5"``, ``"1-3"``).
- Every other type (CE, CWE, ...): value None.

value_text is otherwise the unescaped text of all repetitions, components joined by a space
and repetitions by "; " (empty components and repetitions skipped). Not by a line feed: no
returned value holds a control character (parsers.hygiene).
"""

from __future__ import annotations

import math
import re

from parsers.encoding import Delimiters, components, repetitions

_NUMBER = re.compile(r"\s*(<=|>=|<|>|=)?\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*", re.ASCII)
_SN_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*", re.ASCII)
_SN_COMPARATORS = frozenset({"", "<", ">", "<=", ">=", "="})
_TEXT_TYPES = frozenset({"", "NM", "ST", "TX", "FT"})


def parse_value(value_type: str, raw: str, d: Delimiters) -> tuple[float | None, str, str]:
    """Return ``(value, comparator, value_text)`` for OBX-2 ``value_type`` and raw OBX-5.

    Never raises: an unreadable value is value None, not an error.
    """
    if value_type in _TEXT_TYPES and raw and not _has_delimiter(raw, d):
        # The usual NM result ("9.6"): one repetition of one component, nothing escaped, so
        # value_text is the raw text and the general reading below reduces to this.
        m = _NUMBER.fullmatch(raw)
        if m is None:
            return None, "", raw
        number = float(m.group(2))
        return (number, m.group(1) or "", raw) if math.isfinite(number) else (None, "", raw)
    reps = repetitions(raw, d)
    if value_type == "SN":
        parts = components(reps[0], d) if reps else []
        parts += [""] * (4 - len(parts))
        comparator, num1, sep, num2 = (p.strip() for p in parts[:4])
        text = comparator + num1 + sep + num2
        m = _SN_NUMBER.fullmatch(num1)
        if m is None or sep or num2 or comparator not in _SN_COMPARATORS:
            return None, "", text
        number = float(m.group(1))
        return (number, comparator, text) if math.isfinite(number) else (None, "", text)
    rendered = (" ".join(p for p in components(rep, d) if p) for rep in reps)
    text = "; ".join(r for r in rendered if r)
    if value_type not in _TEXT_TYPES or not reps:
        return None, "", text
    first = " ".join(p for p in components(reps[0], d) if p)
    m = _NUMBER.fullmatch(first)
    if m is None:
        return None, "", text
    number = float(m.group(2))
    if not math.isfinite(number):  # hundreds of digits overflow to inf: not a result
        return None, "", text
    return number, m.group(1) or "", text


def _has_delimiter(raw: str, d: Delimiters) -> bool:
    return d.component in raw or d.repetition in raw or d.subcomponent in raw or d.escape in raw
