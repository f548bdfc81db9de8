"""Delimiters, escape sequences and field access."""

from __future__ import annotations

import pytest

from parsers.encoding import Delimiters, component, components, repetitions, unescape
from parsers.errors import ParseError

STD = Delimiters("|", "^", "~", "\\", "&")
ODD = Delimiters("#", "!", "*", "/", "%")


@pytest.mark.parametrize(
    ("text", "d", "expected"),
    [
        ("plain", STD, "plain"),  # no escape char: returned as is
        ("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", STD, "a|b^c&d~e\\f"),  # the five delimiters
        ("a/F/b/S/c/T/d/R/e/E/f", ODD, "a#b!c%d*e/f"),  # with a non-standard escape char
        ("line1\\.br\\line2", STD, "line1 line2"),  # line break: a space, never a LF
        ("\\H\\bold\\N\\ text", STD, "bold text"),  # highlighting dropped
        ("\\X4142\\", STD, "AB"),  # hex bytes
        ("\\XC3A9\\", STD, "é"),  # hex bytes that are UTF-8
        ("\\XE9\\", STD, "é"),  # hex bytes that are not UTF-8: Latin-1
        ("A\\X00\\B", STD, "A\ufffdB"),  # an escaped NUL is replaced, not dropped
        ("\\X0D0A1B7F\\", STD, "\ufffd" * 4),  # escaped CR, LF, ESC and DEL replaced
        ("\\X85\\", STD, "\ufffd"),  # Latin-1 fallback to a C1 control: replaced
        ("\\XC285EFBFBE\\", STD, "\ufffd\ufffd"),  # UTF-8 C1 control and U+FFFE
        ("\\XEDA080\\", STD, "í\xa0\ufffd"),  # an encoded surrogate is not UTF-8: Latin-1
        ("\\XZZ\\x", STD, "x"),  # bad hex dropped, not raised
        ("\\.sp\\x\\Cxxyy\\", STD, "x"),  # other formatting / charset sequences dropped
        ("50\\", STD, "50\\"),  # unterminated escape kept literally
        ("\\F\\\\", STD, "|\\"),  # decoded sequence followed by a lone escape char
    ],
)
def test_unescape(text: str, d: Delimiters, expected: str) -> None:
    assert unescape(text, d) == expected


@pytest.mark.parametrize(
    ("segment", "expected"),
    [
        ("MSH|^~\\&|A", ("|", "^", "~", "\\", "&")),  # the usual
        ("MSH#!*/%#A", ("#", "!", "*", "/", "%")),  # all five non-standard
        ("MSH|^~\\&#|A", ("|", "^", "~", "\\", "&")),  # v2.7 truncation char tolerated
        ("MSH|^~\\&", ("|", "^", "~", "\\", "&")),  # MSH with nothing after MSH-2
    ],
)
def test_delimiters_from_msh(segment: str, expected: tuple[str, ...]) -> None:
    d = Delimiters.from_msh(segment)
    assert (d.field, d.component, d.repetition, d.escape, d.subcomponent) == expected


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        ("MSH", "MSH-1"),  # no field separator at all
        ("MSHA^~\\&|", "MSH-1"),  # alphanumeric field separator
        ("MSH ^~\\&", "MSH-1"),  # blank field separator
        ("MSH|^~\\|", "MSH-2"),  # only three encoding characters
        ("MSH|^~\\&#@|", "MSH-2"),  # six encoding characters
        ("MSH|^^\\&|", "MSH-2"),  # duplicate encoding characters
        ("MSH|^|\\&|", "MSH-2"),  # encoding character equal to the field separator
        ("MSH|^~A&|", "MSH-2"),  # letter as an encoding character
    ],
)
def test_delimiters_errors(segment: str, field: str) -> None:
    with pytest.raises(ParseError) as err:
        Delimiters.from_msh(segment)
    assert (err.value.segment, err.value.field) == ("MSH", field)


@pytest.mark.parametrize(
    ("raw", "c", "s", "expected"),
    [
        ("a^b^c", 2, 1, "b"),  # component
        ("a^b&x&y^c", 2, 3, "y"),  # subcomponent
        ("a^b&x", 2, 1, "b"),  # first subcomponent by default
        ("a~z^y", 2, 1, ""),  # only the first repetition is read
        ("a^b", 5, 1, ""),  # absent component
        ("a\\S\\b^c", 1, 1, "a^b"),  # escaped delimiter is not a delimiter
        ("", 1, 1, ""),  # empty field
    ],
)
def test_component(raw: str, c: int, s: int, expected: str) -> None:
    assert component(raw, STD, c, s) == expected


def test_repetitions_and_components() -> None:
    # repetitions split on the repetition char only; components decode escapes per part
    assert repetitions("a^b~c", STD) == ["a^b", "c"]
    assert repetitions("", STD) == []
    assert components("x&y^\\T\\^", STD) == ["x", "&", ""]
