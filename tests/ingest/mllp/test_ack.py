"""The pure half of the gateway: framing, routing, and the ACK's exact shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parsers.config import ParserConfig
from service.ingest.mllp_ack import (
    Accepted,
    FrameReader,
    Oversized,
    Refused,
    build_ack,
    inspect_frame,
    refuse_oversized,
)
from tests.ingest.mllp.helpers import fields_of, frame, oru, rde

CONFIG = ParserConfig()
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def ack_of(message: bytes, code: str = "AA", **kw: str) -> dict[str, list[str]]:
    verdict = inspect_frame(message, CONFIG)
    return fields_of(build_ack(verdict.reply, code, verdict.control_id, ack_id="A1", now=NOW, **kw))


def test_accepted_oru_routes_to_results_topic_keyed_by_chosen_identifier() -> None:
    verdict = inspect_frame(oru("C1", mrn="MRN77"), CONFIG)
    assert isinstance(verdict, Accepted)
    # PID-3 lists the SSN first: the key is the MR identifier the pipeline would choose.
    assert (verdict.control_id, verdict.message_type, verdict.topic_index, verdict.key) == (
        "C1",
        "ORU^R01",
        0,
        b"MRN77",
    )


@pytest.mark.parametrize(
    ("message", "index"),
    [
        (rde("C2"), 1),  # pharmacy orders: second topic
        (oru("C3").replace(b"ORU^R01^ORU_R01", b"RAS^O17^RAS_O17"), 1),  # administrations
        (oru("C4").replace(b"ORU^R01^ORU_R01", b"ADT^A40^ADT_A39"), 1),  # merges
    ],
)
def test_orders_administrations_and_merges_route_to_orders_topic(
    message: bytes, index: int
) -> None:
    verdict = inspect_frame(message, CONFIG)
    assert isinstance(verdict, Accepted) and verdict.topic_index == index


def test_key_falls_back_to_control_id_without_accepted_identifier() -> None:
    message = oru("C9").replace(b"^^^GH^MR", b"^^^GH^XX")
    verdict = inspect_frame(message, CONFIG)
    assert isinstance(verdict, Accepted) and verdict.key == b"C9"


def test_bad_message_time_is_still_published_for_the_pipeline_to_dead_letter() -> None:
    verdict = inspect_frame(oru("C5").replace(b"20250101120000||", b"NOTATIME||", 1), CONFIG)
    assert isinstance(verdict, Accepted) and verdict.control_id == "C5"


def test_aa_ack_swaps_sender_and_receiver_and_echoes_version() -> None:
    ack = ack_of(oru("CTRL-42", version="2.3.1"))
    msh, msa = ack["MSH"], ack["MSA"]
    assert msh[1:3] == ["|", "^~\\&"]
    assert msh[3:7] == ["LABSENTINEL", "GH", "LABSYS", "GH_LAB"]  # MSH-3/4 <-> MSH-5/6
    assert msh[7] == "20250102030405+0000"
    assert msh[9] == "ACK^R01^ACK"
    assert msh[10] == "A1"  # a fresh control id of its own
    assert msh[11:13] == ["P", "2.3.1"]
    assert msa == ["MSA", "AA", "CTRL-42"]
    assert "ERR" not in ack


def test_ack_uses_the_message_delimiters() -> None:
    message = oru("C7").replace(b"|", b"#").replace(b"^", b"$")
    ack = build_ack(inspect_frame(message, CONFIG).reply, "AA", "C7", ack_id="A1", now=NOW)
    assert ack.startswith(b"\x0bMSH#$~\\&#LABSENTINEL#GH#LABSYS#GH_LAB#")
    assert b"#ACK$R01$ACK#A1#P#2.5.1\rMSA#AA#C7\r\x1c\r" in ack


@pytest.mark.parametrize(
    ("message", "reason", "code", "where"),
    [
        (
            b"hello, this is not HL7 at all: JANE DOE 1950",
            "message does not start with MSH",
            "100",
            "MSH-1",
        ),
        (b"", "empty message", "100", "MSH-1"),
        (oru("C1").replace(b"|C1|", b"||"), "missing message control id", "101", "MSH-10"),
        (oru("C1").replace(b"ORU^R01^ORU_R01", b""), "missing message type", "101", "MSH-9"),
        (oru("C1").replace(b"^~\\&", b"^^\\&"), "duplicate encoding characters", "102", "MSH-2"),
        (
            oru("C1").replace(b"ORU^R01^ORU_R01", b"MDM^T02"),
            "unsupported message type",
            "200",
            "MSH-9",
        ),
    ],
)
def test_refusals_say_why_without_quoting_the_message(
    message: bytes, reason: str, code: str, where: str
) -> None:
    verdict = inspect_frame(message, CONFIG)
    assert isinstance(verdict, Refused)
    assert (verdict.reason, verdict.code, verdict.location) == (reason, code, where)
    raw = build_ack(
        verdict.reply,
        "AR",
        verdict.control_id,
        ack_id="A1",
        now=NOW,
        reason=verdict.reason,
        error_code=verdict.code,
        location=verdict.location,
    )
    ack = fields_of(raw)
    assert ack["MSA"][1] == "AR"
    assert ack["ERR"][3].startswith(f"{code}^")
    assert ack["ERR"][4] == "E"
    for phi in (b"JANE", b"DOE", b"1950", b"MRN1001", b"Phosphate"):
        assert phi not in raw


def test_unsupported_type_is_refused_with_its_own_control_id() -> None:
    ack = ack_of(
        oru("C8").replace(b"ORU^R01^ORU_R01", b"MDM^T02"),
        "AR",
        reason="unsupported message type",
        error_code="200",
        location="MSH-9",
    )
    assert ack["MSA"] == ["MSA", "AR", "C8", "unsupported message type"]
    assert ack["ERR"][1:5] == ["", "MSH^1^9", "200^Unsupported message type^HL70357", "E"]


def test_err_before_v25_uses_err1() -> None:
    ack = ack_of(
        oru("C8", version="2.3"),
        "AE",
        reason="broker did not accept the message in time",
        error_code="207",
    )
    assert ack["ERR"] == ["ERR", "^^^207&Application internal error&HL70357"]
    assert ack["MSA"] == ["MSA", "AE", "C8", "broker did not accept the message in time"]


def test_oversized_refusal_reads_only_the_header() -> None:
    verdict = refuse_oversized(oru("BIG1")[:200], 1024)
    assert verdict.control_id == "BIG1" and verdict.reply.sending_app == "LABSYS"
    assert verdict.reason == "message larger than 1024 bytes"


def test_control_id_with_delimiters_is_escaped_in_msa() -> None:
    raw = build_ack(inspect_frame(b"junk", CONFIG).reply, "AR", "A|B^C", ack_id="A1", now=NOW)
    assert b"MSA|AR|A\\F\\B\\S\\C\r" in raw


# --- framing ---------------------------------------------------------------------------


def test_frames_split_across_chunks_and_glued_together() -> None:
    reader = FrameReader(max_bytes=1024)
    stream = frame(b"one") + b"\r\n" + frame(b"two") + frame(b"three")
    out = []
    for i in range(len(stream)):  # one byte at a time: every boundary is a chunk boundary
        out.extend(reader.feed(stream[i : i + 1]))
    assert out == [b"one", b"two", b"three"]
    assert reader.feed(stream) == [b"one", b"two", b"three"]
    assert not reader.pending


def test_bytes_before_a_start_block_are_dropped() -> None:
    reader = FrameReader(max_bytes=1024)
    assert reader.feed(b"\x0bhalf a frame\x0bwhole\x1c\r") == [b"whole"]


def test_oversized_frame_is_cut_and_the_stream_goes_on() -> None:
    reader = FrameReader(max_bytes=1024)
    big = b"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|BIG|P|2.5.1\r" + b"X" * 5000
    out = reader.feed(frame(big)[:3000]) + reader.feed(frame(big)[3000:] + frame(b"next"))
    assert len(out) == 2 and out[1] == b"next"
    # What had arrived when the limit was crossed, at most 4 KB: enough for the MSH.
    assert isinstance(out[0], Oversized) and big.startswith(out[0].head)
    assert 1024 < len(out[0].head) <= 4096


def test_partial_frame_is_pending() -> None:
    reader = FrameReader(max_bytes=1024)
    assert reader.feed(b"\x0bMSH|") == [] and reader.pending
