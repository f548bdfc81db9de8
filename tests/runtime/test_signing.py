"""The one signed-token helper (ack links, web session): what it refuses, and why."""

from __future__ import annotations

import base64
import json

import pytest

from service.runtime.signing import BadToken, Signer

SECRET = b"s" * 32
NOW = 1_740_830_400.0  # 2025-03-01T12:00:00Z
SIGNER = Signer(SECRET, "ack link")


def reason(token: str, *, max_age_s: float | None = None, now: float = NOW) -> str:
    with pytest.raises(BadToken) as raised:
        SIGNER.loads(token, max_age_s, now=now)
    return raised.value.reason


def test_round_trip_keeps_the_payload_and_adds_issued_at() -> None:
    token = SIGNER.dumps({"alert": 7, "key": "dk-7"}, now=NOW)
    assert token.isascii() and token.count(".") == 1  # URL- and cookie-safe
    assert SIGNER.loads(token, now=NOW) == {"alert": 7, "key": "dk-7", "iat": int(NOW)}


def test_default_clock_is_the_wall_clock() -> None:
    # no ``now`` on either side: a fresh token is valid for an hour
    assert SIGNER.loads(SIGNER.dumps({"a": 1}), max_age_s=3600)["a"] == 1


@pytest.mark.parametrize(
    "token",
    [
        # signed with another secret
        Signer(b"x" * 32, "ack link").dumps({"alert": 7}, now=NOW),
        # same secret, other salt: a session cookie is no ack link
        Signer(SECRET, "web session").dumps({"alert": 7}, now=NOW),
    ],
)
def test_other_secret_or_salt_is_forged(token: str) -> None:
    assert reason(token) == "forged"


def test_edited_payload_is_forged() -> None:
    body, signature = SIGNER.dumps({"alert": 7}, now=NOW).split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["alert"] = 8  # point it at another alert, keep the signature
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert reason(f"{edited}.{signature}") == "forged"


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("", "malformed"),  # empty
        ("no-separator", "malformed"),  # no signature at all
        (".", "forged"),  # empty payload and signature
        ("a.b.c", "forged"),  # garbage with separators
        ("\x00.\x00", "forged"),  # control characters
        ("pässword.sig", "malformed"),  # non-ASCII: BadToken, never UnicodeError
        ("☃.☃", "malformed"),  # non-ASCII
    ],
)
def test_malformed_tokens_raise_bad_token(token: str, why: str) -> None:
    assert reason(token) == why


def test_genuine_signature_over_a_non_object_is_malformed() -> None:
    # a validly signed payload that is not a JSON object (cannot come from ``dumps``)
    raw = Signer(SECRET, "ack link")._signer.sign(base64.urlsafe_b64encode(b"[1]").rstrip(b"="))
    assert reason(raw.decode()) == "malformed"


def test_expiry_claim_by_injected_clock() -> None:
    token = SIGNER.dumps({"exp": NOW + 60}, now=NOW)
    assert SIGNER.loads(token, now=NOW + 59)["exp"] == NOW + 60
    assert reason(token, now=NOW + 60) == "expired"  # exactly at expiry is already too late
    assert reason(token, now=NOW + 3600) == "expired"


def test_max_age_from_issued_at() -> None:
    token = SIGNER.dumps({"fp": "abc"}, now=NOW)
    assert SIGNER.loads(token, max_age_s=60, now=NOW + 59)["fp"] == "abc"
    assert reason(token, max_age_s=60, now=NOW + 60) == "expired"


def test_bad_token_message_is_safe_to_log() -> None:
    # the message is the reason only, never the token or the payload
    token = Signer(b"x" * 32, "ack link").dumps({"secret": "do-not-log"}, now=NOW)
    with pytest.raises(BadToken) as raised:
        SIGNER.loads(token, now=NOW)
    assert BadToken.safe_message is True
    assert str(raised.value) == "forged" and "do-not-log" not in repr(raised.value)
