"""WebhookPager against a real local HTTP server that verifies signatures."""

from __future__ import annotations

import json

import httpx
import pytest

from alerts.pagers import Outcome, Pager, WebhookPager
from alerts.render import render_text
from tests.alerts.pagers.factories import MRN, make_notification
from tests.alerts.pagers.servers import HttpServer, WebhookReceiver, refused_port

SECRET = "s3cret-shared-with-the-receiver"


def pager_for(server: HttpServer, **kwargs: object) -> WebhookPager:
    return WebhookPager("hooks", f"{server.url}/hook?token=abc", **kwargs)  # type: ignore[arg-type]


async def test_delivers_signed_json(http_server: HttpServer) -> None:
    receiver = WebhookReceiver(SECRET)
    http_server.responder = receiver
    pager = pager_for(http_server, secret=SECRET, headers={"Authorization": "Bearer t"})
    assert isinstance(pager, Pager)
    n = make_notification()
    result = await pager.send(n, "oncall-endo")
    await pager.close()

    assert result.outcome is Outcome.DELIVERED and result.status_class == "2xx"
    assert receiver.verified == [True]
    (request,) = http_server.requests
    assert request.method == "POST" and request.path == "/hook?token=abc"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["x-labsentinel-alert-id"] == n.dedup_key
    assert request.headers["x-labsentinel-notification-id"] == n.notification_id
    body = json.loads(request.body)
    assert body == {"notification": n.to_json(), "recipient": "oncall-endo", "text": render_text(n)}


async def test_idempotency_key_is_stable_per_delivery_and_distinct_per_recipient(
    http_server: HttpServer,
) -> None:
    receiver = WebhookReceiver(SECRET)
    http_server.responder = receiver
    pager = pager_for(http_server, secret=SECRET)
    n = make_notification()
    await pager.send(n, "oncall-endo")
    await pager.send(n, "oncall-endo")  # the dispatcher's retry of the same delivery
    await pager.send(n, "pharmacy")
    await pager.close()
    first, retry, other = receiver.idempotency_keys
    assert first == retry and first != other
    assert first.startswith(n.notification_id + ".")


async def test_receiver_rejects_a_wrong_secret_and_that_is_final(http_server: HttpServer) -> None:
    receiver = WebhookReceiver(SECRET)
    http_server.responder = receiver
    pager = pager_for(http_server, secret="not-the-secret")
    result = await pager.send(make_notification(), "oncall-endo")
    await pager.close()
    assert receiver.verified == [False]
    assert result.outcome is Outcome.FINAL and result.detail == "HTTP 401"


async def test_no_secret_no_signature(http_server: HttpServer) -> None:
    http_server.responder = WebhookReceiver(None)
    pager = pager_for(http_server)
    assert (await pager.send(make_notification(), "x")).outcome is Outcome.DELIVERED
    await pager.close()
    assert "x-labsentinel-signature" not in http_server.requests[0].headers


@pytest.mark.parametrize(
    ("status", "outcome", "status_class"),
    [
        (200, Outcome.DELIVERED, "2xx"),
        (202, Outcome.DELIVERED, "2xx"),
        (204, Outcome.DELIVERED, "2xx"),
        (408, Outcome.RETRYABLE, "4xx"),  # request timeout: try again
        (425, Outcome.RETRYABLE, "4xx"),  # too early
        (429, Outcome.RETRYABLE, "4xx"),  # rate limited: dropping it loses the page
        (500, Outcome.RETRYABLE, "5xx"),
        (502, Outcome.RETRYABLE, "5xx"),
        (503, Outcome.RETRYABLE, "5xx"),
        (400, Outcome.FINAL, "4xx"),  # our request is wrong: a repeat will be too
        (404, Outcome.FINAL, "4xx"),
        (410, Outcome.FINAL, "4xx"),
        (422, Outcome.FINAL, "4xx"),
        (301, Outcome.FINAL, "3xx"),  # redirects are not followed
    ],
)
async def test_http_status_classification(
    http_server: HttpServer, status: int, outcome: Outcome, status_class: str
) -> None:
    http_server.responder = WebhookReceiver(SECRET, status=status)
    pager = pager_for(http_server, secret=SECRET)
    result = await pager.send(make_notification(), "oncall-endo")
    await pager.close()
    assert (result.outcome, result.status_class, result.detail) == (
        outcome,
        status_class,
        f"HTTP {status}",
    )
    assert len(http_server.requests) == 1  # one attempt, never a retry inside the transport


async def test_timeout_is_retryable(http_server: HttpServer) -> None:
    http_server.responder = WebhookReceiver(SECRET, hang=True)
    pager = pager_for(http_server, secret=SECRET, timeout_s=0.3)
    result = await pager.send(make_notification(), "oncall-endo")
    await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "timeout"


async def test_refused_connection_is_retryable() -> None:
    with refused_port() as port:
        pager = WebhookPager("hooks", f"http://127.0.0.1:{port}/hook", SECRET, timeout_s=2)
        result = await pager.send(make_notification(), "oncall-endo")
        await pager.close()
    assert result.outcome is Outcome.RETRYABLE and result.status_class == "network"


async def test_bad_url_scheme_is_final() -> None:
    pager = WebhookPager("hooks", "ftp://127.0.0.1/hook", None)
    result = await pager.send(make_notification(), "x")
    await pager.close()
    assert result.outcome is Outcome.FINAL and result.status_class == "config"


@pytest.mark.parametrize(
    "overrides",
    [
        {"value": float("nan")},  # not JSON
        {"extra": {"obj": object()}},  # not JSON
        {"dedup_key": "dk\r\nX-Injected: 1"},  # would forge a header
    ],
)
async def test_unencodable_is_final_and_nothing_is_sent(
    http_server: HttpServer, overrides: dict[str, object]
) -> None:
    pager = pager_for(http_server, secret=SECRET)
    result = await pager.send(make_notification(**overrides), "x")
    await pager.close()
    assert result.outcome is Outcome.FINAL and result.status_class == "encoding"
    assert http_server.requests == []


async def test_details_carry_no_patient_data_or_url_tokens(http_server: HttpServer) -> None:
    http_server.responder = WebhookReceiver(SECRET, status=503)
    pager = pager_for(http_server, secret=SECRET)
    results = [await pager.send(make_notification(), "x")]
    with refused_port() as port:
        other = WebhookPager("h", f"http://127.0.0.1:{port}/?token=abc", SECRET)
        results.append(await other.send(make_notification(), "x"))
        await other.close()
    await pager.close()
    for result in results:
        assert MRN not in result.detail and "token" not in result.detail


async def test_a_client_passed_in_is_used_and_not_closed(http_server: HttpServer) -> None:
    http_server.responder = WebhookReceiver(None)
    async with httpx.AsyncClient() as client:
        pager = pager_for(http_server, client=client)
        assert (await pager.send(make_notification(), "x")).outcome is Outcome.DELIVERED
        await pager.close()
        await pager.close()
        assert not client.is_closed
