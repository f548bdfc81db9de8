"""Characters that must not reach a pager, a web page or an XML document. Pure functions.

- Bidirectional formatting characters (Unicode UAX #9: the embeddings and overrides U+202A to
  U+202E, the isolates U+2066 to U+2069, the marks U+200E/U+200F, and U+061C) reorder what a
  reader sees: a location "4W\u202e214" displays as "4W412", and in a name or a reason they can
  make one patient's line read as another's ("Trojan Source", CVE-2021-42574). No field of an
  HL7 result needs them, so ``strip_bidi`` removes them from page text and from every value a
  web page shows.
- XML 1.0 allows only the characters of its ``Char`` production (W3C XML 1.0 §2.2): a location
  with U+FFFE, U+FFFF, a lone surrogate or a C0 control would make the WCTP document
  ill-formed, and the gateway would refuse that page for good. ``xml_safe`` replaces each with
  ``?`` (pagers are 7-bit; U+FFFD would not show).
"""

from __future__ import annotations

import re

BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# The complement of XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
# [#x10000-#x10FFFF].
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def strip_bidi(text: str) -> str:
    """``text`` without bidirectional formatting characters."""
    return _BIDI.sub("", text)


def xml_safe(text: str, replacement: str = "?") -> str:
    """``text`` with every character XML 1.0 forbids replaced by ``replacement``."""
    return _NOT_XML_CHAR.sub(replacement, text)
