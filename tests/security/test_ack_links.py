"""Ack links reveal nothing: the attack on a page's link, and who a link lets do what.

The attack: a synthetic feed is replayed and its pages go out through the real webhook and
SMTP transports to real local servers (masked identity on those channels). Everything a
receiver sees (URLs, headers, bodies, and the page behind each ack link) is searched for
every hex or base64 string, and the feed's whole MRN range is brute-forced against them with
the old derivations: the unsalted dedup key of (rule, patient, analyte, episode start), the
SMTP thread hash of it and the notification ids hashed from it. Nothing may match. The
attacker is given the exact rules, analytes and episode starts, which is more than any page
now says; a control check proves the search does find the keys the database really holds.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from alerts.dedup import dedup_key
from alerts.identity import patient_key
from service.api import ApiContext, create_app
from service.db.models import Alert
from service.db.prevention import AdvisoryRow, ReminderRow
from service.notify.ack_tokens import make_ack_token
from service.notify.outbox import notification_id
from service.runtime.settings import Settings, load_settings
from tests.alerts.pagers.servers import HttpServer, SmtpServer, WebhookReceiver
from tests.api.story import ACK_SECRET, MRN, OTHER_TOKEN, TOKEN, Story, build_story
from tests.notify.helpers import deliver, planted_feed, replay, smtp, write_routing

AUTHORITY = "GH"  # the synthetic feed's MRNs are GH's
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EVENTS = ("alert", "update", "escalation", "acknowledged", "resolved", "advisory", "reminder")
# Sliding windows of this many hex digits (64 bits) index what a receiver saw: a derived
# value is "found" when its first 16 hex digits occur anywhere in it.
WINDOW = 16
_HEXISH = re.compile(r"[0-9a-fA-F]{16,}")
_B64ISH = re.compile(r"[A-Za-z0-9+/_\-]{16,}={0,2}")


# -- the attack -------------------------------------------------------------------------------


def _attack_settings(database_url: str, tmp_path: Path, hook: str, mail: SmtpServer) -> Settings:
    routing = write_routing(tmp_path / "routing.toml")
    # Every page goes out over both transports under test.
    text = routing.read_text().replace(
        'page_channels = ["pager"]', 'page_channels = ["pager", "email"]'
    )
    routing.write_text(text)
    return load_settings(
        overrides={
            "database": {"url": database_url},
            "channels": {
                "pager": {"type": "webhook", "url": f"{hook}/page", "secret": "hook-secret"},
                "email": smtp(mail.host, mail.port),
            },
            "routing": {"config": str(routing), "default_channels": []},
            "paging": {"page_identity": "masked"},
            "dispatcher": {
                "retry_initial_s": 0.05,
                "retry_max_s": 0.2,
                "deadline_s": 3.0,
                "send_timeout_s": 1.0,
                "poll_interval_s": 0.05,
            },
            "api": {"ack_secret": ACK_SECRET, "base_url": "https://ls.hospital.test"},
            "logging": {"format": "text", "level": "DEBUG"},
        }
    )


def _decoded_forms(text: str) -> Iterator[str]:
    """``text`` itself, and the hex of every base64 / base64url run in it (and of every
    dot-separated part of one: a signed token is ``payload.signature``), and the text those
    decode to (a token's JSON payload)."""
    yield text
    for run in _B64ISH.findall(text):
        # A blob may sit after a path ("/ack/<token>") or a prefix: try every part and every
        # alignment.
        for part in {run, *re.split(r"[./]", run)}:
            for start in range(4):
                for decode in (base64.urlsafe_b64decode, base64.b64decode):
                    chunk = part[start:].rstrip("=")
                    try:
                        raw = decode(chunk + "=" * (-len(chunk) % 4))
                    except (binascii.Error, ValueError):
                        continue
                    yield raw.hex()
                    yield raw.decode("latin-1")


def _windows(texts: Iterable[str]) -> set[str]:
    """Every WINDOW-long stretch of every hex run found in ``texts`` or in what they decode
    to, lower-cased."""
    seen: set[str] = set()
    for text in texts:
        for form in _decoded_forms(text):
            for run in _HEXISH.findall(form):
                run = run.lower()
                seen.update(run[i : i + WINDOW] for i in range(len(run) - WINDOW + 1))
    return seen


def _derived(key: str) -> Iterator[str]:
    """The old key and what was hashed from it: the SMTP thread hash, the notification ids."""
    yield key
    yield hashlib.sha256(key.encode()).hexdigest()
    for event in EVENTS:
        for sequence in range(0, 6):
            yield notification_id(key, event, sequence)


def _mrn_space(mrns: Iterable[str], margin: int = 300) -> list[str]:
    """The feed's MRN range (``MRN`` + 8 digits), with ``margin`` numbers on either side."""
    numbers = sorted(int(m[3:]) for m in mrns)
    return [f"MRN{n:08d}" for n in range(numbers[0] - margin, numbers[-1] + margin + 1)]


def _identities(session: Session) -> list[tuple[str, str, Any]]:
    """(rule, analyte or label, episode start) of every alert, advisory and reminder."""
    found: list[tuple[str, str, Any]] = [
        (a.rule, a.analyte, a.episode_start) for a in session.exec(select(Alert)).all()
    ]
    found += [
        ("iron-antiresorptive-advisory", "advisory", a.episode_start)
        for a in session.exec(select(AdvisoryRow)).all()
    ]
    found += [
        ("iron-antiresorptive-monitoring", r.label, r.episode_start)
        for r in session.exec(select(ReminderRow)).all()
    ]
    return sorted(set(found), key=repr)


async def test_brute_forcing_the_mrn_space_against_what_receivers_see_finds_nothing(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver(secret="hook-secret")
    with HttpServer(receiver) as hook, SmtpServer() as mail:
        settings = _attack_settings(database_url, tmp_path, hook.url, mail)
        feed = planted_feed(planted=4)
        caplog.set_level(logging.DEBUG)
        app, _ = replay(settings, (r.value for r in feed.records))
        try:
            await deliver(app)
            seen: list[str] = []
            for request in hook.requests:
                seen.append(request.path)
                seen.extend(f"{k}: {v}" for k, v in request.headers.items())
                seen.append(request.body.decode("utf-8"))
            for _, message in mail.handler.messages:
                seen.append(message.as_string())
            links = sorted(
                set(
                    re.findall(
                        r"https://ls\.hospital\.test(/ack/[A-Za-z0-9._\-]+)", "\n".join(seen)
                    )
                )
            )
            # The page behind each link, as its holder (not signed in) sees it.
            context = ApiContext(settings=settings, engine=app.engine, clinical=app.clinical)
            transport = httpx.ASGITransport(app=create_app(context))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for link in links:
                    response = await client.get(link)
                    seen.append(f"{response.status_code} {response.headers} {response.text}")
            with Session(app.engine) as session:
                identities = _identities(session)
                stored_keys = {a.dedup_key for a in session.exec(select(Alert)).all()}
                stored_keys |= {a.dedup_key for a in session.exec(select(AdvisoryRow)).all()}
                stored_keys |= {r.id for r in session.exec(select(ReminderRow)).all()}
        finally:
            app.close()
    logged = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    assert any("notification queued" in line for line in logged), "the paging logs were captured"

    pages = [r for r in hook.requests if r.path == "/page"]
    assert pages and mail.handler.messages and links, "pages went out over both transports"
    assert all("x-labsentinel-alert-id" in r.headers for r in pages)
    assert not any("x-labsentinel-dedup-key" in r.headers for r in pages)
    feed_mrns = {case.patient_id for case in feed.planted}
    everything = "\n".join(seen)
    assert not [m for m in feed_mrns if m in everything], "masked channels carry no full MRN"

    windows = _windows(seen)
    space = _mrn_space(feed_mrns)
    tried: set[str] = set()
    hits = []
    for mrn in space:
        patient = patient_key(mrn, AUTHORITY)
        for rule, analyte, episode in identities:
            key = dedup_key(rule, patient, analyte, episode)
            tried.add(key)
            hits += [(mrn, rule) for value in _derived(key) if value[:WINDOW].lower() in windows]
    # Control: the search reproduces every key the database holds (it could find them) ...
    assert stored_keys <= tried
    # ... and none of them, nor anything hashed from them, reached a receiver.
    assert hits == []
    assert not [k for k in stored_keys if any(k in line for line in logged)], "no key in logs"
    log_windows = _windows(logged)
    assert not [k for k in stored_keys if k[:WINDOW] in log_windows]


def test_the_search_finds_a_leaked_key() -> None:
    # The search's own check: the old header, a key's thread hash and an old-style token
    # payload are each found (so an empty result above means nothing leaked).
    key = dedup_key("rule", patient_key("MRN12345678", AUTHORITY), "phosphate", _EPOCH)
    payload = base64.urlsafe_b64encode(f'{{"key":"{key}"}}'.encode()).decode().rstrip("=")
    for seen in (
        f"X-LabSentinel-Dedup-Key: {key}",
        f"References: <alert.{hashlib.sha256(key.encode()).hexdigest()[:32]}@h>",
        f"https://ls.hospital.test/ack/{payload}.c2lnbmF0dXJl",
    ):
        windows = _windows([seen])
        assert any(v[:WINDOW] in windows for v in _derived(key)), seen


# -- what a link lets its holder do -------------------------------------------------------------


@pytest.fixture
def story(database_url: str, tmp_path: Path) -> Iterator[Story]:
    built = build_story(database_url, tmp_path)
    try:
        yield built
    finally:
        built.app.close()


def _client(story: Story, **api: Any) -> httpx.AsyncClient:
    settings = story.settings
    if api:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=api)})
    context = ApiContext(settings=settings, engine=story.app.engine, clinical=story.app.clinical)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(context)), base_url="http://testserver"
    )


