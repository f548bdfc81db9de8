"""Webhook transport: one signed JSON POST per (notification, recipient).

Body: ``{"notification": n.to_json(), "recipient": recipient, "text": render_text(n)}``, UTF-8
JSON, signed exactly as sent.

Headers:

- ``Idempotency-Key``: ``<notification_id>.<16 hex of sha256(recipient)>``. Stable across
  retries of the same delivery, and distinct per recipient: the dispatcher calls ``send`` once
  per recipient, and a receiver that de-duplicates on a bare notification id would drop every
  recipient after the first. Hashing the recipient keeps the header ASCII whatever it holds.
- ``X-LabSentinel-Notification-Id``, ``X-LabSentinel-Alert-Id``: the notification's own id and
  its alert's stable key (``n.dedup_key``, also in the body), for receivers that dedupe or
  group (PagerDuty-style ``dedup_key``). Both are random, opaque ids: the alert's public id,
  never the internal dedup key, which hashes the patient identifier and could be turned back
  into an MRN by trying a hospital's number range.
- With a secret, ``X-LabSentinel-Timestamp: <unix seconds>`` and
  ``X-LabSentinel-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` (the Stripe
  scheme: the timestamp is signed too, so a receiver can reject replays older than a few
  minutes). Verify with ``hmac.compare_digest``.

Outcome: classified by ``alerts.pagers.http`` (2xx delivered; 408, 425, 429, 5xx, timeouts and
network errors retryable; other statuses final); a body that cannot be encoded is final.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping

import httpx

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from alerts.pagers.http import HttpPoster, encoding_error
from alerts.render import render_text


def idempotency_key(notification_id: str, recipient: str) -> str:
    digest = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:16]
    return f"{notification_id}.{digest}"


def _check_header_value(value: str) -> None:
    """Raise ValueError unless ``value`` is printable ASCII (no CR/LF header injection)."""
    if not value.isascii() or not value.isprintable():
        raise ValueError("header value must be printable ASCII")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


class WebhookPager:
    """POSTs each notification as signed JSON. Never retries: the dispatcher does."""

    def __init__(
        self,
        name: str,
        url: str,
        secret: str | None = None,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._headers = dict(headers or {})
        self._poster = HttpPoster(timeout_s, client)
        self._clock = clock

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        n = notification
        try:
            payload = {"notification": n.to_json(), "recipient": recipient, "text": render_text(n)}
            body = json.dumps(
                payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")
            _check_header_value(n.notification_id)
            _check_header_value(n.dedup_key)  # the alert's public id
        except (TypeError, ValueError) as exc:
            return encoding_error(exc)
        headers = {
            **self._headers,
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key(n.notification_id, recipient),
            "X-LabSentinel-Notification-Id": n.notification_id,
            "X-LabSentinel-Alert-Id": n.dedup_key,
        }
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers["X-LabSentinel-Timestamp"] = timestamp
            headers["X-LabSentinel-Signature"] = sign(self._secret, timestamp, body)
        reply = await self._poster.post(self._url, body=body, headers=headers)
        return reply.result

    async def close(self) -> None:
        await self._poster.close()
