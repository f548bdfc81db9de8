"""Keeping protected health information out of logs and metrics.

Logs carry message control ids and *hashed* patient identifiers only: a salted SHA-256 prefix
lets an engineer follow one patient through the logs and match a support ticket (hash the MRN
with the site's salt) without the log itself revealing who it is.
"""

from __future__ import annotations

import hashlib

_salt = b"labsentinel"


def configure_salt(salt: str) -> None:
    global _salt
    _salt = salt.encode()


def patient_hash(patient_id: str) -> str:
    return hashlib.sha256(_salt + b"|" + patient_id.encode()).hexdigest()[:12]
