"""The shared HTTP helper of the webhook and WCTP transports: one POST, outcome classified."""

from __future__ import annotations

import httpx
import pytest

from alerts.pagers.base import Outcome
from alerts.pagers.http import USER_AGENT, HttpPoster, classify_http_status


@pytest.mark.parametrize(
    ("status", "outcome", "status_class"),
    [
        (200, Outcome.DELIVERED, "2xx"),  # accepted
        (204, Outcome.DELIVERED, "2xx"),  # accepted without a body
        (302, Outcome.FINAL, "3xx"),  # a redirect is a misconfigured URL, never followed
        (400, Outcome.FINAL, "4xx"),  # our request is wrong: resending cannot help
        (404, Outcome.FINAL, "4xx"),  # wrong URL
        (408, Outcome.RETRYABLE, "4xx"),  # request timeout
        (425, Outcome.RETRYABLE, "4xx"),  # too early
        (429, Outcome.RETRYABLE, "4xx"),  # rate limited: dropping it would lose the page
        (500, Outcome.RETRYABLE, "5xx"),  # server error
        (503, Outcome.RETRYABLE, "5xx"),  # unavailable
        (99, Outcome.FINAL, "other"),  # nonsense status: bounded metric label
    ],
)
def test_status_classification(status: int, outcome: Outcome, status_class: str) -> None:
    result = classify_http_status(status)
    assert (result.outcome, result.status_class, result.detail) == (
        outcome,
        status_class,
        f"HTTP {status}",
    )


@pytest.mark.parametrize(
    ("error", "outcome", "status_class"),
    [
        (httpx.ConnectTimeout("t"), Outcome.RETRYABLE, "timeout"),  # gateway slow to accept
        (httpx.ReadTimeout("t"), Outcome.RETRYABLE, "timeout"),  # accepted, no answer in time
        (httpx.ConnectError("refused"), Outcome.RETRYABLE, "network"),  # gateway restarting
        (httpx.UnsupportedProtocol("ftp"), Outcome.FINAL, "config"),  # can never work
    ],
)
async def test_transport_errors_are_classified(
    error: Exception, outcome: Outcome, status_class: str
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    poster = HttpPoster(1.0, httpx.AsyncClient(transport=httpx.MockTransport(fail)))
    reply = await poster.post("http://gateway.example/p?token=s3cret", body=b"{}", headers={})
    assert (reply.result.outcome, reply.result.status_class, reply.body) == (
        outcome,
        status_class,
        b"",
    )
    assert "s3cret" not in reply.result.detail  # the exception type only, never the URL


async def test_reply_body_and_headers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"<ok/>")

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    poster = HttpPoster(1.0, client)
    reply = await poster.post(
        "http://gateway.example/",
        body=b"x",
        headers={"User-Agent": "spoofed", "X-A": "1"},
    )
    assert reply.result.outcome is Outcome.DELIVERED and reply.body == b"<ok/>"
    # our User-Agent wins over a configured header; configured headers are sent
    assert seen[0].headers["User-Agent"] == USER_AGENT and seen[0].headers["X-A"] == "1"
    await poster.close()
    assert not client.is_closed  # the caller's client is the caller's to close
    await client.aclose()
