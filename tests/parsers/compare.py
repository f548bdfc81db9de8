"""Field-by-field comparison of parse_message output with the hl7apy oracle."""

from __future__ import annotations

import re
from typing import Any

from parsers import Ignored, LabReport, ParsedMessage, ParserConfig, PharmacyOrder
from tests.parsers import oracle


def assert_matches_oracle(text: str, parsed: ParsedMessage, config: ParserConfig) -> Any:
    """Parse ``text`` with hl7apy and assert every extracted field equals ``parsed``'s.

    Returns the hl7apy message for further checks.
    """
    m = oracle.oracle_parse(text)
    assert parsed.header._asdict() == oracle.expected_header(m, config)
    if isinstance(parsed, Ignored):
        kind = parsed.header.message_type
        if kind == "ORU^R01":
            assert parsed.reason == "no catalogued analyte"
            assert oracle.expected_results(m, config) == []
        elif kind.startswith("RDE"):
            assert parsed.reason == "drug not in catalog"
            o = oracle.expected_order(m, config)
            codes = [c for c in (o["drug_code"], o["drug_alt_code"]) if c]
            names = [n for n in (o["drug_text"], o["drug_alt_text"]) if n]
            assert not (codes or names) or config.classify_drug(codes, names) is None
        return m
    assert parsed.patient._asdict() == oracle.expected_patient(m, config)
    if isinstance(parsed, LabReport):
        expected = oracle.expected_results(m, config)
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
        want = oracle.expected_order(m, config)
        order = parsed.order._asdict()
        for key, value in want.items():
            if not key.startswith("drug_alt"):
                assert order[key] == value, key
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
    text = "\n".join(r for r in rendered if r)
    if value_type not in ("", "NM", "ST", "TX", "FT") or not reps:
        return None, "", text
    m = _NUMBER.fullmatch(rendered[0])
    if m is None:
        return None, "", text
    return float(m.group(2)), m.group(1) or "", text
