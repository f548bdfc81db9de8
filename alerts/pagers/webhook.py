"""Webhook transport: one signed JSON POST per (notification, recipient).

Body: ``{"notification": n.to_json(), "recipient": recipient, "text": render_text(n)}``, UTF-8
JSON, signed exactly as sent.

Headers:

- ``Idempotency-Key``: ``<notification_id>.<16 hex of sha256(recipient)>``. Stable across
  retries of the same delivery, and distinct per recipient: the dispatcher calls ``send`` once
  per recipient, and a receiver that de-duplicates on a bare notification id would drop every
  recipient after the first. Hashing the recipient keeps the header ASCII whatever it holds.
- ``X-LabSentinel-Notification-Id``, ``X-LabSentinel-Dedup-Key``: the notification's own id and
  its alert's dedup key, for receivers that group (PagerDuty-style ``dedup_key``).
- With a secret, ``X-LabSentinel-Timestamp: <unix seconds>`` and
  ``X-LabSentinel-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>`` (the Stripe
  scheme: the timestamp is signed too, so a receiver can reject replays older than a few
  minutes). Verify with ``hmac.compare_digest``.

Outcome: 2xx delivered; 408, 425, 429 and 5xx retryable; every other status final (3xx is a
misconfigured URL: redirects are not followed, a page is not re-POSTed somewhere unexpected);
timeouts and network errors retryable; a body that cannot be encoded final.
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
from alerts.render import render_text

USER_AGENT = "LabSentinel"
# Worth another attempt: request timeout, too early, rate limited (dropping a 429 loses the
# page: Alertmanager #2286), and every server error.
RETRYABLE_HTTP = frozenset({408, 425, 429})


def classify_http_status(status: int) -> DeliveryResult:
    """Outcome of an HTTP reply status alone (shared with the WCTP transport)."""
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return DeliveryResult.delivered(detail, "2xx")
    status_class = f"{status // 100}xx" if 100 <= status < 600 else "other"
    if status in RETRYABLE_HTTP or 500 <= status < 600:
        return DeliveryResult.retryable(detail, status_class)
    return DeliveryResult.final(detail, status_class)


def classify_http_error(exc: httpx.HTTPError | httpx.InvalidURL) -> DeliveryResult:
    """Outcome of an httpx exception raised before a reply arrived. The detail is the exception
    type only: its message can carry the URL, and URLs can carry tokens."""
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return DeliveryResult.retryable(f"timeout ({name})", "timeout")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return DeliveryResult.final(f"bad URL ({name})", "config")
    return DeliveryResult.retryable(f"network error ({name})", "network")


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
        self._timeout = httpx.Timeout(timeout_s)
        self._headers = dict(headers or {})
        self._client = client
        self._owns_client = client is None
        self._clock = clock

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        n = notification
        try:
            payload = {"notification": n.to_json(), "recipient": recipient, "text": render_text(n)}
            body = json.dumps(
                payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")
            _check_header_value(n.notification_id)
            _check_header_value(n.dedup_key)
        except (TypeError, ValueError) as exc:
            return DeliveryResult.final(f"encoding error ({type(exc).__name__})", "encoding")
        headers = {
            **self._headers,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key(n.notification_id, recipient),
            "X-LabSentinel-Notification-Id": n.notification_id,
            "X-LabSentinel-Dedup-Key": n.dedup_key,
        }
        if self._secret is not None:
            timestamp = str(int(self._clock()))
            headers["X-LabSentinel-Timestamp"] = timestamp
            headers["X-LabSentinel-Signature"] = sign(self._secret, timestamp, body)
        try:
            reply = await self._http().post(
                self._url, content=body, headers=headers, timeout=self._timeout
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return classify_http_error(exc)
        return classify_http_status(reply.status_code)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Created lazily, inside the running loop; reopened if used after close().
            self._client = httpx.AsyncClient(follow_redirects=False)
            self._owns_client = True
        return self._client
