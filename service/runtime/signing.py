"""One signed-token format for the whole service: ack links and the web session cookie.

A token is ``<payload>.<signature>``: the payload is the compact JSON of a dict, URL-safe
base64 without padding, and the signature is itsdangerous' HMAC-SHA256 over it, keyed by the
secret and a salt. The salt names the use ("ack link", "web session"), so a token minted for
one use is forged for every other even under the same secret. The token is signed, not
encrypted: put no patient data in a payload.

Time claims follow JWT's registered names: ``dumps`` adds ``iat`` (issued at, whole Unix
seconds); a payload may carry ``exp`` (expires at, Unix seconds), and ``loads`` refuses a token
at or after its ``exp``, or whose age has reached ``max_age_s``. ``now`` can be passed to both
(tests, and callers with an injected clock); it defaults to the wall clock.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from itsdangerous import BadData, BadSignature
from itsdangerous import Signer as _HmacSigner
from itsdangerous.encoding import base64_decode, base64_encode

ISSUED_AT = "iat"
EXPIRES_AT = "exp"
_SEP = "."


class BadToken(Exception):
    """A token that is forged, malformed, non-ASCII, signed for another salt, or expired.

    ``reason`` is one of ``malformed``, ``forged``, ``expired``; it is also the message. The
    message never echoes the token or the payload, so logs may print it (``safe_message``).
    """

    safe_message = True

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Signer:
    """Signs and checks dict payloads under one secret and one salt. Pure CPU; never blocks."""

    def __init__(self, secret: bytes, salt: str) -> None:
        self._signer = _HmacSigner(
            secret,
            salt=salt,
            sep=_SEP,
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )

    def dumps(self, payload: dict[str, Any], *, now: float | None = None) -> str:
        """The signed token of ``payload`` plus ``iat`` (unless the payload sets it).

        Raises ``TypeError``/``ValueError`` when the payload is not JSON-serialisable (a
        programming error, not bad input).
        """
        claims = {ISSUED_AT: int(time.time() if now is None else now), **payload}
        body = json.dumps(claims, separators=(",", ":"), sort_keys=True, allow_nan=False)
        return self._signer.sign(base64_encode(body.encode("utf-8"))).decode("ascii")

    def loads(
        self, token: str, max_age_s: float | None = None, *, now: float | None = None
    ) -> dict[str, Any]:
        """The payload of a genuine, unexpired token (with its ``iat``).

        Raises ``BadToken``: ``malformed`` (not ASCII, no signature, not a JSON object),
        ``forged`` (signature wrong for this secret and salt), ``expired`` (at or after
        ``exp``, or ``max_age_s`` or more since ``iat``). The signature is checked first and in
        constant time, so nothing is decoded from a forged token.
        """
        if not isinstance(token, str) or not token.isascii() or _SEP not in token:
            raise BadToken("malformed")
        try:
            body = self._signer.unsign(token.encode("ascii"))
        except BadSignature:
            raise BadToken("forged") from None
        try:
            claims = json.loads(base64_decode(body))
        except (BadData, ValueError):  # bad base64, bad UTF-8, bad JSON
            raise BadToken("malformed") from None
        if not isinstance(claims, dict):
            raise BadToken("malformed")
        at = time.time() if now is None else now
        issued = _seconds(claims.get(ISSUED_AT))
        expires = _seconds(claims.get(EXPIRES_AT, at + 1.0))  # no ``exp``: never before now
        if expires is None or issued is None:
            raise BadToken("malformed")
        if at >= expires or (max_age_s is not None and at - issued >= max_age_s):
            raise BadToken("expired")
        return claims


def _seconds(value: object) -> float | None:
    """A Unix time claim, or None when it is not a number (``true`` is not a time)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
