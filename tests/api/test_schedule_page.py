"""`/schedule`: who is on call per team and tier for the next 7 days, overrides marked,
behind sign-in (viewer role), from the routing the daemon pages with."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from alerts.roster_state import NewOverride, add_override
from service.api import ApiContext, create_app
from service.bootstrap import App, build_app
from service.notify.reload import RoutingReloader
from service.notify.rosters import update_state
from service.runtime.settings import load_settings
from tests.notify.helpers import write_routing

VIEWER_TOKEN = "viewer-token-0123456789"


@dataclass
class Site:
    app: App
    routing_file: Path
    client: httpx.AsyncClient


def _settings(database_url: str, routing_file: Path):  # type: ignore[no-untyped-def]
    return load_settings(
        overrides={
            "database": {"url": database_url},
            "channels": {"pager": {"type": "console"}, "email": {"type": "console"}},
            "routing": {"config": str(routing_file), "default_channels": []},
            "api": {"tokens": [f"ops:viewer:{VIEWER_TOKEN}"], "ack_secret": "s" * 32},
            "logging": {"format": "text"},
        }
    )


@pytest.fixture
async def site(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Site]:
    routing_file = write_routing(tmp_path / "routing.toml")
    app = build_app(_settings(sqlite_url, routing_file))
    context = ApiContext(
        settings=app.settings, engine=app.engine, clinical=app.clinical, pipeline=app.pipeline
    )
    transport = httpx.ASGITransport(app=create_app(context))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Site(app, routing_file, client)
    finally:
        app.close()


async def _sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", data={"token": VIEWER_TOKEN, "next": "/schedule"})
    assert response.status_code == 303 and response.headers["location"] == "/schedule"


def _override(site: Site, person: str, hours: int) -> None:
    now = datetime.now(UTC)
    entry = NewOverride("icu", 1, person, now + timedelta(hours=1), now + timedelta(hours=hours))
    paging_routing = site.app.pipeline.delivery.paging.routing  # type: ignore[attr-defined]
    update_state(site.routing_file, lambda s: add_override(s, paging_routing, entry, now)[0])


async def test_the_schedule_needs_a_signed_in_session(site: Site) -> None:
    response = await site.client.get("/schedule")
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/schedule"


async def test_every_team_and_tier_for_seven_days(site: Site) -> None:
    await _sign_in(site.client)
    page = (await site.client.get("/schedule")).text
    for team in ("icu", "nephrology", "oncology", "medicine", "pharmacy"):
        assert f'id="team-{team}"' in page
    icu = page.split('id="team-icu"')[1].split("</section>")[0]
    assert icu.count("<caption><strong>Tier") == 2
    # Weekly rotations of one member: 7 days are one or two segments (merged), all rotation.
    assert "icu-1" in icu and "icu-2" in icu and "override" not in icu
    assert 'name="viewport"' in page  # laid out for a phone


async def test_an_override_shows_after_the_daemon_reloads(site: Site) -> None:
    await _sign_in(site.client)
    _override(site, "icu-2", 5)
    before = (await site.client.get("/schedule")).text
    assert "override" not in before.split('id="team-icu"')[1].split("</section>")[0]
    # What the daemon does on SIGHUP: the page shows what pages would use.
    assert RoutingReloader(site.app.pipeline.delivery.paging, site.app.settings).reload()
    after = (await site.client.get("/schedule")).text
    icu = after.split('id="team-icu"')[1].split("</section>")[0]
    tier1 = icu.split("Tier 2")[0]
    rows = re.findall(r'<tr class="segment ([a-z-]+)">', tier1)
    # the rotation, the override (one hour from now, four hours long), the rotation again
    assert rows == ["rotation", "override", "rotation"]
    assert "icu-2" in tier1


async def test_without_the_daemon_the_page_reads_the_files(site: Site) -> None:
    _override(site, "icu-2", 5)
    context = ApiContext(
        settings=site.app.settings, engine=site.app.engine, clinical=site.app.clinical
    )
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await _sign_in(client)
        page = (await client.get("/schedule")).text
    assert '<tr class="segment override">' in page
