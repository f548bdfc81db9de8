"""Field-by-field comparison of parse_message output with the hl7apy oracle."""

from __future__ import annotations

import re
from typing import Any

from parsers import Ignored, LabReport, ParsedMessage, ParserConfig, PharmacyOrder
from tests.parsers import oracle


def assert_matches_oracle(text: str, parsed: ParsedMessage, config: ParserConfig) -> Any:
    """Parse ``text`` with hl7apy and assert every extracted field equals ``parsed``'s: every
    result or order of every group, in message order, and every rejected item.

    Returns the hl7apy message for further checks.
    """
    m = oracle.oracle_parse(text)
    assert parsed.header._asdict() == oracle.expected_header(m, config)
    kind = parsed.header.message_type
    if isinstance(parsed, Ignored):
        if kind == "ORU^R01":
            assert parsed.reason == "no catalogued analyte"
            assert oracle.expected_results(m, config) == ([], [])
        elif kind.startswith("RDE"):
            assert parsed.reason == "drug not in catalog"
            assert oracle.expected_orders(m, config)[:2] == ([], [])
        elif kind == "RAS^O17":
            assert parsed.reason == "drug not in catalog"
            assert oracle.expected_administrations(m, config)[:2] == ([], [])
        return m
    assert parsed.patient._asdict() == oracle.expected_patient(m, config)
    if isinstance(parsed, LabReport):
        expected, rejected = oracle.expected_results(m, config)
        assert [tuple(r) for r in parsed.rejected] == rejected
        assert len(parsed.results) == len(expected)
        for got, want in zip(parsed.results, expected, strict=True):
            for key, value in want.items():
                if key == "obx5":
                    assert _value_reading(got.value_type, value) == (
                        got.value,
                        got.comparator,
                        got.value_text,
                    )
                else:
                    assert getattr(got, key) == value, key
    elif isinstance(parsed, PharmacyOrder):
        if kind == "RAS^O17":
            orders, rejected, _ = oracle.expected_administrations(m, config)
        else:
            orders, rejected, _ = oracle.expected_orders(m, config)
        assert [tuple(r) for r in parsed.rejected] == rejected
        assert [o._asdict() for o in parsed.orders] == orders
    return m


_NUMBER = re.compile(r"\s*(<=|>=|<|>|=)?\s*([+-]?(\d+\.?\d*|\.\d+))\s*", re.ASCII)


def _value_reading(value_type: str, reps: list[list[str]]) -> tuple[float | None, str, str]:
    """The documented OBX-5 reading (parsers/values.py), written out again over the
    repetitions and components hl7apy found (only the first four components are generated)."""
    if value_type == "SN":
        c1, c2, c3, c4 = (c.strip() for c in (reps[0] if reps else ["", "", "", ""]))
        text = c1 + c2 + c3 + c4
        m = _NUMBER.fullmatch(c2)
        if c3 or c4 or m is None or m.group(1) or c1 not in ("", "<", ">", "<=", ">=", "="):
            return None, "", text
        return float(m.group(2)), c1, text
    rendered = [" ".join(c for c in rep if c) for rep in reps]
    text = "; ".join(r for r in rendered if r)
    if value_type not in ("", "NM", "ST", "TX", "FT") or not reps:
        return None, "", text
    m = _NUMBER.fullmatch(rendered[0])
    if m is None:
        return None, "", text
    return float(m.group(2)), m.group(1) or "", text
