"""``sniff_control_id``: the MSH-10 of bytes that may not parse, for logs and dead letters.

It runs on exactly the messages the parser refused, so every case is junk of some kind; the
one promise besides the answer is that it never raises.
"""

from __future__ import annotations

import pytest

from parsers.header import sniff_control_id

MSH = b"MSH|^~\\&|LAB|HOSP|LS|HOSP|20260302090000||ORU^R01|CTRL-1|P|2.5"

CASES = [
    # a plain header: MSH-10 is the tenth field once MSH-1 is counted
    (MSH + b"\rPID|1||MRN1", "CTRL-1"),
    # MLLP framing and blank lines before MSH are skipped
    (b"\x0b\r\n " + MSH, "CTRL-1"),
    # segments ended by LF instead of CR: only the first segment is read
    (MSH + b"\nPID|1||CTRL-2", "CTRL-1"),
    # another field separator, declared by MSH-1
    (MSH.replace(b"|", b"#"), "CTRL-1"),
    # not an HL7 message at all
    (b"GET / HTTP/1.1\r\n", ""),
    # an MSH too short to have an MSH-10
    (b"MSH|^~\\&|LAB", ""),
    # just "MSH": no field separator
    (b"MSH", ""),
    # empty input
    (b"", ""),
    # a control character in MSH-10 must not reach a log line
    (MSH.replace(b"CTRL-1", b"CTRL\x07"), ""),
    # a long MSH-10 is cut to 64 characters
    (MSH.replace(b"CTRL-1", b"C" * 200), "C" * 64),
    # bytes that are not UTF-8 still decode (Latin-1): printable ones are kept
    (MSH.replace(b"CTRL-1", b"CTRL-\xe9"), "CTRL-\xe9"),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_sniff_control_id(raw: bytes, expected: str) -> None:
    assert sniff_control_id(raw) == expected
