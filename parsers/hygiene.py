"""Text hygiene: no control character, noncharacter or lone surrogate leaves the parsers.

Every string a parser returns ends up in SQL text columns, logs and pages. PostgreSQL rejects
NUL in text, terminals and log shippers act on other controls, and U+FFFE/U+FFFF and lone
surrogates cannot be encoded as UTF-8 at all. Each such character is *replaced* by U+FFFD,
never deleted, so that two different values (control ids ``AB\\x00C`` and ``ABC``) stay
different.

Forbidden: C0 controls U+0000-U+001F (CR and LF only exist as segment ends, never inside a
field), DEL U+007F, C1 controls U+0080-U+009F, U+FFFE, U+FFFF and surrogates U+D800-U+DFFF.

The check runs once per message on its bytes where it can, because a regular expression over
the decoded text costs about 3 µs per kilobyte and nearly every message is clean.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"

# Keep CR and LF: they end segments and are split on right after decoding.
_FORBIDDEN_IN_MESSAGE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# C0 bytes other than CR and LF, and DEL: ASCII itself, and never part of a UTF-8 sequence.
CONTROL_BYTES = bytes([*range(0x00, 0x0A), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])


def utf8_is_clean(raw: bytes) -> bool:
    """For valid UTF-8 without CONTROL_BYTES: True when it certainly holds no C1 control,
    U+FFFE or U+FFFF.

    Conservative: False may also mean "could not tell" (some U+0080-U+00BF or U+FFC0-U+FFFF
    character is present), and the caller then cleans the decoded text.
    """
    # C1 controls are C2 80..C2 9F in UTF-8, U+FFFE/U+FFFF are EF BF BE/BF; surrogates
    # never occur in valid UTF-8.
    return b"\xc2" not in raw and b"\xef\xbf" not in raw


def clean_message(text: str) -> str:
    """``text`` with every forbidden character except CR and LF replaced by U+FFFD."""
    return _FORBIDDEN_IN_MESSAGE.sub(REPLACEMENT, text)


def clean(text: str) -> str:
    """``text`` with every forbidden character (CR and LF included) replaced by U+FFFD."""
    return _FORBIDDEN.sub(REPLACEMENT, text)
