"""A patient's key: the identifier together with the authority that assigned it.

The same number from two assigning authorities is two people (CLINICAL.md "Edge semantics":
identity is PID-3.1 + PID-3.4), so every table, lock and dedup key is keyed by both. The key is
written the way HL7 writes a CX (``id^authority``) so that an operator reading a row or a page
recognises it, with HL7's escapes (``\\S\\`` for ``^``, ``\\E\\`` for ``\\``) so that an
identifier holding a caret cannot be mistaken for another identifier and authority. An
identifier without an authority is its plain (escaped) text, as keys were before authorities
were part of them.
"""

from __future__ import annotations

import re

_ESCAPED = re.compile(r"\\([ES])\\")
_RAW = {"E": "\\", "S": "^"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\E\\").replace("^", "\\S\\")


def _unescape(text: str) -> str:
    # One left-to-right pass: replacing one escape after the other would read the "\S\"
    # inside an escaped "\E\S\E\" as a caret.
    return _ESCAPED.sub(lambda m: _RAW[m.group(1)], text)


def patient_key(identifier: str, authority: str) -> str:
    """The key of the patient ``identifier`` (PID-3.1) assigned by ``authority`` (PID-3.4)."""
    if not authority:
        return _escape(identifier)
    return f"{_escape(identifier)}^{_escape(authority)}"


def split_patient_key(key: str) -> tuple[str, str]:
    """``(identifier, authority)`` of a key made by ``patient_key`` (its exact inverse)."""
    identifier, _, authority = key.partition("^")
    return _unescape(identifier), _unescape(authority)