def _token(story: Story, public_id: str, *, hours_ago: int = 0, ttl_h: int = 12) -> str:
    issued = story.now - timedelta(hours=hours_ago)
    return make_ack_token(ACK_SECRET.encode(), public_id, issued, timedelta(hours=ttl_h))


def _row(story: Story, alert_id: int | None) -> Alert:
    with Session(story.app.engine) as session:
        row = session.get(Alert, alert_id)
    assert row is not None
    return row


async def _sign_in(client: httpx.AsyncClient, token: str, target: str) -> None:
    response = await client.post("/login", data={"token": token, "next": target})
    assert response.status_code == 303 and response.headers["location"] == target


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


async def test_forged_expired_and_unknown_tokens_are_refused(story: Story) -> None:
    alert = story.alert()
    good = _token(story, alert.public_id)
    body, signature = good.split(".")
    cases = [
        # (token, status, what it protects)
        (body + "." + signature[:-2] + ("AA" if not signature.endswith("AA") else "BB"), 403,
         "a tampered signature"),
        (make_ack_token(b"another-secret", alert.public_id, story.now, timedelta(hours=1)), 403,
         "a token signed with another key"),
        (_token(story, alert.public_id, hours_ago=13), 410, "a token past its 12 hours"),
        (_token(story, "no-such-alert-00000000"), 404, "a token naming no alert"),
        (_token(story, str(alert.id)), 404, "the row id is not an alert's name"),
        ("ünïcode.tøken", 403, "non-ASCII garbage"),
    ]  # fmt: skip
    async with _client(story, link_ack_without_signin=("info", "warning", "high", "critical")) as c:
        for token, status, why in cases:
            assert (await c.get(f"/ack/{token}")).status_code == status, why
            post = await c.post(f"/ack/{token}", data={"action": "other", "who": "Mallory"})
            assert post.status_code == status, why
    assert _row(story, alert.id).acked_at is None, "no refused link acknowledged"


