"""What the sign-in and role tests share: one token per role, and an app with auth settings.

Each role has a scoped token (``api.tokens`` entry ``name:role:secret``); ``LEGACY`` is a bare
token, the format of older configurations. Secrets are 32+ characters, as a site's must be.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from service.api import ApiContext, create_app
from service.runtime.auth_settings import ROLES, AuthSettings
from tests.api.story import Story

SECRETS = {role: f"{role}-secret-0123456789abcdefghijklmnop" for role in ROLES}
NAMES = {role: f"{role}-desk" for role in ROLES}
LEGACY = "legacy-bare-secret-0123456789abcdefghijk"
BASE_URL = "http://testserver"


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[role]}"}


def role_context(story: Story, **auth: Any) -> ApiContext:
    """The story's database behind an app with a token per role and ``auth`` settings."""
    tokens = tuple(SecretStr(f"{NAMES[r]}:{r}:{SECRETS[r]}") for r in ROLES) + (SecretStr(LEGACY),)
    settings = story.settings.model_copy(
        update={
            "api": story.settings.api.model_copy(update={"tokens": tokens, "base_url": BASE_URL}),
            "auth": AuthSettings(**auth),
        }
    )
    return ApiContext(
        settings=settings,
        engine=story.app.engine,
        clinical=story.app.clinical,
        pipeline=story.app.pipeline,
    )


def client_for(context: ApiContext, peer: str = "127.0.0.1") -> httpx.AsyncClient:
    """An httpx client on the app, the TCP peer being ``peer`` (what a proxy check sees)."""
    transport = httpx.ASGITransport(app=create_app(context), client=(peer, 50000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)
