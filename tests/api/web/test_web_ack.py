"""Acknowledge and resolve from the worklist and the timeline, as a signed-in clinician."""

from __future__ import annotations

import re

import httpx
from sqlmodel import Session, select

from service.db.models import Alert
from tests.api.story import Story
from tests.security.signin_support import SECRETS, bearer, client_for, role_context


def _open_alert(story: Story, analyte: str) -> Alert:
    with Session(story.app.engine) as session:
        found = session.exec(
            select(Alert).where(Alert.analyte == analyte, Alert.status == "open")
        ).first()
    assert found is not None, f"the story has an open {analyte} alert"
    return found


def _form(page: str, alert_id: int, kind: str) -> str:
    found = re.search(
        rf'<form method="post" action="/actions/alerts/{alert_id}/{kind}".*?</form>', page, re.S
    )
    return found.group(0) if found else ""


def _options(form: str) -> set[str]:
    return set(re.findall(r'<option value="([^"]+)"', form))


def _csrf(form: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', form)
    assert found
    return found.group(1)


async def _signed_in(client: httpx.AsyncClient, role: str) -> None:
    response = await client.post("/login", data={"token": SECRETS[role], "next": "/worklist"})
    assert response.status_code == 303


async def test_reasons_offered_fit_the_alert(story: Story) -> None:
    calcium, phosphate = _open_alert(story, "calcium"), _open_alert(story, "phosphate")
    async with client_for(role_context(story)) as client:
        await _signed_in(client, "clinician")
        worklist = (await client.get("/worklist")).text
        timeline = (await client.get(f"/patients/{_ref(worklist, calcium.id)}")).text
        for page in (worklist, timeline):
            on_calcium = _options(_form(page, calcium.id or 0, "ack"))
            assert "iv-calcium" in on_calcium and "iv-phosphate" not in on_calcium
            on_phosphate = _options(_form(page, phosphate.id or 0, "ack"))
            assert "iv-phosphate" in on_phosphate and "iv-calcium" not in on_phosphate
            assert "IV phosphate started" not in _form(page, calcium.id or 0, "ack")
        # Posting the unfitting reason anyway is refused, on the page and on the API.
        form = _form(worklist, calcium.id or 0, "ack")
        refused = await client.post(
            f"/actions/alerts/{calcium.id}/ack",
            data={"action": "iv-phosphate", "csrf": _csrf(form)},
        )
        assert refused.status_code == 422
        api = await client.post(
            f"/api/v1/alerts/{calcium.id}/ack",
            json={"action": "iv-phosphate"},
            headers=bearer("clinician"),
        )
        assert api.status_code == 422 and "iv-calcium" in api.text
        reasons = await client.get(
            "/api/v1/ack-actions", params={"analyte": "calcium"}, headers=bearer("viewer")
        )
        assert "iv-phosphate" not in reasons.json() and "iv-calcium" in reasons.json()
    with Session(story.app.engine) as session:
        stored = session.get(Alert, calcium.id)
        assert stored is not None and stored.acked_at is None


def _ref(page: str, alert_id: int | None) -> str:
    # The timeline link of the list item holding this alert's forms.
    item = re.search(
        rf'<li[^>]*>\s*<a href="/patients/(\d+)">(?:(?!</li>).)*?/actions/alerts/{alert_id}/ack',
        page,
        re.S,
    )
    assert item
    return item.group(1)


async def test_ack_then_resolve_from_the_worklist(story: Story) -> None:
    alert = _open_alert(story, "phosphate")
    async with client_for(role_context(story)) as client:
        await _signed_in(client, "clinician")
        form = _form((await client.get("/worklist")).text, alert.id or 0, "ack")
        acked = await client.post(
            f"/actions/alerts/{alert.id}/ack",
            data={
                "action": "iv-phosphate",
                "note": "20 mmol",
                "csrf": _csrf(form),
                "back": "https://evil.example/",
            },
        )
        assert acked.status_code == 303 and acked.headers["location"] == "/worklist"
        after = (await client.get("/worklist")).text
        assert "acknowledged by token:clinician-desk" in after
        assert not _form(after, alert.id or 0, "ack"), "no second ack form"
        resolve = _form(after, alert.id or 0, "resolve")
        done = await client.post(
            f"/actions/alerts/{alert.id}/resolve", data={"csrf": _csrf(resolve)}
        )
        assert done.status_code == 303
    with Session(story.app.engine) as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None
        assert (stored.acked_by, stored.ack_action, stored.ack_note) == (
            "token:clinician-desk",
            "iv-phosphate",
            "20 mmol",
        )
        assert stored.status == "resolved"


async def test_forms_need_this_sessions_csrf_token(story: Story) -> None:
    alert = _open_alert(story, "calcium")
    context = role_context(story)
    async with client_for(context) as other:
        await _signed_in(other, "admin")
        foreign = _csrf(_form((await other.get("/worklist")).text, alert.id or 0, "ack"))
    async with client_for(context) as client:
        await _signed_in(client, "clinician")
        for csrf in ("", "forged.token", foreign):
            refused = await client.post(
                f"/actions/alerts/{alert.id}/ack", data={"action": "other", "csrf": csrf}
            )
            assert refused.status_code == 403 and "This form has expired" in refused.text
            gone = await client.post(f"/actions/alerts/{alert.id}/resolve", data={"csrf": csrf})
            assert gone.status_code == 403
    with Session(story.app.engine) as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None and stored.acked_at is None and stored.status == "open"


async def test_a_viewer_sees_no_buttons(story: Story) -> None:
    async with client_for(role_context(story)) as client:
        await _signed_in(client, "viewer")
        page = (await client.get("/worklist")).text
        assert "Open alerts" in page and "/actions/alerts/" not in page
