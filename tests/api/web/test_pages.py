"""Clinician pages over the ASGI transport: sign-in, worklist, timeline, ack links."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlmodel import Session

from service.api import ApiContext, create_app
from service.api.auth import SESSION_COOKIE
from service.db.models import Alert
from service.notify.ack_tokens import make_ack_token
from tests.api.story import ACK_SECRET, ACTOR, MRN, TOKEN, Story


def _token(story: Story, alert: Alert, *, now=None, ttl_h: int = 12, public_id: str = "") -> str:  # type: ignore[no-untyped-def]
    return make_ack_token(
        ACK_SECRET.encode(), public_id or alert.public_id, now or story.now, timedelta(hours=ttl_h)
    )


async def _sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"token": TOKEN, "next": "/worklist"})
    assert response.status_code == 303 and response.headers["location"] == "/worklist"


def _urls(html: str) -> list[str]:
    return re.findall(r'(?:href|action|src)="([^"]*)"', html)


async def test_sign_in_sets_a_hardened_session_cookie(client: httpx.AsyncClient) -> None:
    first = await client.get("/worklist")
    assert first.status_code == 303 and first.headers["location"] == "/login?next=/worklist"
    wrong = await client.post("/login", data={"token": "guess", "next": "/worklist"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.cookies
    response = await client.post("/login", data={"token": TOKEN, "next": "https://evil.example/"})
    assert response.headers["location"] == "/worklist", "no open redirect"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and TOKEN not in cookie
    assert (await client.get("/worklist")).status_code == 200
    await client.post("/logout")
    client.cookies.clear()
    assert (await client.get("/worklist")).status_code == 303
    # A forged cookie is no session.
    client.cookies.set(SESSION_COOKIE, "9999999999.abc.def")
    assert (await client.get("/worklist")).status_code == 303


async def test_cookie_is_secure_behind_https(story: Story) -> None:
    settings = story.settings.model_copy(
        update={"api": story.settings.api.model_copy(update={"base_url": "https://ls.example"})}
    )
    context = ApiContext(settings=settings, engine=story.app.engine, clinical=story.app.clinical)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post("/login", data={"token": TOKEN})
        assert "Secure" in response.headers["set-cookie"]


async def test_worklist_and_timeline_without_phi_in_urls(
    client: httpx.AsyncClient, story: Story
) -> None:
    await _sign_in(client)
    worklist = await client.get("/worklist")
    assert worklist.status_code == 200
    page = worklist.text
    assert MRN in page  # in the page body, for the clinician ...
    # Day 21's pair was drawn on day 19 (inside its window): month 1 is the next check.
    assert "At risk now" in page and "Phos + Ca month 1: upcoming" in page
    links = _urls(page)
    assert not [u for u in links if MRN in u]  # ... never in a link
    patient_links = [u for u in links if u.startswith("/patients/")]
    assert patient_links
    timeline = await client.get(patient_links[0])
    assert timeline.status_code == 200
    html = timeline.text
    assert "<svg" in html and "Phosphate" in html and "Calcium" in html
    assert "IV iron: " in html and "Antiresorptive: " in html
    assert "page 2" in html and "critical 1" in html  # threshold lines, labelled
    assert not [u for u in _urls(html) if MRN in u]
    for header in ("Content-Security-Policy", "Referrer-Policy", "Cache-Control"):
        assert header in timeline.headers
    assert (await client.get("/patients/999999")).status_code == 404


async def test_ack_link_records_the_acknowledgement(
    client: httpx.AsyncClient, story: Story
) -> None:
    alert = story.alert()
    assert alert.severity in ("high", "critical")  # such a link needs sign-in (shipped default)
    token = _token(story, alert)
    await _sign_in(client)
    page = await client.get(f"/ack/{token}")
    assert page.status_code == 200
    assert 'id="ack-form"' in page.text and "Repeat labs ordered" in page.text
    # The alert's day count is from the iron dose to the result, not to today.
    assert f"drawn on day {alert.days_since_iron} after it" in page.text
    assert "days ago" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    unchosen = await client.post(f"/ack/{token}", data={"action": "", "csrf": csrf[1]})
    assert unchosen.status_code == 422 and "Choose what was done" in unchosen.text
    done = await client.post(
        f"/ack/{token}",
        data={
            "action": "iv-phosphate",
            "who": "Dr Night",  # typed names are ignored: the signed-in identity is the actor
            "note": "IV phosphate 20 mmol",
            "csrf": csrf[1],
        },
    )
    assert done.status_code == 200 and "Acknowledged" in done.text
    with Session(story.app.engine) as session:
        row = session.get(Alert, alert.id)
        assert row is not None and row.acked_by == ACTOR
        assert row.ack_action == "iv-phosphate" and row.ack_note == "IV phosphate 20 mmol"
    # Opening the link again shows who acknowledged, not the form.
    again = await client.get(f"/ack/{token}")
    assert "Already acknowledged by" in again.text and 'id="ack-form"' not in again.text


async def test_refused_ack_links_explain_what_to_do(
    client: httpx.AsyncClient, story: Story
) -> None:
    alert = story.alert()
    good = _token(story, alert)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    expired = _token(story, alert, now=story.now - timedelta(hours=100), ttl_h=72)
    other = _token(story, alert, public_id="no-such-alert-0000000")
    cases = [
        # (token, status, words on the page, what it protects)
        (forged, 403, "not valid", "a tampered signature is refused"),
        ("garbage", 403, "not valid", "a malformed token is refused"),
        (expired, 410, "expired", "an expired link says so and is 410 Gone"),
        (other, 404, "not found", "a token naming no alert is refused"),
    ]
    for token, status, words, why in cases:
        for response in (
            await client.get(f"/ack/{token}"),
            await client.post(f"/ack/{token}", data={"action": "other", "who": "X"}),
        ):
            assert response.status_code == status, why
            assert words in response.text and "worklist" in response.text, why
    with Session(story.app.engine) as session:
        row = session.get(Alert, alert.id)
        assert row is not None and row.acked_at is None, "no refused link acknowledged"
