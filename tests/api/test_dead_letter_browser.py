"""The dead-letter browser: search by reason, type, time, control id and text; bulk reprocess
(dry run, bounded, idempotent); admin-only pages with the raw message behind "show raw"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from service.api import ApiContext, create_app
from service.api.views.dead_letter_bulk import MAX_PER_CALL
from service.bootstrap import build_app
from service.db.models import DeadLetter
from service.ingest.pipeline import Incoming
from tests.api.story import ODD_UNIT, OTHER_TOKEN, QUIET_MRN, TOKEN, Story, build_story
from tests.api.story import story_settings as settings_of
from tests.messages import oru

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
VIEWER = {"Authorization": f"Bearer {OTHER_TOKEN}"}
ODD_IDS = ("ODDUNIT1", "ODDUNIT2", "ODDUNIT3")


@pytest.fixture
def story(database_url: str, tmp_path: Path) -> Iterator[Story]:
    """The story (a parse failure, a unit failure) plus three more unit failures."""
    built = build_story(database_url, tmp_path)
    for n, control_id in enumerate(ODD_IDS):
        drawn = built.now - timedelta(days=3, hours=n)
        raw = oru(QUIET_MRN, drawn, value="3.0", unit=ODD_UNIT, control_id=control_id)
        built.app.pipeline.process(Incoming(raw=raw, source="replay", topic="story.hl7"))
    try:
        yield built
    finally:
        built.app.close()


def _client(context: ApiContext) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(context))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(story: Story) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(story.context) as c:
        yield c


async def _total(client: httpx.AsyncClient, query: str) -> int:
    response = await client.get(f"/api/v1/dead-letters?{query}", headers=ADMIN)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def _statuses(story: Story) -> dict[int, str]:
    with Session(story.app.engine) as session:
        return {d.id or 0: d.status for d in session.exec(select(DeadLetter)).all()}


async def test_search_by_each_key(client: httpx.AsyncClient, story: Story) -> None:
    listed = (await client.get("/api/v1/dead-letters", headers=ADMIN)).json()
    assert listed["total"] == 5
    assert all("raw" not in d and d["size"] > 0 for d in listed["items"]), "metadata only"
    classes = {c["reason"]: c["count"] for c in listed["counts"]["classes"]}
    assert classes == {"unit": 4, "parse": 1}
    assert listed["counts"]["top_reasons"][0]["count"] == 4  # one fix clears four
    assert await _total(client, "reason=unit") == 4
    assert await _total(client, "error_class=parse") == 1  # the older name still works
    assert await _total(client, "message_type=ORU") == 4  # the parse failure has no MSH
    assert await _total(client, "message_type=oru%5ER01") == 4  # ORU^R01, any case
    assert await _total(client, "message_type=RDE") == 0
    assert await _total(client, "control_id=ODDUNIT2") == 1
    assert await _total(client, "control_id=ODDUNIT") == 0  # exact, not a prefix
    assert await _total(client, "q=oddunit") == 3  # text: control id, any case
    assert await _total(client, "q=NOT%20UNDERSTOOD") == 4  # text: the reason
    assert await _total(client, "q=50%25") == 0  # % is a character, not a wildcard
    later = (story.now + timedelta(days=1)).isoformat()
    assert await _total(client, f"since={later.replace('+', '%2B')}") == 0
    assert await _total(client, f"until={later.replace('+', '%2B')}") == 5
    assert await _total(client, "status=reprocessed") == 0
    paged = (await client.get("/api/v1/dead-letters?limit=2&offset=4", headers=ADMIN)).json()
    assert paged["total"] == 5 and len(paged["items"]) == 1
    for bad in ("reason=typo", "since=yesterday", "message_type=OR%25"):
        response = await client.get(f"/api/v1/dead-letters?{bad}", headers=ADMIN)
        assert response.status_code == 422 and bad.split("=")[0] in response.text


async def test_only_admins_browse_or_reprocess(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/dead-letters", headers=VIEWER)).status_code == 403
    body = {"filter": {"reason": "unit"}, "dry_run": True}
    refused = await client.post("/api/v1/dead-letters/reprocess", json=body, headers=VIEWER)
    assert refused.status_code == 403


async def test_bulk_reprocess_dry_run_bounds_and_idempotence(
    client: httpx.AsyncClient, story: Story, tmp_path: Path
) -> None:
    url = "/api/v1/dead-letters/reprocess"
    before = _statuses(story)
    dry = await client.post(
        url, json={"filter": {"reason": "unit"}, "dry_run": True}, headers=ADMIN
    )
    assert dry.status_code == 200 and dry.json()["selected"] == 4 and not dry.json()["results"]
    assert _statuses(story) == before, "a dry run runs nothing"
    too_many = {"ids": list(range(1, MAX_PER_CALL + 2))}
    assert (await client.post(url, json=too_many, headers=ADMIN)).status_code == 422
    empty = await client.post(url, json={"filter": {}}, headers=ADMIN)
    assert empty.status_code == 422, "an empty filter would select everything"
    both = {"ids": [1], "filter": {"reason": "unit"}}
    assert (await client.post(url, json=both, headers=ADMIN)).status_code == 422

    # After the fix (the lab catalog learns the unit), one call reprocesses all four.
    fixed = build_app(settings_of(story.settings.database.url, tmp_path, fixed_catalog=True))
    try:
        context = ApiContext(
            settings=fixed.settings,
            engine=fixed.engine,
            clinical=fixed.clinical,
            pipeline=fixed.pipeline,
        )
        async with _client(context) as fixed_client:
            first = (
                await fixed_client.post(url, json={"filter": {"reason": "unit"}}, headers=ADMIN)
            ).json()
            assert first["selected"] == 4 and first["reprocessed"] == 4
            assert {r["outcome"] for r in first["results"]} == {"stored"}
            # Again: nothing runs twice; every row is reported as skipped.
            again = (
                await fixed_client.post(url, json={"filter": {"reason": "unit"}}, headers=ADMIN)
            ).json()
            assert again["selected"] == 0 and len(again["skipped"]) == 4
            parse_id = next(i for i, s in _statuses(story).items() if s == "new")
            by_ids: dict[str, Any] = {"ids": [parse_id, first["results"][0]["id"], 999999]}
            mixed = (await fixed_client.post(url, json=by_ids, headers=ADMIN)).json()
            assert mixed["missing"] == [999999]
            assert mixed["skipped"] == [{"id": first["results"][0]["id"], "status": "reprocessed"}]
            assert mixed["selected"] == 1 and mixed["failed_again"] == 1  # still not HL7
    finally:
        fixed.close()
    # The parse failure failed again: filed again under a reprocess location, still new.
    assert list(_statuses(story).values()).count("reprocessed") == 4


async def _sign_in(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/login", data={"token": token, "next": "/dead-letters"})
    assert response.status_code == 303


async def test_pages_for_admins_with_raw_behind_show_raw(
    client: httpx.AsyncClient, story: Story
) -> None:
    signed_out = await client.get("/dead-letters")
    assert signed_out.status_code == 303 and "/login" in signed_out.headers["location"]
    await _sign_in(client, TOKEN)
    page = await client.get("/dead-letters?reason=unit")
    assert page.status_code == 200
    assert 'id="dl-reasons"' in page.text and "ODDUNIT2" in page.text
    assert "MSH|" not in page.text and QUIET_MRN not in page.text, "no message text in lists"
    unit_id = next(d.id for d in story.dead_letters() if d.error_class == "unit")
    detail = await client.get(f"/dead-letters/{unit_id}")
    assert detail.status_code == 200 and "Show raw message" in detail.text
    assert "MSH|" not in detail.text
    shown = await client.get(f"/dead-letters/{unit_id}?raw=1")
    assert "MSH|" in shown.text and 'id="dl-raw"' in shown.text
    assert (await client.get("/dead-letters/999999")).status_code == 404
    bad = await client.get("/dead-letters?since=yesterday")
    assert bad.status_code == 422 and "since" in bad.text

    # Bulk from the page: the first press only counts; the form must carry the CSRF token.
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    before = _statuses(story)
    form = {"csrf": csrf.group(1), "reason": "unit"}
    preview = await client.post("/dead-letters/reprocess", data=form)
    assert preview.status_code == 200 and "would be reprocessed" in preview.text
    assert _statuses(story) == before
    forged = await client.post("/dead-letters/reprocess", data={**form, "csrf": "x"})
    assert forged.status_code == 403


async def test_pages_refuse_a_viewer(client: httpx.AsyncClient) -> None:
    await _sign_in(client, OTHER_TOKEN)
    assert (await client.get("/dead-letters")).status_code == 403


def test_search_never_selects_the_payloads(story: Story) -> None:
    # A list over thousands of multi-megabyte rows must not pull them into memory: the raw
    # column appears in the SQL only inside length() and the MSH-9 match.
    from sqlalchemy import event

    from service.api.views.dead_letter_search import build_filter, reason_counts, search

    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = story.app.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        where = build_filter({"message_type": "ORU", "q": "unit"}, story.settings.hospital.zone)
        items, total = search(engine, where)
        reason_counts(engine, where)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert total == 4 and items
    uses = [s for s in statements if "dead_letters.raw" in s]
    assert uses, "the MSH-9 match and the size read the column inside the database"
    for statement in uses:
        bare = re.sub(r"(length|substr)\(dead_letters\.raw", "", statement)
        assert "dead_letters.raw" not in bare, statement
