"""OpenID Connect sign-in against a real provider process (``tests/security/oidc_provider``).

The browser is an httpx client that follows the redirects by hand: the app (over ASGI) sends
it to the provider's authorization endpoint, it signs in there (the provider's form), the
provider sends it back to /auth/callback with a code, and the app redeems the code at the
provider's token endpoint over real HTTP (with the PKCE verifier) and checks the ID token.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from itsdangerous.encoding import base64_decode, base64_encode
from sqlmodel import Session

from service.api import ApiContext
from service.api.auth import SESSION_COOKIE
from service.api.context import SESSION_SALT
from service.api.signin_routes import FLOW_COOKIE
from service.db.models import Alert
from service.runtime.signing import Signer
from tests.api.story import Story, build_story
from tests.security.oidc_provider import Provider, running_provider
from tests.security.signin_support import BASE_URL, SECRETS, bearer, client_for, role_context

CALLBACK = f"{BASE_URL}/auth/callback"
MAPPING = {"ls-viewers": "viewer", "ls-clinicians": "clinician", "ls-admins": "admin"}


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(CALLBACK) as running:
        running.set_user("alice", {"preferred_username": "alice", "groups": ["ls-clinicians"]})
        # Claims a provider might carry that our mapping does not grant: "admin" spelled as
        # the role itself, and a group of another application.
        running.set_user(
            "mallory", {"preferred_username": "mallory", "groups": ["admin", "pharmacist"]}
        )
        running.set_user("vera", {"preferred_username": "vera", "groups": "ls-viewers"})
        yield running


def oidc_context(story: Story, provider: Provider, **extra: object) -> ApiContext:
    return role_context(
        story,
        mode="oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        role_mapping=MAPPING,
        **extra,
    )


async def authorize(app: httpx.AsyncClient, sub: str) -> tuple[str, httpx.Response]:
    """Start the flow on the app and sign in as ``sub`` at the provider: (callback, start)."""
    start = await app.get("/login/oidc", params={"next": "/worklist"})
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient(timeout=10) as browser:
        signed = await browser.post(start.headers["location"], data={"sub": sub})
    assert signed.status_code == 302, signed.text
    callback = signed.headers["location"]
    assert callback.startswith(CALLBACK + "?")
    return callback.removeprefix(BASE_URL), start


async def sign_in(app: httpx.AsyncClient, sub: str) -> httpx.Response:
    callback, _ = await authorize(app, sub)
    return await app.get(callback)


async def test_sign_in_uses_pkce_and_sets_a_hardened_session(
    story: Story, provider: Provider
) -> None:
    async with client_for(oidc_context(story, provider)) as app:
        callback, start = await authorize(app, "alice")
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
        assert query["nonce"] and query["state"]
        flow_cookie = start.headers["set-cookie"]
        assert FLOW_COOKIE in flow_cookie and "Path=/auth" in flow_cookie
        assert "HttpOnly" in flow_cookie and "SameSite=lax" in flow_cookie
        before = len(provider.verified)
        done = await app.get(callback)
        assert done.status_code == 303 and done.headers["location"] == "/worklist"
        assert len(provider.verified) == before + 1, "the code was redeemed with its verifier"
        session = [c for c in done.headers.get_list("set-cookie") if SESSION_COOKIE in c][0]
        assert "HttpOnly" in session and "SameSite=lax" in session
        page = await app.get("/worklist")
        assert page.status_code == 200 and "alice · clinician" in page.text
        # The JSON API takes no cookie: its POSTs carry no CSRF token.
        assert (await app.get("/api/v1/alerts")).status_code == 401


async def test_a_claim_the_mapping_does_not_grant_is_no_role(
    story: Story, provider: Provider
) -> None:
    async with client_for(oidc_context(story, provider)) as app:
        refused = await sign_in(app, "mallory")
        assert refused.status_code == 403 and "no LabSentinel role" in refused.text
        assert SESSION_COOKIE not in refused.cookies
        assert (await app.get("/worklist")).status_code == 303
    # With a default role the same identity gets that role and nothing more.
    async with client_for(oidc_context(story, provider, default_role="viewer")) as app:
        assert (await sign_in(app, "mallory")).status_code == 303
        assert (await app.get("/worklist")).status_code == 200
        alert = story.alert()
        resolve = await app.post(f"/actions/alerts/{alert.id}/resolve", data={"csrf": "x"})
        assert resolve.status_code == 403


def _tamper(cookie: str, **changes: str) -> str:
    payload, signature = cookie.split(".", 1)
    claims = json.loads(base64_decode(payload))
    claims.update(changes)
    body = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return base64_encode(body).decode() + "." + signature


async def test_a_tampered_session_cookie_is_no_session(story: Story, provider: Provider) -> None:
    context = oidc_context(story, provider)
    async with client_for(context) as app:
        assert (await sign_in(app, "vera")).status_code == 303
        genuine = app.cookies[SESSION_COOKIE]
        assert (await app.get("/worklist")).status_code == 200
        app.cookies.clear()
        for forged in (
            _tamper(genuine, role="admin"),
            _tamper(genuine, sub="alice"),
            genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),
            # Well formed and signed, but with a key the site does not hold.
            Signer(b"k" * 32, salt=SESSION_SALT).dumps(
                {"sub": "vera", "role": "admin", "src": "oidc", "sid": "s1"}
            ),
        ):
            app.cookies.set(SESSION_COOKIE, forged)
            page = await app.get("/worklist")
            assert page.status_code == 303 and page.headers["location"].startswith("/login")
            app.cookies.clear()
        # The same cookie, genuine, no longer counts once the site leaves OIDC.
    token_mode = role_context(story)
    async with client_for(token_mode) as app:
        app.cookies.set(SESSION_COOKIE, genuine)
        assert (await app.get("/worklist")).status_code == 303


async def test_a_stolen_code_is_useless_without_its_verifier(
    story: Story, provider: Provider
) -> None:
    async with client_for(oidc_context(story, provider)) as victim:
        victims_callback, _ = await authorize(victim, "alice")
    code = parse_qs(urlsplit(victims_callback).query)["code"][0]
    async with client_for(oidc_context(story, provider)) as attacker:
        # The attacker starts a flow of their own (their state, their verifier) and feeds
        # it the victim's code: the provider refuses the verifier.
        own_callback, _ = await authorize(attacker, "mallory")
        state = parse_qs(urlsplit(own_callback).query)["state"][0]
        injected = await attacker.get("/auth/callback", params={"code": code, "state": state})
        assert injected.status_code == 401
        assert SESSION_COOKIE not in injected.cookies
        # A callback without the flow cookie (another browser) is refused before any call.
        attacker.cookies.clear()
        orphan = await attacker.get(own_callback)
        assert orphan.status_code == 400 and SESSION_COOKIE not in orphan.cookies


async def test_actor_is_the_signed_in_identity(
    database_url: str, tmp_path: Path, provider: Provider
) -> None:
    story = build_story(database_url, tmp_path)
    try:
        async with client_for(oidc_context(story, provider)) as app:
            assert (await sign_in(app, "alice")).status_code == 303
            page = (await app.get("/worklist")).text
            alert = story.alert()
            form = re.search(
                rf'<form method="post" action="/actions/alerts/{alert.id}/ack".*?</form>',
                page,
                re.S,
            )
            assert form, "a clinician sees the ack form"
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.group(0))
            assert csrf
            acked = await app.post(
                f"/actions/alerts/{alert.id}/ack",
                data={"action": "repeat-labs", "note": "by Dr Who", "csrf": csrf.group(1)},
            )
            assert acked.status_code == 303, acked.text
        with Session(story.app.engine) as session:
            stored = session.get(Alert, alert.id)
            assert stored is not None and stored.acked_by == "alice"
            assert stored.ack_note == "by Dr Who"
    finally:
        story.app.close()


async def test_in_oidc_mode_tokens_do_not_sign_people_in(story: Story, provider: Provider) -> None:
    async with client_for(oidc_context(story, provider)) as app:
        page = await app.get("/login", params={"next": "/patients/1"})
        assert 'href="/login/oidc?next=/patients/1"' in page.text
        assert 'name="token"' not in page.text
        refused = await app.post("/login", data={"token": SECRETS["admin"]})
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies
        # The API still takes its bearer tokens.
        assert (await app.get("/api/v1/alerts", headers=bearer("viewer"))).status_code == 200


async def test_an_unreachable_provider_is_said_plainly(story: Story, unused_port: int) -> None:
    context = role_context(
        story, mode="oidc", oidc_issuer=f"http://127.0.0.1:{unused_port}", oidc_client_id="x"
    )
    async with client_for(context) as app:
        start = await app.get("/login/oidc")
        assert start.status_code == 503 and "unavailable" in start.text
        assert SESSION_COOKIE not in start.cookies


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
