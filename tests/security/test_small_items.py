"""The smaller findings, each with its attack: XML-breaking characters in a WCTP page, bidi
overrides on pages and web pages, non-ASCII ack tokens and cookies, transport URLs in logs,
cached PHI, and uvicorn's coloured duplicate of every message."""

from __future__ import annotations

import io
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from markupsafe import Markup

from alerts.pagers.wctp import build_submit_request
from alerts.pagers.webhook import WebhookPager
from alerts.render import render_text
from alerts.text_safety import BIDI_CONTROLS, strip_bidi, xml_safe
from service.api import create_app
from service.runtime import logs
from tests.alerts.pagers.factories import make_notification
from tests.alerts.pagers.servers import HttpServer
from tests.api.story import TOKEN, Story

# -- WCTP: characters XML 1.0 forbids -----------------------------------------------------


@pytest.mark.parametrize("bad", ["\ufffe", "\uffff", "\x00", "\x1b", "\ud800", "\x0b"])
def test_a_location_xml_forbids_still_makes_a_well_formed_wctp_document(bad: str) -> None:
    n = make_notification(patient_location=f"4W{bad}412")
    text = render_text(n, max_chars=500) + bad  # also past render's own cleaning
    document = build_submit_request(
        n,
        "pager-1",
        sender_id="labsentinel",
        security_code=None,
        text=text,
        submitted_at=datetime(2024, 5, 14, tzinfo=UTC),
    )
    root = ET.fromstring(document)  # expat: refuses any ill-formed document
    payload = root.find("./wctp-SubmitRequest/wctp-Payload/wctp-Alphanumeric")
    assert payload is not None and payload.text is not None
    assert "4W" in payload.text and "412" in payload.text and bad not in payload.text


def test_xml_safe_keeps_everything_xml_allows() -> None:
    allowed = "tab\there\nline\r é ü 中 😀 \ud7ff \ue000 \ufffd"
    assert xml_safe(allowed) == allowed
    assert xml_safe("a\ufffeb\uffffc") == "a?b?c"


# -- bidi overrides -------------------------------------------------------------------------


def test_bidi_overrides_never_reach_a_page() -> None:
    # "4W\u202e214" displays as "4W412": another bed.
    n = make_notification(patient_location="4W\u202e214", reference_range="2.5\u20664.5")
    text = render_text(n)
    assert not any(c in text for c in BIDI_CONTROLS)
    assert "4W214" in text


def test_strip_bidi_removes_every_embedding_override_isolate_and_mark() -> None:
    every = "".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
    assert strip_bidi(f"a{every}\u200e\u200f\u061cb") == "ab"
    assert strip_bidi("Zoë 中 \u05d0") == "Zoë 中 \u05d0"  # letters of any script stay


@pytest.fixture
async def client(story: Story) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(story.context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def test_web_pages_print_no_bidi_override(story: Story) -> None:
    env = create_app(story.context).state.templates.env
    page = env.from_string("<p>{{ location }}</p>{{ chart }}<i>{{ 7 }}</i>").render(
        location="4W\u202e214<b>", chart=Markup("<svg>\u2067x</svg>")
    )
    assert page == "<p>4W214&lt;b&gt;</p><svg>x</svg><i>7</i>"  # still escaped, markup kept
    assert env.from_string("{{ v|nobidi }}").render(v="a\u202db") == "ab"


# -- non-ASCII in an ack token or a cookie --------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/ack/%C3%A9t%C3%A9.abc", "/ack/%E2%80%AEabc.def", "/ack/%FF%FE", "/ack/%00"]
)
async def test_a_non_ascii_ack_token_is_refused_not_an_error(
    client: httpx.AsyncClient, path: str
) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, path, data={"action": "ack"})
        assert 400 <= response.status_code < 500, (method, path, response.status_code)


@pytest.mark.parametrize(
    "cookie",
    ["é", "\u202e", "a.b\xff", "eyJ.é", "x" * 5000],
    ids=["e", "bidi", "ff", "dot", "long"],
)
async def test_a_non_ascii_session_cookie_signs_out_not_an_error(
    client: httpx.AsyncClient, cookie: str
) -> None:
    header = f"labsentinel_session={cookie}".encode()
    for path in ("/worklist", "/login", "/"):
        response = await client.get(path, headers={"Cookie": header})  # type: ignore[dict-item]
        assert response.status_code < 500, (path, response.status_code)
        assert response.status_code in (200, 303, 307, 401), (path, response.status_code)


# -- transport URLs in the logs -------------------------------------------------------------


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_paging_a_url_with_credentials_logs_no_secret(level: str) -> None:
    stream = io.StringIO()
    logs.configure(level, "json", stream=stream)
    try:
        with HttpServer() as server:
            base = server.url.replace("http://", "http://pager-user:PW-IN-USERINFO@")
            pager = WebhookPager("hook", f"{base}/hook?token=TOKEN-IN-QUERY")
            try:
                result = await pager.send(make_notification(), "pharmacy")
            finally:
                await pager.close()
        assert server.requests, result  # the page did go out
    finally:
        logs.configure("INFO", "text")
    written = stream.getvalue()
    assert "PW-IN-USERINFO" not in written and "TOKEN-IN-QUERY" not in written
    assert logging.getLogger("httpx").getEffectiveLevel() >= logging.WARNING


def test_uvicorns_coloured_copy_of_a_message_is_dropped() -> None:
    record = logging.makeLogRecord(
        {"msg": "api listening", "color_message": "\x1b[1mapi listening\x1b[0m", "port": 8080}
    )
    doc = json.loads(logs.JsonFormatter().format(record))
    assert "color_message" not in doc and doc["port"] == 8080
    assert "\x1b" not in logs.TextFormatter().format(record)


# -- caching --------------------------------------------------------------------------------


async def test_api_json_and_pages_are_never_stored(client: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    alerts = await client.get("/api/v1/alerts", headers=auth)
    refused = await client.get("/api/v1/alerts")
    login = await client.get("/login")
    assert alerts.status_code == 200 and alerts.headers["cache-control"] == "no-store"
    assert refused.headers["cache-control"] == "no-store"
    assert login.headers["cache-control"] == "no-store"
    signed_in = await client.post("/login", data={"token": TOKEN}, follow_redirects=True)
    assert "text/html" in signed_in.headers["content-type"]
    assert signed_in.headers["cache-control"] == "no-store"
    static = await client.get("/static/style.css")
    assert static.status_code == 200  # no patient data: may be cached
    assert static.headers.get("cache-control") != "no-store"