async def test_a_high_alerts_link_without_sign_in_does_not_ack(story: Story) -> None:
    alert = story.alert()
    assert alert.severity in ("high", "critical")
    token = _token(story, alert.public_id)
    async with _client(story) as client:  # shipped setting: high and critical need sign-in
        page = await client.get(f"/ack/{token}")
        assert page.status_code == 303 and page.headers["location"] == f"/login?next=/ack/{token}"
        post = await client.post(f"/ack/{token}", data={"action": "repeat-labs", "who": "Mallory"})
        assert post.status_code == 303 and "/login" in post.headers["location"]
        assert _row(story, alert.id).acked_at is None
        # A viewer may look (full identity) but not acknowledge.
        await _sign_in(client, OTHER_TOKEN, f"/ack/{token}")
        viewed = await client.get(f"/ack/{token}")
        assert (
            viewed.status_code == 200 and MRN in viewed.text and 'id="ack-form"' not in viewed.text
        )
        refused = await client.post(
            f"/ack/{token}", data={"action": "repeat-labs", "csrf": _csrf_or_empty(viewed.text)}
        )
        assert refused.status_code == 403
        assert _row(story, alert.id).acked_at is None


def _csrf_or_empty(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    return found[1] if found else ""


async def test_before_sign_in_the_page_masks_the_patient(story: Story) -> None:
    alert = story.alert()
    token = _token(story, alert.public_id)
    async with _client(story, link_ack_without_signin=("high", "critical")) as client:
        page = await client.get(f"/ack/{token}")
        assert page.status_code == 200 and 'id="masked"' in page.text
        assert MRN not in page.text and f"…{MRN[-2:]}" in page.text
        room = alert.location.split("/", 1)[1] if "/" in alert.location else ""
        assert not room or alert.location not in page.text, "no room or bed before sign-in"
        await _sign_in(client, TOKEN, f"/ack/{token}")
        signed_in = await client.get(f"/ack/{token}")
        assert MRN in signed_in.text and 'id="masked"' not in signed_in.text


async def test_link_alone_acks_once_then_says_by_whom(story: Story) -> None:
    alert = story.alert()
    token = _token(story, alert.public_id)
    async with _client(story, link_ack_without_signin=("high", "critical")) as client:
        done = await client.post(
            f"/ack/{token}", data={"action": "repeat-labs", "who": "Dr Night", "note": "06:00"}
        )
        assert done.status_code == 200 and 'id="ack-done"' in done.text
        first = _row(story, alert.id)
        assert (first.acked_by, first.ack_action) == ("Dr Night", "repeat-labs")
        again = await client.get(f"/ack/{token}")
        assert 'id="already-acked"' in again.text and "Dr Night" in again.text
        assert 'id="ack-form"' not in again.text
        second = await client.post(
            f"/ack/{token}", data={"action": "not-relevant", "who": "Mallory", "note": ""}
        )
        assert "already acknowledged by" in second.text and "Dr Night" in second.text
    row = _row(story, alert.id)
    assert (row.acked_by, row.ack_action, row.acked_at) == (
        "Dr Night",
        "repeat-labs",
        first.acked_at,
    ), "a second ack changes nothing"


async def test_signed_in_ack_records_the_identity_not_a_typed_name(story: Story) -> None:
    alert = story.alert()
    token = _token(story, alert.public_id)
    async with _client(story) as client:
        await _sign_in(client, TOKEN, f"/ack/{token}")
        page = await client.get(f"/ack/{token}")
        assert 'id="acting-as"' in page.text and 'id="who"' not in page.text
        no_csrf = await client.post(f"/ack/{token}", data={"action": "repeat-labs"})
        assert no_csrf.status_code == 403
        assert _row(story, alert.id).acked_at is None
        done = await client.post(
            f"/ack/{token}",
            data={"action": "repeat-labs", "who": "Someone Else", "csrf": _csrf(page.text)},
        )
        assert done.status_code == 200
    assert _row(story, alert.id).acked_by == "token:story"
