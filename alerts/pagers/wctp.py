"""WCTP 1.3 transport: one enterprise ``wctp-SubmitRequest`` per (notification, recipient).

Request (built with ElementTree, so text and attributes are escaped)::

    <wctp-Operation wctpVersion="wctp-dtd-v1r3">
      <wctp-SubmitRequest>
        <wctp-SubmitHeader submitTimestamp="2024-05-14T08:30:00">      (UTC)
          <wctp-Originator senderID="..." securityCode="..."/>
          <wctp-MessageControl messageID="<32 hex>" allowResponse="true"
              notifyWhenDelivered="true" deliveryPriority="HIGH|NORMAL"/>
          <wctp-Recipient recipientID="..."/>
        </wctp-SubmitHeader>
        <wctp-Payload>
          <wctp-Alphanumeric>render_text(n, max_chars)</wctp-Alphanumeric>
        </wctp-Payload>
      </wctp-SubmitRequest>
    </wctp-Operation>

``messageID`` is the first 32 hex digits of sha256(notification_id + US + recipient): WCTP
caps the id at 32 characters, gateways differ on which characters they accept, and it must
differ per recipient (one SubmitRequest carries one recipient; a gateway that de-duplicates
on messageID would otherwise drop the second clinician). It is stable, so a retried attempt
carries the same id and delivery receipts can be matched with ``message_id()``.

Replies are parsed with defusedxml: a gateway's DOCTYPE names a DTD on the internet, which is
never fetched, and a reply that declares entities is refused rather than expanded.

Outcome:

| reply | outcome |
| --- | --- |
| HTTP 2xx, ``wctp-Success`` or ``wctp-ClientSuccess`` | delivered (received and validated) |
| HTTP 2xx, ``wctp-Failure`` 300-399 (protocol: our document or mode) | final |
| HTTP 2xx, ``wctp-Failure`` 400-499 (content: sender, security code, recipient, dates) | final |
| HTTP 2xx, ``wctp-Failure`` 500-599 (gateway-side processing) | retryable |
| HTTP 2xx, ``wctp-Failure`` 600-699 or unknown or missing code | final |
| HTTP 2xx, body unparseable or without a result | retryable (see below) |
| HTTP 408, 425, 429, 5xx (whatever the body says) | retryable |
| other HTTP statuses | final |
| timeout, connection refused or reset | retryable |

``retryable_codes`` replaces the 500-599 default for a gateway that documents other transient
codes. A 2xx reply we cannot read is retried: the gateway may or may not have taken the page,
and a repeat (same messageID) is better than a loss. Retrying a 5xx that carries a WCTP
content error costs attempts until the dispatcher's deadline; dropping a page the gateway
failed to process would cost the page.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import httpx
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult, Outcome
from alerts.pagers.http import HttpPoster, encoding_error
from alerts.render import render_text
from alerts.text_safety import xml_safe

WCTP_VERSION = "wctp-dtd-v1r3"
DOCTYPE = '<!DOCTYPE wctp-Operation SYSTEM "http://dtd.wctp.org/wctp-dtd-v1r3.dtd">'
DEFAULT_RETRYABLE_CODES = frozenset(range(500, 600))
# Our own short words for the codes (the gateway's errorText may echo message content).
_CODE_WORDS = {
    300: "operation not supported",
    301: "input not parseable",
    302: "XML validation error",
    303: "version not supported",
    304: "poll for messages first",
    400: "function not supported",
    401: "invalid senderID",
    402: "invalid security code",
    403: "invalid recipientID",
    404: "invalid authorization code",
    405: "invalid date or time",
    406: "unsupported date/time range",
    407: "invalid date/time period",
    408: "delivery window expired",
}


def message_id(notification_id: str, recipient: str) -> str:
    """The WCTP messageID of one delivery (32 hex digits, stable)."""
    digest = hashlib.sha256(f"{notification_id}\x1f{recipient}".encode())
    return digest.hexdigest()[:32]


def build_submit_request(
    n: Notification,
    recipient: str,
    *,
    sender_id: str,
    security_code: str | None,
    text: str,
    submitted_at: datetime,
) -> bytes:
    """The UTF-8 XML document of one enterprise SubmitRequest. Characters XML 1.0 forbids in
    ``text`` become ``?``; raises ValueError if a configured value (sender, security code,
    recipient) cannot be carried in XML."""
    op = ET.Element("wctp-Operation", wctpVersion=WCTP_VERSION)
    request = ET.SubElement(op, "wctp-SubmitRequest")
    stamp = submitted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    header = ET.SubElement(request, "wctp-SubmitHeader", submitTimestamp=stamp)
    originator = {"senderID": sender_id}
    if security_code:
        originator["securityCode"] = security_code
    ET.SubElement(header, "wctp-Originator", originator)
    ET.SubElement(
        header,
        "wctp-MessageControl",
        {
            "messageID": message_id(n.notification_id, recipient),
            "allowResponse": "true",
            "notifyWhenDelivered": "true",
            "deliveryPriority": "HIGH" if n.severity in ("critical", "high") else "NORMAL",
        },
    )
    ET.SubElement(header, "wctp-Recipient", recipientID=recipient)
    payload = ET.SubElement(request, "wctp-Payload")
    # The page text comes from the feed: a U+FFFE in a location must cost a "?", not make
    # the document ill-formed (which the gateway would refuse on every retry).
    ET.SubElement(payload, "wctp-Alphanumeric").text = text = xml_safe(text)
    for value in (sender_id, security_code or "", recipient, text):
        if xml_safe(value) != value:
            raise ValueError("character not allowed in XML")
    body = ET.tostring(op, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n{body}'.encode()


def classify_reply(body: bytes, retryable_codes: frozenset[int]) -> DeliveryResult:
    """Outcome of a 2xx reply's WCTP document."""
    try:
        root = SafeET.fromstring(body)  # no entity expansion, no external fetch
    except (ET.ParseError, DefusedXmlException, ValueError):
        return DeliveryResult.retryable("WCTP reply unparseable", "wctp-unparseable")
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if tag in ("wctp-Success", "wctp-ClientSuccess"):
            code = element.get("successCode", "200")
            return DeliveryResult.delivered(f"WCTP {code[:8]}", "2xx")
        if tag == "wctp-Failure":
            return _classify_failure(element.get("errorCode", ""), retryable_codes)
    return DeliveryResult.retryable("WCTP reply without result", "wctp-unparseable")


