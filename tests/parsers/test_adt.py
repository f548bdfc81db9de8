"""ADT merges (A40, A18, ...) -> PatientMerge: pairs, identifier choice, errors, robustness."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parsers import Ignored, ParseError, ParserConfig, PatientMerge, parse_message
from tests.parsers.common import CONFIG, msg

SECRET = "SECRET7"  # planted in offending fields; must never appear in an error text


def msh(kind: str = "ADT^A40^ADT_A39") -> str:
    return f"MSH|^~\\&|ADT|HOSP|LS|HOSP|20240310081522||{kind}|M1|P|2.5.1"


EVN = "EVN|A40|20240310081500"


def merge(*segments: str, kind: str = "ADT^A40^ADT_A39", config: ParserConfig = CONFIG) -> object:
    return parse_message(msg(msh(kind), EVN, *segments), config)


def summary(out: object) -> tuple[str, tuple[str, ...]]:
    assert isinstance(out, PatientMerge)
    return out.surviving.id, out.prior_ids


CASES = [
    # A40 with one pair: MRG-1 names the prior MRN
    ("ADT^A40^ADT_A39", ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR"], ("M1", ("M2",))),
    # A40 with two pairs for the same survivor: both prior ids, in order
    (
        "ADT^A40^ADT_A39",
        [
            "PID|1||M1^^^HOSP^MR",
            "MRG|M2^^^HOSP^MR",
            "PID|2||M1^^^HOSP^MR",
            "PD1|",
            "MRG|M3^^^HOSP^MR",
            "PV1|1|I",
        ],
        ("M1", ("M2", "M3")),
    ),
    # the same prior id in two pairs is listed once
    (
        "ADT^A40^ADT_A39",
        ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", "PID|2||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR"],
        ("M1", ("M2",)),
    ),
    # A18 (merge patient information): PID surviving, MRG-1 prior, PV1 after MRG
    (
        "ADT^A18^ADT_A18",
        ["PID|1||M1^^^HOSP^MR", "PD1|", "MRG|M2^^^HOSP^MR|||M2OLD", "PV1|1|I|ICU^07^2"],
        ("M1", ("M2",)),
    ),
    # A34 (patient id only) is read the same way
    ("ADT^A34^ADT_A30", ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR"], ("M1", ("M2",))),
    # A36 (patient id and account) too; the account number (MRG-3) is not an identifier
    ("ADT^A36^ADT_A30", ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR||ACC9"], ("M1", ("M2",))),
    # MRG-1 identifier choice: the MR repetition wins over an earlier enterprise id
    (
        "ADT^A40^ADT_A39",
        ["PID|1||E1^^^EPI^PI~M1^^^HOSP^MR", "MRG|E2^^^EPI^PI~M2^^^HOSP^MR"],
        ("M1", ("M2",)),
    ),
    # escaped delimiters in MRG-1 are decoded like PID-3's
    ("ADT^A40^ADT_A39", ["PID|1||M1^^^HOSP^MR", "MRG|M\\S\\2^^^HOSP^MR"], ("M1", ("M^2",))),
    # segments of other kinds between pairs are skipped
    (
        "ADT^A40^ADT_A39",
        ["PID|1||M1^^^HOSP^MR", "ZXY|1|local", "MRG|M2^^^HOSP^MR"],
        ("M1", ("M2",)),
    ),
]


@pytest.mark.parametrize(("kind", "segments", "expected"), CASES)
def test_merge(kind: str, segments: list[str], expected: tuple[str, tuple[str, ...]]) -> None:
    assert summary(merge(*segments, kind=kind)) == expected


@pytest.mark.parametrize(
    ("authorities", "expected"),
    [
        # preferred authority picks the HOSP MRN in PID-3 and in MRG-1
        (("HOSP",), ("M1", ("M2",))),
        # without a preference the first MR wins in both
        ((), ("X1", ("X2",))),
        # authorities tried in the order listed, whatever the repetition order
        (("HOSP", "OTHER"), ("M1", ("M2",))),
    ],
)
def test_identifier_choice_via_config(
    authorities: tuple[str, ...], expected: tuple[str, tuple[str, ...]]
) -> None:
    config = replace(CONFIG, identifier_authorities=authorities)
    out = merge(
        "PID|1||X1^^^OTHER^MR~M1^^^HOSP^MR", "MRG|X2^^^OTHER^MR~M2^^^HOSP^MR", config=config
    )
    assert summary(out) == expected


def test_surviving_patient_and_header() -> None:
    # the surviving Patient carries PID-3 choice and the group's PV1 location
    out = merge("PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", "PV1|1|I|ICU^07^2^GEN")
    assert isinstance(out, PatientMerge)
    assert (out.surviving.id, out.surviving.authority, out.surviving.id_type) == (
        "M1",
        "HOSP",
        "MR",
    )
    assert (out.surviving.location, out.surviving.facility) == ("ICU/07/2", "GEN")
    assert out.header.message_type == "ADT^A40" and out.header.control_id == "M1"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("ADT^A41^ADT_A39", "message type ADT^A41"),  # account merge: not a patient merge
        ("ADT^A01^ADT_A01", "message type ADT^A01"),  # admissions are not read
    ],
)
def test_other_adt_ignored(kind: str, reason: str) -> None:
    out = merge("PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", kind=kind)
    assert isinstance(out, Ignored) and out.reason == reason


def test_prior_identifiers_carry_their_authority() -> None:
    # the same number from another authority is another patient: kept, with its authority
    out = merge(
        "PID|1||M1^^^HOSP^MR", "MRG|M1^^^OTHER^MR", "PID|2||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR"
    )
    assert isinstance(out, PatientMerge)
    assert (out.prior_ids, out.prior_authorities) == (("M1", "M2"), ("OTHER", "HOSP"))


def test_no_accepted_prior_identifier_is_a_parse_error() -> None:
    # MRG-1 only from an authority not configured: dead-letter, never another repetition
    config = replace(CONFIG, identifier_authorities=("HOSP",))
    with pytest.raises(ParseError) as err:
        merge("PID|1||M1^^^HOSP^MR", "MRG|M2^^^OTHER^MR", config=config)
    assert (err.value.reason, err.value.segment, err.value.field) == (
        "no accepted prior patient identifier",
        "MRG[1]",
        "MRG-1",
    )


def test_merge_into_itself_is_ignored() -> None:
    # MRG-1 naming the surviving id itself leaves nothing to move
    out = merge("PID|1||M1^^^HOSP^MR", "MRG|M1^^^HOSP^MR")
    assert isinstance(out, Ignored) and out.reason == "merge names no other identifier"


ERRORS = [
    # MRG-1 empty: no prior identifier
    (["PID|1||M1^^^HOSP^MR", f"MRG||{SECRET}"], "MRG[1]", "MRG-1"),
    # MRG-1 with components but no id
    (["PID|1||M1^^^HOSP^MR", f"MRG|^^^{SECRET}^MR"], "MRG[1]", "MRG-1"),
    # bare MRG segment
    (["PID|1||M1^^^HOSP^MR", "MRG"], "MRG[1]", "MRG-1"),
    # second pair's MRG-1 empty: the error names the pair
    (
        ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", "PID|2||M1^^^HOSP^MR", f"MRG||{SECRET}"],
        "MRG[2]",
        "MRG-1",
    ),
    # PID without MRG
    (["PID|1||M1^^^HOSP^MR", "PV1|1|I"], "MRG[1]", "MRG-1"),
    # MRG before any PID
    (["MRG|M2^^^HOSP^MR", "PID|1||M1^^^HOSP^MR"], "MRG[1]", "MRG-1"),
    # no PID at all
    ([], "PID", "PID-3"),
    # PID-3 without an id
    ([f"PID|1||^^^{SECRET}^MR", "MRG|M2^^^HOSP^MR"], "PID[1]", "PID-3"),
    # PID-3 without an accepted (MR) identifier: no fallback to another type
    ([f"PID|1||{SECRET}^^^EPI^PI", "MRG|M2^^^HOSP^MR"], "PID[1]", "PID-3"),
    # MRG-1 without an accepted identifier: no fallback to the PI repetition
    (["PID|1||M1^^^HOSP^MR", f"MRG|^^^X^MR~{SECRET}^^^EPI^PI"], "MRG[1]", "MRG-1"),
    # two pairs with different survivors: dead-letter, never half-applied
    (
        ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", f"PID|2||{SECRET}^^^HOSP^MR", "MRG|M3"],
        "PID[2]",
        "PID-3",
    ),
    # the same surviving number from another authority is another survivor
    (
        ["PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", f"PID|2||M1^^^{SECRET}^MR", "MRG|M3^^^A^MR"],
        "PID[2]",
        "PID-3",
    ),
]


@pytest.mark.parametrize(("segments", "segment", "field"), ERRORS)
def test_errors_name_segment_and_field(segments: list[str], segment: str, field: str) -> None:
    with pytest.raises(ParseError) as info:
        merge(*segments)
    assert (info.value.segment, info.value.field) == (segment, field)
    assert SECRET not in str(info.value)


BASES = [
    msg(msh(), EVN, "PID|1||M1^^^HOSP^MR", "MRG|M2^^^HOSP^MR", "PID|2||M1^^^HOSP^MR", "MRG|M3"),
    msg(msh("ADT^A18"), EVN, "PID|1||M1^^^HOSP^MR~E1^^^EPI^PI", "MRG|M2^^^HOSP^MR", "PV1|1|I|W"),
]
JUNK = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\xff", b"MRG|", b"PID|"]


@st.composite
def mutated_merges(draw: st.DrawFn) -> bytes:
    """A valid merge message damaged in a few random ways."""
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "insert", "delete", "replace"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.one_of(st.sampled_from(JUNK), st.binary(max_size=5)))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "replace" and data:
            data[pos] = draw(st.sampled_from(JUNK))[0]
    return bytes(data)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated_merges())
@example(msg(msh(), "MRG"))  # MRG with nothing before it
@example(msg(msh(), "PID", "MRG"))  # bare segments
@example(msg(msh(), "PID|1||M1", "MRG|~~~"))  # only empty repetitions
def test_damaged_merges_parse_or_raise_parse_error(raw: bytes) -> None:
    # whatever arrives: a PatientMerge, Ignored, or a ParseError that says where
    try:
        out = parse_message(raw, CONFIG)
    except ParseError as err:
        assert err.segment or err.field
        return
    assert isinstance(out, PatientMerge | Ignored)
    if isinstance(out, PatientMerge):
        priors = list(zip(out.prior_ids, out.prior_authorities, strict=True))
        assert priors and (out.surviving.id, out.surviving.authority) not in priors
