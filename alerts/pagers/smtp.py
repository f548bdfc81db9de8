"""SMTP transport: one e-mail per (notification, recipient), for mail and e-mail-to-pager gateways.

Uses the standard library's smtplib in a worker thread (``asyncio.to_thread``): one connection
per send (pages are rare; a pooled connection would add reconnect logic for no gain). The
timeout applies to each socket operation (connect, each reply), not to the whole exchange, and
the worker thread cannot be cancelled: an attempt can take a few multiples of ``timeout_s``.

The message: subject ``render_subject`` (no patient id), body ``render_text(n, max_chars)``
(set ``max_chars`` for e-mail-to-pager gateways that keep ~160 characters), and headers

- ``Message-ID: <notification_id.recipient-hash@sender-domain>``: stable, so a retried attempt
  is recognisably the same message, and distinct per recipient (the id falls back to a hash
  when it holds characters a Message-ID cannot);
- ``References: <alert.key-hash@sender-domain>``: every notice of one alert threads together;
- ``X-LabSentinel-Alert-Id`` (the alert's stable key, for a receiver's own dedupe),
  ``X-LabSentinel-Notification-Id``, ``X-LabSentinel-Event``. The alert key is the alert's
  random public id, never the internal dedup key (that hashes the patient identifier);
- ``Auto-Submitted: auto-generated`` (RFC 3834: no vacation auto-replies back to us), and
  ``Importance: high`` / ``X-Priority: 1`` for paging severities.

Outcome: 2xx delivered; an SMTP 4xx reply (greeting, auth, sender, recipient or data)
retryable; a 5xx reply final; timeouts, refused or dropped connections retryable; a TLS
certificate that does not verify, an unsupported STARTTLS/AUTH, or a message that cannot be
encoded final (configuration or data problems another attempt will not fix).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from alerts.render import render_subject, render_text

_DOT_ATOM = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")


def message_id(notification_id: str, recipient: str, domain: str) -> str:
    """``<id.recipient-hash@domain>``, the same for every attempt of one delivery."""
    left = notification_id
    if len(left) > 64 or not _DOT_ATOM.fullmatch(left):
        left = hashlib.sha256(notification_id.encode("utf-8")).hexdigest()[:32]
    rcpt = hashlib.sha256(recipient.encode("utf-8")).hexdigest()[:12]
    return f"<{left}.{rcpt}@{domain}>"


def _classify_code(code: int, what: str) -> DeliveryResult:
    detail = f"SMTP {code} ({what})"
    if 500 <= code < 600:
        return DeliveryResult.final(detail, "5xx")
    # 4xx, and the odd -1 smtplib reports for a connection closed during the greeting.
    return DeliveryResult.retryable(detail, "4xx" if 400 <= code < 500 else "network")


def classify_smtp_error(exc: OSError | ValueError) -> DeliveryResult:
    """Outcome of an exception raised by one smtplib exchange. Never includes the server's
    reply text: it can echo addresses or content."""
    name = type(exc).__name__
    # smtplib's exceptions are OSErrors: match them before the generic network cases.
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return _classify_code(max(codes, default=550), "recipient refused")
    if isinstance(exc, smtplib.SMTPResponseException):
        return _classify_code(exc.smtp_code, name)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a reply that never came as a disconnect; the cause tells them apart.
        if isinstance(exc.__cause__ or exc.__context__, TimeoutError):
            return DeliveryResult.retryable("timeout", "timeout")
        return DeliveryResult.retryable("SMTP connection dropped", "network")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryResult.final("SMTP extension not supported", "config")
    if isinstance(exc, smtplib.SMTPException):
        return DeliveryResult.final(f"SMTP error ({name})", "config")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryResult.final("TLS certificate not verified", "config")
    if isinstance(exc, TimeoutError):
        return DeliveryResult.retryable("timeout", "timeout")
    if isinstance(exc, OSError):
        return DeliveryResult.retryable(f"network error ({name})", "network")
    return DeliveryResult.final(f"encoding error ({name})", "encoding")


class SmtpPager:
    """Sends each notification as one e-mail. Never retries: the dispatcher does."""

    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        use_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 15.0,
        max_chars: int | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if starttls and use_tls:
            raise ValueError("smtp: choose starttls (upgrade) or use_tls (implicit TLS), not both")
        self.name = name
        self._host, self._port, self._sender = host, port, sender
        self._starttls, self._use_tls = starttls, use_tls
        self._username, self._password = username, password
        self._timeout = timeout_s
        self._max_chars = max_chars
        self._tls_context = tls_context
        self._clock = clock
        self._domain = sender.rpartition("@")[2] or "labsentinel.invalid"

    def build_message(self, n: Notification, recipient: str) -> EmailMessage:
        """The e-mail for one delivery. Raises ValueError for a header it cannot carry."""
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = recipient
        msg["Subject"] = render_subject(n)
        msg["Date"] = format_datetime(self._clock())
        msg["Message-ID"] = message_id(n.notification_id, recipient, self._domain)
        thread = hashlib.sha256(n.dedup_key.encode("utf-8")).hexdigest()[:32]
        msg["References"] = f"<alert.{thread}@{self._domain}>"
        msg["X-LabSentinel-Alert-Id"] = n.dedup_key
        msg["X-LabSentinel-Notification-Id"] = n.notification_id
        msg["X-LabSentinel-Event"] = n.event
        msg["Auto-Submitted"] = "auto-generated"
        if n.pages:
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        msg.set_content(render_text(n, max_chars=self._max_chars))
        return msg

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        try:
            msg = self.build_message(notification, recipient)
            msg.as_bytes()  # surface encoding problems here, as final, not in the thread
        except (ValueError, TypeError) as exc:
            return DeliveryResult.final(f"encoding error ({type(exc).__name__})", "encoding")
        try:
            await asyncio.to_thread(self._deliver, msg, recipient)
        except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
            return classify_smtp_error(exc)
        return DeliveryResult.delivered("SMTP 250", "2xx")

    async def close(self) -> None:
        return None  # no connection outlives a send

    def _deliver(self, msg: EmailMessage, recipient: str) -> None:
        """Blocking: connect, (STARTTLS), (AUTH), MAIL/RCPT/DATA, QUIT."""
        context = self._tls_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._use_tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        try:
            if self._starttls:
                smtp.starttls(context=context)
            if self._username:
                smtp.login(self._username, self._password or "")
            smtp.send_message(msg, from_addr=self._sender, to_addrs=[recipient])
            # The message was accepted; a failed QUIT changes nothing.
            with contextlib.suppress(OSError):  # smtplib's errors are OSErrors
                smtp.quit()
        finally:
            smtp.close()
