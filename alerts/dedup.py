"""Stable alert identity: one key per (rule, patient, analyte, iron episode).

The key survives restarts, re-evaluation and other processes (so a crash between "page sent"
and "recorded" repeats a delivery only under the same key), hence hashlib over a canonical
string, never the per-process salted built-in ``hash()``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

_VERSION = "v1"  # bump only with a migration: changing the canonical form changes every key


def _utc_iso(moment: datetime) -> str:
    """UTC ISO 8601 to the second; a naive datetime is taken to be UTC already.

    Seconds, not microseconds: databases differ in what sub-second precision they keep, and a
    key must not change when an episode start makes a round trip through storage.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dedup_key(rule: str, patient_id: str, analyte: str, episode_start: datetime) -> str:
    """SHA-256 hex digest of the canonical form of the alert identity.

    The canonical form is a JSON array, so no separator inside a patient id can make two
    identities collide. The digest does not reveal the patient id; note that an id space as
    small as an MRN range could still be enumerated by someone who knows the other inputs, so
    keys are treated as internal identifiers, not as anonymised data. Never raises.
    """
    canonical = json.dumps(
        [_VERSION, rule, patient_id, analyte, _utc_iso(episode_start)],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
