"""Delimiters, escape sequences and field access for ER7 (pipe-and-hat) text.

Everything here works on plain strings: a segment is split into fields once, and components,
subcomponents and repetitions are cut out of a field's raw text on demand. Escape sequences
are decoded only in the values a parser extracts (splitting first is correct: an escaped
delimiter never contains a delimiter).
"""

from __future__ import annotations

from parsers.errors import ParseError
from parsers.hygiene import clean

__all__ = [
    "Delimiters",
    "component",
    "components",
    "field",
    "is_plain",
    "repetitions",
    "unescape",
]


class Delimiters:
    """The five encoding characters of one message (MSH-1 and MSH-2)."""

    __slots__ = ("field", "component", "repetition", "escape", "subcomponent", "truncation")

    def __init__(
        self,
        field: str,
        component: str,
        repetition: str,
        escape: str,
        subcomponent: str,
        truncation: str = "",
    ) -> None:
        self.field = field
        self.component = component
        self.repetition = repetition
        self.escape = escape
        self.subcomponent = subcomponent
        self.truncation = truncation  # v2.7+; "" when MSH-2 has four characters

    @classmethod
    def from_msh(cls, segment: str) -> Delimiters:
        """Read the delimiters from an MSH segment's text (``MSH|^~\\&|...``).

        MSH-2 holds component, repetition, escape and subcomponent characters, optionally
        followed by the v2.7 truncation character, which is accepted and otherwise ignored.

        Raises ParseError (segment MSH, field MSH-1 or MSH-2) when a delimiter is missing,
        is a letter, digit or white space, or two delimiters are the same character.
        """
        if len(segment) < 4:
            raise ParseError("missing field separator", "MSH", "MSH-1")
        fs = segment[3]
        if fs.isalnum() or fs.isspace():
            raise ParseError("invalid field separator", "MSH", "MSH-1")
        end = segment.find(fs, 4)
        chars = segment[4:] if end < 0 else segment[4:end]
        if len(chars) < 4 or len(chars) > 5:
            raise ParseError("invalid encoding characters", "MSH", "MSH-2")
        if len(set(chars + fs)) != len(chars) + 1:
            raise ParseError("duplicate encoding characters", "MSH", "MSH-2")
        if any(c.isalnum() or c.isspace() for c in chars):
            raise ParseError("invalid encoding characters", "MSH", "MSH-2")
        return cls(fs, chars[0], chars[1], chars[2], chars[3], chars[4:])

    def __repr__(self) -> str:
        chars = self.component + self.repetition + self.escape + self.subcomponent
        return f"Delimiters({self.field!r}, {chars!r})"


def unescape(text: str, d: Delimiters) -> str:
    r"""Decode HL7 escape sequences in one extracted value.

    \F\ \S\ \T\ \R\ \E\ \P\ become the field, component, subcomponent, repetition, escape
    and (v2.7) truncation characters; \.br\ (a formatted line break) becomes a space, because no
    returned value holds a line feed (it would be read as a segment end downstream);
    \Xhh..\ becomes the bytes it spells (UTF-8, else Latin-1), with every control character,
    noncharacter or lone surrogate in them replaced by U+FFFD (parsers.hygiene); highlighting
    (\H\, \N\) and other formatting or character-set sequences (\Cxxyy\, \Mxxyyzz\, \Zxx\)
    are dropped. An escape character without a closing one is kept as literal text. Never
    raises.
    """
    esc = d.escape
    start = text.find(esc)
    if start < 0:
        return text
    out: list[str] = []
    pos = 0
    while start >= 0:
        end = text.find(esc, start + 1)
        if end < 0:
            break
        out.append(text[pos:start])
        out.append(_decode_sequence(text[start + 1 : end], d))
        pos = end + 1
        start = text.find(esc, pos)
    out.append(text[pos:])
    return "".join(out)


def _decode_sequence(body: str, d: Delimiters) -> str:
    """The text one escape sequence stands for (``body`` is between the escape characters)."""
    if body == "F":
        return d.field
    if body == "S":
        return d.component
    if body == "T":
        return d.subcomponent
    if body == "R":
        return d.repetition
    if body == "E":
        return d.escape
    if body == "P":
        return d.truncation
    if body == ".br":
        return " "
    if body[:1] == "X" and len(body) % 2 == 1:
        try:
            data = bytes.fromhex(body[1:])
        except ValueError:
            return ""
        try:
            return clean(data.decode("utf-8"))
        except UnicodeDecodeError:
            return clean(data.decode("latin-1"))
    # \H\ \N\ (highlighting), \.sp\ \.in\ ... (formatting), \C..\ \M..\ \Z..\: no text.
    return ""


def is_plain(text: str, d: Delimiters) -> bool:
    """True when ``text`` has no repetition, subcomponent or escape character.

    Then component c of any of its fields is simply piece c of ``split(d.component)``: the
    fast paths use this instead of calling :func:`component` per value.
    """
    return not (d.repetition in text or d.subcomponent in text or d.escape in text)


def field(fields: list[str], n: int) -> str:
    """Raw text of field ``n`` of a split segment ("" if absent); ``fields[0]`` is the name."""
    return fields[n] if n < len(fields) else ""


def repetitions(raw: str, d: Delimiters) -> list[str]:
    """The raw repetitions of a field (``[]`` for an empty field)."""
    if not raw:
        return []
    return raw.split(d.repetition)


def component(raw: str, d: Delimiters, c: int = 1, s: int = 1) -> str:
    """Unescaped subcomponent ``s`` of component ``c`` of the first repetition of a raw field.

    Positions are 1-based as in HL7 (``component(pid3, d, 4, 1)`` is PID-3.4.1). Returns ""
    when the part is absent. Never raises.
    """
    if not raw:
        return ""
    if d.repetition in raw:
        raw = raw.split(d.repetition, 1)[0]
    if c > 1 or d.component in raw:
        parts = raw.split(d.component)
        raw = parts[c - 1] if c <= len(parts) else ""
    if s > 1 or d.subcomponent in raw:
        parts = raw.split(d.subcomponent)
        raw = parts[s - 1] if s <= len(parts) else ""
    return unescape(raw, d) if d.escape in raw else raw


def components(rep: str, d: Delimiters) -> list[str]:
    """Unescaped first subcomponents of every component of one raw repetition."""
    out = []
    for part in rep.split(d.component):
        if d.subcomponent in part:
            part = part.split(d.subcomponent, 1)[0]
        out.append(unescape(part, d) if d.escape in part else part)
    return out
