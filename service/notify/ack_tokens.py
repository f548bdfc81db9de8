"""Signed, expiring acknowledgement links, and recording an acknowledgement.

A page carries ``{base_url}/ack/{token}``. The token names the alert (by id and dedup key) and
an expiry, signed with HMAC-SHA256 under the site's ack secret; it carries no patient data, so
nothing identifying ends up in a URL, a proxy log or a browser history.

Refused tokens say why (``forged``, ``expired``, ``malformed``, ``other-alert``) so the page
can tell the clinician what to do, never why a forgery failed in detail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_VERSION = "1"

# What a clinician can say was done (the intervention record a pharmacy review runs on).
ACK_ACTIONS: dict[str, str] = {
    "repeat-labs": "Repeat labs ordered",
    "iv-phosphate": "IV phosphate started",
    "iv-calcium": "IV calcium started",
    "oral-replacement": "Oral replacement started",
    "iron-held": "Further iron doses held",
    "formulation-changed": "Iron formulation changed",
    "prescribers-informed": "Prescribers informed",
    "not-relevant": "Not clinically relevant",
    "other": "Other (see note)",
}


class InvalidAckToken(Exception):
    """``reason`` is one of: malformed, forged, expired, other-alert."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class AckClaim:
    alert_id: int
    dedup_key: str
    expires_at: datetime


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_ack_token(
    secret: bytes, alert_id: int, dedup_key: str, now: datetime, ttl: timedelta
) -> str:
    expires = int((now + ttl).timestamp())
    body = _b64(
        json.dumps([_VERSION, alert_id, dedup_key, expires], separators=(",", ":")).encode()
    )
    signature = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify_ack_token(
    secret: bytes, token: str, now: datetime, *, alert_id: int | None = None
) -> AckClaim:
    """Check signature, expiry and (when given) that the token is for ``alert_id``.

    Raises InvalidAckToken. Constant-time signature comparison.
    """
    try:
        body, signature = token.split(".", 1)
        expected = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    except ValueError:
        raise InvalidAckToken("malformed") from None
    if not hmac.compare_digest(expected, signature):
        raise InvalidAckToken("forged")
    try:
        version, claimed_id, dedup_key, expires = json.loads(_unb64(body))
        if version != _VERSION:
            raise ValueError
        claim = AckClaim(int(claimed_id), str(dedup_key), datetime.fromtimestamp(expires, UTC))
    except (ValueError, TypeError):
        raise InvalidAckToken("malformed") from None
    if now >= claim.expires_at:
        raise InvalidAckToken("expired")
    if alert_id is not None and claim.alert_id != alert_id:
        raise InvalidAckToken("other-alert")
    return claim


def ack_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/ack/{token}"