def _classify_failure(raw: str, retryable_codes: frozenset[int]) -> DeliveryResult:
    try:
        code = int(raw.strip())
    except ValueError:
        return DeliveryResult.final("WCTP failure without a code", "wctp-other")
    detail = f"WCTP {code} {_CODE_WORDS.get(code, '')}".rstrip()
    status_class = f"wctp-{code // 100}xx" if 300 <= code < 700 else "wctp-other"
    if code in retryable_codes:
        return DeliveryResult.retryable(detail, status_class)
    return DeliveryResult.final(detail, status_class)


class WctpPager:
    """Submits each notification to a WCTP gateway. Never retries: the dispatcher does."""

    def __init__(
        self,
        name: str,
        url: str,
        sender_id: str,
        security_code: str | None = None,
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
        *,
        max_chars: int = 500,
        retryable_codes: Iterable[int] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._url = url
        self._sender_id = sender_id
        self._security_code = security_code
        self._poster = HttpPoster(timeout_s, client)
        self._max_chars = max_chars
        self._retryable = (
            DEFAULT_RETRYABLE_CODES if retryable_codes is None else frozenset(retryable_codes)
        )
        self._clock = clock

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        try:
            body = build_submit_request(
                notification,
                recipient,
                sender_id=self._sender_id,
                security_code=self._security_code,
                text=render_text(notification, max_chars=self._max_chars),
                submitted_at=self._clock(),
            )
        except ValueError as exc:
            return encoding_error(exc)
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        reply = await self._poster.post(self._url, body=body, headers=headers)
        if reply.result.outcome is not Outcome.DELIVERED:  # no reply, or not a 2xx
            return reply.result
        return classify_reply(reply.body, self._retryable)

    async def close(self) -> None:
        await self._poster.close()
