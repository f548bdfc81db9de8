"""WctpPager against a real local HTTP server speaking WCTP 1.3."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from alerts.pagers import Outcome, Pager, WctpPager
from alerts.pagers.wctp import message_id
from alerts.render import render_text
from tests.alerts.pagers.factories import MRN, make_notification
from tests.alerts.pagers.servers import (
    WCTP_DOCTYPE,
    HttpServer,
    Reply,
    WctpGateway,
    refused_port,
    silent_tcp_port,
    wctp_client_success,
    wctp_failure,
    wctp_reply,
)

NOW = datetime(2024, 5, 13, 23, 2, 7, tzinfo=UTC)


@pytest.fixture
def gateway(http_server: HttpServer) -> WctpGateway:
    gateway = WctpGateway()
    http_server.responder = gateway
    return gateway


def pager_for(server: HttpServer, **kwargs: object) -> WctpPager:
    return WctpPager(
        name="spok",
        url=f"{server.url}/wctp?F=generic",
        sender_id="labsentinel",
        security_code="pw&<1>",
        clock=lambda: NOW,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_submit_request_and_success(http_server: HttpServer, gateway: WctpGateway) -> None:
    pager = pager_for(http_server)
    assert isinstance(pager, Pager)
    n = make_notification()
    result = await pager.send(n, "pager-4411")
    await pager.close()

    assert result.outcome is Outcome.DELIVERED and result.detail == "WCTP 200"
    (request,) = http_server.requests
    assert request.headers["content-type"].startswith("text/xml")
    assert b"<!DOCTYPE wctp-Operation" in request.body
    (sub,) = gateway.submitted
    assert sub["wctpVersion"] == "wctp-dtd-v1r3"
    assert sub["submitTimestamp"] == "2024-05-13T23:02:07"
    assert sub["senderID"] == "labsentinel" and sub["securityCode"] == "pw&<1>"
    assert re.fullmatch(r"[0-9a-f]{32}", sub["messageID"])
    assert sub["messageID"] == message_id(n.notification_id, "pager-4411")
    assert sub["deliveryPriority"] == "HIGH"
    assert sub["notifyWhenDelivered"] == "true" and sub["allowResponse"] == "true"
    assert sub["recipientID"] == "pager-4411"
    assert sub["text"] == render_text(n, max_chars=500)


async def test_client_form_success_is_delivered(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    gateway.answer(wctp_client_success())
    pager = pager_for(http_server)
    assert (await pager.send(make_notification(), "p")).outcome is Outcome.DELIVERED
    await pager.close()


async def test_message_id_is_stable_per_delivery_and_distinct_per_recipient(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    pager = pager_for(http_server)
    n = make_notification()
    for recipient in ("pager-1", "pager-1", "pager-2"):
        await pager.send(n, recipient)
    await pager.close()
    first, retry, other = (s["messageID"] for s in gateway.submitted)
    assert first == retry != other


@pytest.mark.parametrize(
    ("severity", "priority"),
    [("critical", "HIGH"), ("high", "HIGH"), ("warning", "NORMAL"), ("info", "NORMAL")],
)
async def test_delivery_priority(
    http_server: HttpServer, gateway: WctpGateway, severity: str, priority: str
) -> None:
    pager = pager_for(http_server)
    await pager.send(make_notification(severity=severity), "p")
    await pager.close()
    assert gateway.submitted[0]["deliveryPriority"] == priority


async def test_special_characters_are_escaped(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    location = "Ward <7B> & \"East\" ]]> 'bed' 12"
    recipient = "team&<on-call>\"'"
    pager = pager_for(http_server)
    n = make_notification(patient_location=location, ack_url="https://x/ack?a=1&b=<2>")
    result = await pager.send(n, recipient)
    await pager.close()
    assert result.outcome is Outcome.DELIVERED
    (sub,) = gateway.submitted  # the gateway parsed it: well-formed
    assert sub["recipientID"] == recipient
    assert location in sub["text"] and "https://x/ack?a=1&b=<2>" in sub["text"]


async def test_text_honours_max_chars(http_server: HttpServer, gateway: WctpGateway) -> None:
    pager = pager_for(http_server, max_chars=120)
    await pager.send(make_notification(), "p")
    await pager.close()
    text = gateway.submitted[0]["text"]
    assert len(text) <= 120 and "phosphate <0.9 mg/dL" in text and "Ack: https://" in text


@pytest.mark.parametrize(
    ("code", "outcome", "status_class"),
    [
        ("300", Outcome.FINAL, "wctp-3xx"),  # operation not supported
        ("301", Outcome.FINAL, "wctp-3xx"),  # our XML unparseable: the same again will be
        ("302", Outcome.FINAL, "wctp-3xx"),
        ("303", Outcome.FINAL, "wctp-3xx"),  # version not supported
        ("304", Outcome.FINAL, "wctp-3xx"),  # would need polling, which we do not do
        ("401", Outcome.FINAL, "wctp-4xx"),  # bad senderID: configuration
        ("402", Outcome.FINAL, "wctp-4xx"),  # bad security code
        ("403", Outcome.FINAL, "wctp-4xx"),  # bad recipientID: routing data
        ("408", Outcome.FINAL, "wctp-4xx"),  # delivery window expired
        ("500", Outcome.RETRYABLE, "wctp-5xx"),  # gateway-side processing trouble
        ("503", Outcome.RETRYABLE, "wctp-5xx"),
        ("599", Outcome.RETRYABLE, "wctp-5xx"),
        ("600", Outcome.FINAL, "wctp-6xx"),  # not documented as transient
        ("604", Outcome.FINAL, "wctp-6xx"),
        ("999", Outcome.FINAL, "wctp-other"),  # unknown code
        ("abc", Outcome.FINAL, "wctp-other"),  # garbled code
    ],
)
async def test_wctp_failure_codes(
    http_server: HttpServer,
    gateway: WctpGateway,
    code: str,
    outcome: Outcome,
    status_class: str,
) -> None:
    gateway.answer(wctp_failure(code, text=f"{MRN} said no"))  # errorText may echo content
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert (result.outcome, result.status_class) == (outcome, status_class)
    assert MRN not in result.detail
    assert len(http_server.requests) == 1


async def test_a_gateway_documented_transient_code_can_be_configured(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    gateway.answer(wctp_failure("604"))
    pager = pager_for(http_server, retryable_codes=[*range(500, 600), 604])
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.detail == "WCTP 604"


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (500, b"", Outcome.RETRYABLE),
        (503, wctp_failure("403"), Outcome.RETRYABLE),  # HTTP 5xx wins: never drop on a 5xx
        (502, b"<html>proxy error</html>", Outcome.RETRYABLE),
        (429, b"", Outcome.RETRYABLE),
        (404, b"", Outcome.FINAL),
        (401, wctp_failure("500"), Outcome.FINAL),  # HTTP 4xx: final whatever the body
    ],
)
async def test_http_errors(
    http_server: HttpServer, gateway: WctpGateway, status: int, body: bytes, outcome: Outcome
) -> None:
    gateway.answer(body, status=status)
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is outcome and result.detail == f"HTTP {status}"


@pytest.mark.parametrize(
    "body",
    [
        b"",  # empty 200
        b"OK",  # not XML
        b"<wctp-Operation><wctp-Confirmation>",  # truncated
        wctp_reply("<wctp-Confirmation/>"),  # XML, but neither success nor failure
    ],
)
async def test_unreadable_200_is_retryable(
    http_server: HttpServer, gateway: WctpGateway, body: bytes
) -> None:
    gateway.answer(body)
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "wctp-unparseable"


async def test_doctype_reply_parses_without_fetching_the_dtd(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    # The DTD lives on this very server, so a fetch would show up as a request.
    doctype = WCTP_DOCTYPE.format(dtd=f"{http_server.url}/wctp-dtd-v1r3.dtd")
    gateway.answer(
        wctp_reply(
            '<wctp-Confirmation><wctp-Success successCode="200"/></wctp-Confirmation>',
            doctype=doctype,
        )
    )
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is Outcome.DELIVERED
    assert [r.method for r in http_server.requests] == ["POST"]


async def test_reply_with_external_entity_is_not_expanded(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    doctype = (
        f'<!DOCTYPE wctp-Operation SYSTEM "{http_server.url}/wctp-dtd-v1r3.dtd" '
        f'[<!ENTITY xxe SYSTEM "{http_server.url}/secret">]>\n'
    )
    gateway.answer(
        wctp_reply(
            '<wctp-Confirmation><wctp-Success successCode="200">&xxe;</wctp-Success>'
            "</wctp-Confirmation>",
            doctype=doctype,
        )
    )
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is Outcome.RETRYABLE  # refused, not trusted, not fetched
    assert [r.method for r in http_server.requests] == ["POST"]


async def test_hanging_gateway_times_out_retryable(http_server: HttpServer) -> None:
    http_server.responder = lambda request: Reply(hang=True)
    pager = pager_for(http_server, timeout_s=0.3)
    result = await pager.send(make_notification(), "p")
    await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "timeout"


async def test_silent_listener_times_out_retryable() -> None:
    with silent_tcp_port() as port:
        pager = WctpPager("spok", f"http://127.0.0.1:{port}/wctp", "ls", None, timeout_s=0.3)
        result = await pager.send(make_notification(), "p")
        await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "timeout"


async def test_refused_connection_is_retryable() -> None:
    with refused_port() as port:
        pager = WctpPager("spok", f"http://127.0.0.1:{port}/wctp", "ls", None, timeout_s=2)
        result = await pager.send(make_notification(), "p")
        await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "network"


async def test_control_character_in_recipient_is_final_and_not_sent(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    pager = pager_for(http_server)
    result = await pager.send(make_notification(), "pager\x01")
    await pager.close()
    assert result.outcome is Outcome.FINAL and result.status_class == "encoding"
    assert http_server.requests == []


async def test_no_security_code_leaves_the_attribute_out(
    http_server: HttpServer, gateway: WctpGateway
) -> None:
    pager = WctpPager("spok", f"{http_server.url}/wctp", "ls")
    assert (await pager.send(make_notification(), "p")).outcome is Outcome.DELIVERED
    await pager.close()
    assert "securityCode" not in gateway.submitted[0]
