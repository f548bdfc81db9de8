"""Signed, expiring acknowledgement links, and what an acknowledgement can say was done.

A page carries ``{base_url}/ack/{token}``. The token is a ``service.runtime.signing`` token
(the one signed-token format of the service) under the site's ack secret and the ack salt: its
payload is the alert's public id (``pid``: ``Alert.public_id``, 128 random bits) and an expiry
(``exp``), nothing else. Not the dedup key: it hashes the patient identifier without a secret,
so an MRN range could be tried against it; not the row id either, which counts alerts and
would let a link holder guess the next one. Nothing in a URL, a proxy log or a browser
history can be traced back to a patient. The payload is readable (signed, not encrypted),
which is why it must hold nothing but that random id.

Refused tokens say why (``forged``, ``expired``, ``malformed``, ``other-alert``) so the page
can tell the clinician what to do, never why a forgery failed in detail.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.runtime.signing import BadToken, Signer

# Separates ack links from every other token signed with the same secret (the session cookie).
SALT = "labsentinel ack link"

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
    public_id: str  # Alert.public_id
    expires_at: datetime


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def make_ack_token(secret: bytes, public_id: str, now: datetime, ttl: timedelta) -> str:
    """The token of an ack link for the alert ``public_id``, valid from ``now`` for ``ttl``.
    Never blocks."""
    payload = {"pid": public_id, "exp": int((now + ttl).timestamp())}
    return Signer(secret, SALT).dumps(payload, now=now.timestamp())


def verify_ack_token(
    secret: bytes, token: str, now: datetime, *, public_id: str | None = None
) -> AckClaim:
    """Check signature, expiry and (when given) that the token is for ``public_id``.

    Raises ``InvalidAckToken`` with the reason; the signature is compared in constant time and
    checked before anything is decoded. Never blocks.
    """
    try:
        claims = Signer(secret, SALT).loads(token, now=now.timestamp())
    except BadToken as exc:
        raise InvalidAckToken(exc.reason) from None
    try:
        pid = claims["pid"]
        if not isinstance(pid, str) or not pid:
            raise ValueError("pid")
        claim = AckClaim(public_id=pid, expires_at=datetime.fromtimestamp(claims["exp"], UTC))
    except (KeyError, TypeError, ValueError, OverflowError):
        # Also a link made before public ids: its payload named the dedup key.
        raise InvalidAckToken("malformed") from None
    if public_id is not None and claim.public_id != public_id:
        raise InvalidAckToken("other-alert")
    return claim


def ack_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/ack/{token}"
