"""Trusted-proxy sign-in: the user header counts only from the proxy's own addresses."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlmodel import Session

from service.api import ApiContext
from service.db.models import Alert
from service.runtime.auth_settings import AuthSettings
from tests.api.story import Story
from tests.api.web.chromium import RunningServer
from tests.security.signin_support import client_for, role_context

PROXY = "10.20.0.7"
OUTSIDER = "192.168.1.50"
ALICE = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": "staff, ls-clinicians"}


def proxy_context(story: Story) -> ApiContext:
    return role_context(
        story,
        mode="proxy",
        trusted_proxies=["10.20.0.0/24", "::1/128"],
        role_mapping={"ls-clinicians": "clinician", "ls-viewers": "viewer"},
    )


async def test_headers_from_an_untrusted_address_are_ignored(story: Story) -> None:
    async with client_for(proxy_context(story), peer=OUTSIDER) as client:
        page = await client.get("/worklist", headers=ALICE)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await client.get("/api/v1/alerts", headers=ALICE)).status_code == 401
        admin = {"X-Forwarded-User": "root", "X-Forwarded-Groups": "ls-clinicians"}
        alert = story.alert()
        forged = await client.post(f"/actions/alerts/{alert.id}/resolve", headers=admin)
        assert forged.status_code == 303
    with Session(story.app.engine) as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None and stored.status == "open"


async def test_headers_from_the_proxy_sign_the_user_in(story: Story) -> None:
    alert = story.alert()
    async with client_for(proxy_context(story), peer=PROXY) as client:
        page = await client.get("/worklist", headers=ALICE)
        assert page.status_code == 200
        assert (await client.get("/api/v1/alerts", headers=ALICE)).status_code == 200
        assert (await client.get("/api/v1/dead-letters", headers=ALICE)).status_code == 403
        form = re.search(
            rf'action="/actions/alerts/{alert.id}/ack".*?name="csrf" value="([^"]+)"',
            page.text,
            re.S,
        )
        assert form
        # Without the page's CSRF token the proxy's credentials alone act on nothing.
        bare = await client.post(
            f"/actions/alerts/{alert.id}/ack", data={"action": "other"}, headers=ALICE
        )
        assert bare.status_code == 403
        acked = await client.post(
            f"/actions/alerts/{alert.id}/ack",
            data={"action": "other", "note": "seen", "csrf": form.group(1)},
            headers=ALICE,
        )
        assert acked.status_code == 303
    with Session(story.app.engine) as session:
        stored = session.get(Alert, alert.id)
        assert stored is not None and stored.acked_by == "alice"


async def test_the_proxy_cannot_grant_what_the_mapping_does_not(story: Story) -> None:
    async with client_for(proxy_context(story), peer=PROXY) as client:
        unmapped = {"X-Forwarded-User": "mallory", "X-Forwarded-Groups": "admin,pharmacist"}
        assert (await client.get("/worklist", headers=unmapped)).status_code == 303
        # A name with control or bidi characters is no name.
        spoofed = {**ALICE, "X-Forwarded-User": "alice\u202e"}
        response = await client.get("/api/v1/alerts", headers=_latin1(spoofed))
        assert response.status_code == 401


def _latin1(headers: dict[str, str]) -> dict[str, bytes]:
    return {k: v.encode("utf-8") for k, v in headers.items()}


def test_proxy_mode_needs_the_proxy_addresses() -> None:
    with pytest.raises(ValueError, match="trusted_proxies"):
        AuthSettings(mode="proxy")
    with pytest.raises(ValueError, match="not an IP network"):
        AuthSettings(mode="proxy", trusted_proxies=["proxy.local"])
    settings = AuthSettings(mode="proxy", trusted_proxies=["10.20.0.0/24"])
    assert settings.proxy_trusted(PROXY) and not settings.proxy_trusted(OUTSIDER)
    assert not settings.proxy_trusted(None) and not settings.proxy_trusted("testclient")


async def test_the_real_server_checks_the_tcp_peer_not_x_forwarded_for(story: Story) -> None:
    # The daemon's uvicorn server: a local caller claiming, in X-Forwarded-For, to come from
    # the proxy's network is still the local peer it is.
    spoofed = {**ALICE, "X-Forwarded-For": PROXY}
    with RunningServer(proxy_context(story)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/api/v1/alerts", headers=spoofed)).status_code == 401
    trusting_local = role_context(
        story,
        mode="proxy",
        trusted_proxies=["127.0.0.1/32"],
        role_mapping={"ls-clinicians": "clinician"},
    )
    with RunningServer(trusting_local) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/api/v1/alerts", headers=ALICE)).status_code == 200
            assert (await client.get("/api/v1/alerts")).status_code == 401
