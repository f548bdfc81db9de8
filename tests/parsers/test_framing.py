"""split_messages and decoding: blank lines, MLLP framing, CR/LF/CRLF, MSH starts."""

from __future__ import annotations

import pytest

from parsers import split_messages
from parsers.framing import decode_message, split_segments

A = b"MSH|^~\\&|A|F|||20240101||ADT^A01|1|P|2.5"
B = b"MSH|^~\\&|B|F|||20240101||ADT^A01|2|P|2.5"
P = b"PID|1||123^^^H^MR"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # CR-terminated segments, messages separated by a blank line
        (A + b"\r" + P + b"\r\r" + B + b"\r", [A + b"\r" + P + b"\r", B + b"\r"]),
        # LF-only file with a blank line
        (A + b"\n" + P + b"\n\n" + B + b"\n", [A + b"\r" + P + b"\r", B + b"\r"]),
        # CRLF file with a blank line
        (A + b"\r\n" + P + b"\r\n\r\n" + B, [A + b"\r" + P + b"\r", B + b"\r"]),
        # no blank line: a line starting with MSH begins the next message
        (A + b"\n" + P + b"\n" + B + b"\n", [A + b"\r" + P + b"\r", B + b"\r"]),
        # MLLP framing, stripped
        (
            b"\x0b" + A + b"\r" + P + b"\r\x1c\r\x0b" + B + b"\r\x1c\r",
            [A + b"\r" + P + b"\r", B + b"\r"],
        ),
        # MLLP frames back to back without the trailing CR
        (b"\x0b" + A + b"\x1c\x0b" + B + b"\x1c", [A + b"\r", B + b"\r"]),
        # blank and whitespace-only lines in bulk produce no empty messages
        (b"\n\n \r\n" + A + b"\n\n\n\t\n", [A + b"\r"]),
        # batch envelope segments are not messages
        (b"FHS|^~\\&\rBHS|^~\\&\r" + A + b"\rBTS|1\rFTS|1\r", [A + b"\r"]),
        # empty input
        (b"", []),
        # a headless chunk is kept so that it can be dead-lettered, not silently dropped
        (A + b"\r\r" + P + b"\r", [A + b"\r", P + b"\r"]),
    ],
)
def test_split_messages(data: bytes, expected: list[bytes]) -> None:
    assert split_messages(data) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # UTF-8 decodes as UTF-8
        ("MSH|é".encode(), "MSH|é"),
        # bytes that are not UTF-8 fall back to Latin-1 instead of raising
        (b"MSH|\xe9\xff", "MSH|éÿ"),
        # MLLP bytes are removed from a single message
        (b"\x0bMSH|x\x1c\r", "MSH|x\r"),
        # text input passes through; a BOM is dropped
        ("\ufeffMSH|x", "MSH|x"),
        # NUL, other C0 controls and DEL are replaced (not deleted); CR and LF stay
        (b"MSH|A\x00B\tC\x7f\rPID|\x1f\n", "MSH|A\ufffdB\ufffdC\ufffd\rPID|\ufffd\n"),
        # Latin-1 fallback maps 0x80-0x9F to C1 controls: replaced too
        (b"MSH|\x85\x9f\xa0\xff", "MSH|\ufffd\ufffd\xa0\xff"),
        # C1 controls and U+FFFE/U+FFFF written as valid UTF-8 are replaced
        ("MSH|\x85\ufffe\uffff\xa0".encode(), "MSH|\ufffd\ufffd\ufffd\xa0"),
        # lone surrogates in text input are replaced
        ("MSH|\ud800x\udfff", "MSH|\ufffdx\ufffd"),
        # bidi controls and other printable text are not controls: kept
        ("MSH|\u202eab\u200f".encode(), "MSH|\u202eab\u200f"),
    ],
)
def test_decode_message(raw: bytes | str, expected: str) -> None:
    assert decode_message(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "MSH|a\rPID|b\r",  # CR
        "MSH|a\nPID|b\n",  # LF
        "MSH|a\r\nPID|b\r\n",  # CRLF
        "MSH|a\r\n\r\nPID|b  \n\n",  # empty lines and trailing blanks ignored
    ],
)
def test_split_segments_line_endings(text: str) -> None:
    assert split_segments(text) == ["MSH|a", "PID|b"]
