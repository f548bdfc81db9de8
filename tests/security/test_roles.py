"""Each role, allowed and refused, on each class of route; the actor is the caller's identity.

Routes are tried on ids that do not exist where the route would change something, so an
allowed call answers 404 (it got past the role check) and a refused one 403, on one story.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from service.api import ApiContext
from service.api.principal import require_role
from service.db.models import Alert, AlertEvent, Silence
from service.runtime.auth_settings import ROLES, granted_role, parse_api_token, role_rank
from tests.api.story import Story, build_story
from tests.security.signin_support import LEGACY, NAMES, SECRETS, bearer, client_for, role_context

MISSING = 999_999
SILENCE = {"unit": "4W", "reason": "unit closed", "hours": 1, "author": "Someone Else"}

# (what, method, path, json body, least role, status when allowed)
API_ROUTES: list[tuple[str, str, str, dict[str, Any] | None, str, int]] = [
    ("list alerts", "GET", "/api/v1/alerts", None, "viewer", 200),
    ("worklist", "GET", "/api/v1/worklist", None, "viewer", 200),
    ("ack reasons", "GET", "/api/v1/ack-actions", None, "viewer", 200),
    ("ack", "POST", f"/api/v1/alerts/{MISSING}/ack", {"action": "other"}, "clinician", 404),
    ("resolve", "POST", f"/api/v1/alerts/{MISSING}/resolve", None, "clinician", 404),
    ("end silence", "POST", f"/api/v1/silences/{MISSING}/expire", None, "pharmacist", 404),
    ("dead letters", "GET", "/api/v1/dead-letters", None, "admin", 200),
    ("raw HL7", "GET", f"/api/v1/dead-letters/{MISSING}", None, "admin", 404),
    ("reprocess", "POST", f"/api/v1/dead-letters/{MISSING}/reprocess", None, "admin", 404),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("what", "method", "path", "body", "least", "allowed"), API_ROUTES)
async def test_api_route_classes_by_role(
    story: Story,
    role: str,
    what: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    least: str,
    allowed: int,
) -> None:
    async with client_for(role_context(story)) as client:
        response = await client.request(method, path, json=body, headers=bearer(role))
    expected = allowed if role_rank(role) >= role_rank(least) else 403
    assert response.status_code == expected, f"{what} as {role}: {response.text}"
    if expected == 403:
        assert response.json() == {"detail": f"this needs the {least} role"}


async def test_no_bad_or_legacy_token_gets_more_than_it_should(story: Story) -> None:
    async with client_for(role_context(story)) as client:
        assert (await client.get("/api/v1/alerts")).status_code == 401
        wrong = {"Authorization": f"Bearer {SECRETS['admin']}x"}
        assert (await client.get("/api/v1/alerts", headers=wrong)).status_code == 401
        # The whole entry "name:role:secret" is not the credential: only the secret is.
        whole = {"Authorization": f"Bearer {NAMES['admin']}:admin:{SECRETS['admin']}"}
        assert (await client.get("/api/v1/alerts", headers=whole)).status_code == 401
        # A bare token of an older configuration reads, and does nothing else.
        legacy = {"Authorization": f"Bearer {LEGACY}"}
        assert (await client.get("/api/v1/alerts", headers=legacy)).status_code == 200
        refused = await client.post(f"/api/v1/alerts/{MISSING}/resolve", headers=legacy)
        assert refused.status_code == 403
        raw = await client.get("/api/v1/dead-letters", headers=legacy)
        assert raw.status_code == 403


async def test_a_site_may_keep_bare_tokens_at_a_role_it_chooses(story: Story) -> None:
    context = role_context(story, legacy_token_role="clinician")
    async with client_for(context) as client:
        legacy = {"Authorization": f"Bearer {LEGACY}"}
        resolve = await client.post(f"/api/v1/alerts/{MISSING}/resolve", headers=legacy)
        assert resolve.status_code == 404
        assert (await client.get("/api/v1/dead-letters", headers=legacy)).status_code == 403


async def _web_session(client: httpx.AsyncClient, role: str) -> str:
    signed = await client.post("/login", data={"token": SECRETS[role], "next": "/worklist"})
    assert signed.status_code == 303
    page = await client.get("/worklist")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


@pytest.mark.parametrize("role", ROLES)
async def test_web_pages_by_role(story: Story, role: str) -> None:
    alert = story.alert()
    async with client_for(role_context(story)) as client:
        csrf = await _web_session(client, role)
        may_act = role_rank(role) >= role_rank("clinician")
        assert bool(csrf) == may_act, "only those who may act get the forms"
        assert (await client.get("/worklist")).status_code == 200
        resolve = await client.post(
            f"/actions/alerts/{MISSING}/resolve", data={"csrf": csrf or "none"}
        )
        assert resolve.status_code == (404 if may_act else 403)
        if not may_act:
            assert "Not for your role" in resolve.text, "a page, not JSON, on the web"
        with Session(story.app.engine) as session:
            stored = session.get(Alert, alert.id)
            assert stored is not None and stored.status == "open"


def test_an_unknown_role_name_is_refused_where_routes_are_declared() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        require_role("superuser")


# Table of the pure role functions, each case says what it protects.
@pytest.mark.parametrize(
    ("values", "mapping", "default", "expected"),
    [
        # A value the mapping names gives its role.
        (["ls-clin"], {"ls-clin": "clinician"}, None, "clinician"),
        # A value spelling a role is nothing unless the mapping names it.
        (["admin"], {"ls-clin": "clinician"}, None, None),
        # Several mapped values: the highest wins.
        (["ls-clin", "ls-adm"], {"ls-clin": "clinician", "ls-adm": "admin"}, None, "admin"),
        # No mapped value: the default role, when the site sets one.
        (["other"], {"ls-clin": "clinician"}, "viewer", "viewer"),
        # Matching is exact: case and spaces matter.
        (["LS-CLIN", " ls-clin"], {"ls-clin": "clinician"}, None, None),
    ],
)
def test_granted_role(
    values: list[str], mapping: dict[str, Any], default: Any, expected: str | None
) -> None:
    assert granted_role(values, mapping, default) == expected


@pytest.mark.parametrize(
    ("entry", "name", "role", "secret"),
    [
        # The scoped form names the token and its role.
        ("ward-4w:clinician:s3cr3t", "ward-4w", "clinician", "s3cr3t"),
        # A secret may hold colons after the role.
        ("ops:admin:a:b:c", "ops", "admin", "a:b:c"),
        # An unknown role makes the whole entry a bare secret (least privilege).
        ("ops:root:abc", "legacy-", "viewer", "ops:root:abc"),
        # A bare secret keeps working, as a viewer.
        ("just-a-secret", "legacy-", "viewer", "just-a-secret"),
    ],
)
def test_parse_api_token(entry: str, name: str, role: str, secret: str) -> None:
    token = parse_api_token(entry, "viewer")
    assert token.name.startswith(name) and (token.role, token.secret) == (role, secret)


async def test_actor_is_the_caller_on_both_databases(database_url: str, tmp_path: Path) -> None:
    story = build_story(database_url, tmp_path)
    try:
        alert = story.alert()
        async with client_for(role_context(story)) as client:
            ack = await client.post(
                f"/api/v1/alerts/{alert.id}/ack",
                json={"action": "repeat-labs", "who": "Dr Impostor", "note": "n"},
                headers=bearer("clinician"),
            )
            assert ack.status_code == 200, ack.text
            resolve = await client.post(
                f"/api/v1/alerts/{alert.id}/resolve",
                json={"who": "Dr Impostor"},
                headers=bearer("clinician"),
            )
            assert resolve.status_code == 200
            silence = await client.post(
                "/api/v1/silences", json=SILENCE, headers=bearer("pharmacist")
            )
            assert silence.status_code == 201, silence.text
        clinician, pharmacist = f"token:{NAMES['clinician']}", f"token:{NAMES['pharmacist']}"
        with Session(story.app.engine) as session:
            stored = session.get(Alert, alert.id)
            assert stored is not None and stored.acked_by == clinician
            actors = session.exec(
                select(AlertEvent.actor).where(
                    AlertEvent.alert_id == alert.id, AlertEvent.kind == "resolved"
                )
            ).all()
            assert list(actors) == [clinician]
            authors = session.exec(select(Silence.author)).all()
            assert list(authors) == [pharmacist]
    finally:
        story.app.close()


async def test_a_token_session_follows_the_token_setting(story: Story) -> None:
    async with client_for(role_context(story)) as client:
        assert await _web_session(client, "clinician"), "a clinician gets the forms"
        cookie = client.cookies["labsentinel_session"]
    demoted = role_context(story)
    tokens = tuple(
        SecretStr(f"{NAMES['clinician']}:viewer:{SECRETS['clinician']}")
        if SECRETS["clinician"] in t.get_secret_value()
        else t
        for t in demoted.settings.api.tokens
    )
    for tokens_now, status, forms in ((tokens, 200, False), ((), 303, False)):
        settings = demoted.settings.model_copy(
            update={"api": demoted.settings.api.model_copy(update={"tokens": tokens_now})}
        )
        context = ApiContext(
            settings=settings, engine=story.app.engine, clinical=story.app.clinical
        )
        async with client_for(context) as client:
            client.cookies.set("labsentinel_session", cookie)
            page = await client.get("/worklist")
            assert page.status_code == status
            assert ("/actions/alerts/" in page.text) == forms
