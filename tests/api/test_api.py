"""The JSON API against a real SQLite database (and one PostgreSQL run of the main flows)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import create_engine
from sqlmodel import Session, select

from service.api import ApiContext, Readiness, api_routes, create_app
from service.bootstrap import build_app
from service.db.models import Alert, AlertEvent, DeadLetter
from tests.api.story import (
    ACTOR,
    MRN,
    QUIET_MRN,
    TOKEN,
    Story,
    build_story,
    story_settings,
)


def _api_routes() -> list[tuple[str, str]]:
    """Every route of the JSON API router (FastAPI keeps included routers nested)."""
    found = []
    for route in api_routes.router.routes:
        if isinstance(route, APIRoute):
            path = route.path.replace("{alert_id}", "1").replace("{dl_id}", "1")
            path = path.replace("{ref}", "1").replace("{silence_id}", "1")
            found.extend((method, path) for method in sorted(route.methods))
    return found


async def test_every_api_route_refuses_without_a_valid_token(story: Story) -> None:
    app = create_app(story.context)
    routes = _api_routes()
    # The list is the real one: every documented path is in it.
    documented = {p for p in app.openapi()["paths"]}
    assert documented <= {r.path for r in api_routes.router.routes}
    assert len(routes) >= 12
    bad_headers = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},  # a prefix match is no match
        {"Authorization": f"Basic {TOKEN}"},
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for method, path in routes:
            for headers in bad_headers:
                response = await client.request(method, path, headers=headers, json={})
                assert response.status_code in (401, 403), (method, path, headers)
        # Web pages other than the ack page send the browser to the sign-in page.
        for path in ("/worklist", "/patients/1"):
            response = await client.get(path)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/login?next=")
        # The open routes stay open.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/ack/not-a-token")).status_code == 403


async def test_no_token_configured_refuses_everyone(story: Story, tmp_path: Path) -> None:
    settings = story.settings.model_copy(
        update={"api": story.settings.api.model_copy(update={"tokens": ()})}
    )
    context = ApiContext(settings=settings, engine=story.app.engine, clinical=story.app.clinical)
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/api/v1/alerts", headers={"Authorization": "Bearer "})
        assert response.status_code == 401


async def test_openapi_document_describes_the_api(client: httpx.AsyncClient, auth) -> None:
    doc = (await client.get("/api/v1/openapi.json", headers=auth)).json()
    paths = set(doc["paths"])
    for path in (
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/alerts/{alert_id}/ack",
        "/api/v1/alerts/{alert_id}/resolve",
        "/api/v1/dead-letters",
        "/api/v1/dead-letters/{dl_id}/reprocess",
        "/api/v1/patients/{ref}/timeline",
    ):
        assert path in paths
    assert "bearer" in doc["components"]["securitySchemes"]
    # Nothing identifying a patient in a path or a query parameter name.
    assert not any("mrn" in p.lower() or "patient_id" in p for p in paths)


async def test_alert_filters(client: httpx.AsyncClient, auth, story: Story) -> None:
    everything = (await client.get("/api/v1/alerts", headers=auth)).json()
    assert everything["total"] == 2
    assert {a["analyte"] for a in everything["items"]} == {"phosphate", "calcium"}
    ref = everything["items"][0]["patient"]["ref"]
    cases = [
        # (query, expected count, what it protects)
        ({"status": "open"}, 2, "both paged alerts are open"),
        ({"status": "resolved"}, 0, "nothing resolved yet"),
        ({"severity": "critical"}, 2, "double trouble raised both to critical"),
        ({"severity": "warning"}, 0, "severity filters exactly"),
        ({"patient": ref}, 2, "patient filter by opaque ref"),
        ({"patient": ref + 1000}, 0, "unknown ref gives nothing, not everything"),
        ({"status": "open", "severity": "critical", "patient": ref}, 2, "filters combine"),
        ({"limit": 1}, 1, "paging"),
    ]
    for params, count, why in cases:
        body = (await client.get("/api/v1/alerts", params=params, headers=auth)).json()
        assert len(body["items"]) == count, why
    refused = await client.get("/api/v1/alerts", params={"status": "bogus"}, headers=auth)
    assert refused.status_code == 422


async def test_alert_detail_has_notifications_and_delivery_attempts(
    client: httpx.AsyncClient, auth, story: Story
) -> None:
    alert = story.alert()
    doc = (await client.get(f"/api/v1/alerts/{alert.id}", headers=auth)).json()
    assert doc["patient"]["id"] == MRN and doc["status"] == "open"
    assert doc["iron"]["drug"] and doc["antiresorptive"]["drug"]
    assert doc["notifications"], "the alert was paged"
    delivery = doc["notifications"][0]["deliveries"][0]
    assert delivery["status"] == "sent"
    assert delivery["history"][0]["outcome"] == "delivered"
    assert (await client.get("/api/v1/alerts/999999", headers=auth)).status_code == 404


async def test_ack_and_resolve(client: httpx.AsyncClient, auth, story: Story) -> None:
    alert = story.alert()
    # "who" is ignored: the actor is the caller's identity.
    body = {"action": "repeat-labs", "who": "Dr Test", "note": "Phos and Ca tomorrow 6am"}
    first = await client.post(f"/api/v1/alerts/{alert.id}/ack", json=body, headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["already_acknowledged"] is False
    again = await client.post(f"/api/v1/alerts/{alert.id}/ack", json=body, headers=auth)
    assert again.json()["already_acknowledged"] is True
    bad = await client.post(
        f"/api/v1/alerts/{alert.id}/ack", json={**body, "action": "nope"}, headers=auth
    )
    assert bad.status_code == 422
    missing = await client.post("/api/v1/alerts/999999/ack", json=body, headers=auth)
    assert missing.status_code == 404
    with Session(story.app.engine) as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None
        assert (stored.acked_by, stored.ack_action) == (ACTOR, "repeat-labs")

    resolved = await client.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"who": "Dr Test"}, headers=auth
    )
    assert resolved.json()["status"] == "resolved" and resolved.json()["changed"] is True
    twice = await client.post(
        f"/api/v1/alerts/{alert.id}/resolve", json={"who": "Dr Test"}, headers=auth
    )
    assert twice.json()["changed"] is False
    listed = (await client.get("/api/v1/alerts?status=resolved", headers=auth)).json()
    assert [a["id"] for a in listed["items"]] == [alert.id]
    missing_alert = await client.post(
        "/api/v1/alerts/999999/resolve", json={"who": "Dr Test"}, headers=auth
    )
    assert missing_alert.status_code == 404


async def test_history_shows_who_resolved_the_alert_by_hand(
    client: httpx.AsyncClient, auth, story: Story
) -> None:
    alert = story.alert()
    body = {"who": "Dr Review"}
    await client.post(f"/api/v1/alerts/{alert.id}/resolve", json=body, headers=auth)
    # A second resolve changes nothing, so it adds no second entry.
    await client.post(f"/api/v1/alerts/{alert.id}/resolve", json=body, headers=auth)
    history = (await client.get(f"/api/v1/alerts/{alert.id}/history", headers=auth)).json()
    resolved = [entry for entry in history if entry["kind"] == "resolved"]
    assert len(resolved) == 1 and ACTOR in resolved[0]["summary"]
    with Session(story.app.engine) as session:
        events = session.exec(
            select(AlertEvent).where(AlertEvent.alert_id == alert.id, AlertEvent.kind == "resolved")
        ).all()
    assert [event.actor for event in events] == [ACTOR]


async def test_dead_letters_list_show_and_reprocess_after_a_fix(
    client: httpx.AsyncClient, auth, story: Story, tmp_path: Path
) -> None:
    listed = (await client.get("/api/v1/dead-letters", headers=auth)).json()
    assert listed["total"] == 2
    assert all("raw" not in item for item in listed["items"]), "lists never carry HL7"
    unit = next(d for d in listed["items"] if d["error_class"] == "unit")
    shown = (await client.get(f"/api/v1/dead-letters/{unit['id']}", headers=auth)).json()
    assert shown["raw"].startswith("MSH|") and "not understood" in shown["reason"]
    assert shown["topic"] == "story.hl7"
    only_parse = await client.get("/api/v1/dead-letters?error_class=parse", headers=auth)
    assert only_parse.json()["total"] == 1

    # Before the fix, reprocessing fails the same way and the row stays new.
    before = await client.post(f"/api/v1/dead-letters/{unit['id']}/reprocess", headers=auth)
    assert before.json()["outcome"] == "dead_letter" and before.json()["status"] == "new"

    # The fix: the lab catalog learns the unit. A process started with it reprocesses.
    fixed = build_app(story_settings(story.settings.database.url, tmp_path, fixed_catalog=True))
    try:
        context = ApiContext(
            settings=fixed.settings,
            engine=fixed.engine,
            clinical=fixed.clinical,
            pipeline=fixed.pipeline,
        )
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as fixed_client:
            after = await fixed_client.post(
                f"/api/v1/dead-letters/{unit['id']}/reprocess", headers=auth
            )
            assert after.status_code == 200
            assert after.json()["outcome"] == "stored"
            assert after.json()["status"] == "reprocessed"
    finally:
        fixed.close()
    with Session(story.app.engine) as session:
        row = session.get(DeadLetter, unit["id"])
        assert row is not None and row.status == "reprocessed" and row.reprocessed_at
    missing = await client.post("/api/v1/dead-letters/999999/reprocess", headers=auth)
    assert missing.status_code == 404


async def test_patient_lookup_and_timeline(client: httpx.AsyncClient, auth) -> None:
    found = await client.post("/api/v1/patients/lookup", json={"patient_id": MRN}, headers=auth)
    ref = found.json()["ref"]
    doc = (await client.get(f"/api/v1/patients/{ref}/timeline", headers=auth)).json()
    analytes = {r["analyte"] for r in doc["results"]}
    assert {"phosphate", "calcium"} <= analytes
    classes = {e["drug_class"] for e in doc["exposures"]}
    assert classes == {"iv_iron", "antiresorptive"}
    assert len(doc["alerts"]) == 2
    assert doc["thresholds"]["phosphate"]["high"] == 2.0
    missing = await client.post(
        "/api/v1/patients/lookup", json={"patient_id": "NOBODY"}, headers=auth
    )
    assert missing.status_code == 404


async def test_worklist_lists_patients_at_risk_with_due_labs(
    client: httpx.AsyncClient, auth
) -> None:
    doc = (await client.get("/api/v1/worklist", headers=auth)).json()
    assert len(doc["open_alerts"]) == 2
    at_risk = {r["patient_id"]: r for r in doc["at_risk"]}
    # The quiet patient's iron window closed months ago.
    assert set(at_risk) == {MRN} and QUIET_MRN not in at_risk
    states = {m["label"]: m["state"] for m in at_risk[MRN]["monitoring"]}
    # Day 21 today. The configured plan (baseline, day 7, day 21 with 3 days' grace, then
    # monthly): the pair drawn on day 19 is inside day 21's window, so month 1 is next.
    assert states == {
        "baseline": "done",
        "day 7": "done",
        "day 21": "done",
        "month 1": "upcoming",
        "month 2": "upcoming",
        "month 3": "upcoming",
    }


async def test_readyz_names_what_is_not_ready(story: Story) -> None:
    class State:
        connected, joined, assigned = True, True, 0  # a standby: no partition, ready

    class Dispatcher:
        running = True

    ready = ApiContext(
        settings=story.settings,
        engine=story.app.engine,
        clinical=story.app.clinical,
        readiness=Readiness(consumer=State(), dispatcher=Dispatcher()),
    )
    down = create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    unready = ApiContext(
        settings=story.settings, engine=down, clinical=story.app.clinical, readiness=Readiness()
    )
    for context, status, failing in (
        (ready, 200, []),
        (unready, 503, ["database", "broker", "group", "dispatcher"]),
    ):
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/readyz")
            assert response.status_code == status
            assert response.json()["failing"] == failing
            assert (await client.get("/healthz")).json() == {"status": "ok"}
    down.dispose()


@pytest.mark.postgres
async def test_main_flows_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    story = build_story(pg_url, tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        transport = httpx.ASGITransport(app=create_app(story.context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            listed = (await client.get("/api/v1/alerts?severity=critical", headers=auth)).json()
            assert listed["total"] == 2
            alert_id = listed["items"][0]["id"]
            detail = (await client.get(f"/api/v1/alerts/{alert_id}", headers=auth)).json()
            assert detail["notifications"][0]["deliveries"]
            ack = await client.post(
                f"/api/v1/alerts/{alert_id}/ack",
                json={"action": "repeat-labs", "who": "Dr PG"},
                headers=auth,
            )
            assert ack.json()["already_acknowledged"] is False
            dead = (await client.get("/api/v1/dead-letters", headers=auth)).json()
            assert dead["total"] == 2
            ref = detail["patient"]["ref"]
            timeline = (await client.get(f"/api/v1/patients/{ref}/timeline", headers=auth)).json()
            assert timeline["exposures"]
            worklist = (await client.get("/api/v1/worklist", headers=auth)).json()
            assert [r["patient_id"] for r in worklist["at_risk"]] == [MRN]
    finally:
        story.app.close()


async def test_silences_add_list_expire(client: httpx.AsyncClient, auth) -> None:
    body = {
        "unit": "4W",
        "author": "Charge nurse",
        "reason": "unit closed for cleaning",
        "hours": 4,
    }
    added = await client.post("/api/v1/silences", json=body, headers=auth)
    assert added.status_code == 201, added.text
    silence = added.json()
    assert silence["unit"] == "4W"
    assert silence["author"] == ACTOR, "the caller's identity, not the typed author"
    assert silence["expired_at"] is None
    listed = (await client.get("/api/v1/silences", headers=auth)).json()
    assert [s["id"] for s in listed] == [silence["id"]]
    # A silence that would mute everything, or lasts no time, is refused with the reason.
    everything = {**body, "unit": ""}
    assert (await client.post("/api/v1/silences", json=everything, headers=auth)).status_code == 422
    expired = await client.post(f"/api/v1/silences/{silence['id']}/expire", headers=auth)
    assert expired.json()["expired_at"] is not None
    assert (await client.get("/api/v1/silences", headers=auth)).json() == []
    everyone = (await client.get("/api/v1/silences?include_expired=true", headers=auth)).json()
    assert [s["id"] for s in everyone] == [silence["id"]]
    assert (await client.post("/api/v1/silences/99999/expire", headers=auth)).status_code == 404


async def test_alert_history_lists_notifications_and_acknowledgement(
    client: httpx.AsyncClient, auth, story: Story
) -> None:
    alert = story.alert()
    body = {"action": "iv-phosphate", "who": "Dr History", "note": "started"}
    await client.post(f"/api/v1/alerts/{alert.id}/ack", json=body, headers=auth)
    history = (await client.get(f"/api/v1/alerts/{alert.id}/history", headers=auth)).json()
    kinds = [entry["kind"] for entry in history]
    assert "notification" in kinds and "acknowledged" in kinds
    assert (await client.get("/api/v1/alerts/99999/history", headers=auth)).status_code == 404
