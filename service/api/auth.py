"""Who may use the API and the pages.

- JSON API: ``Authorization: Bearer <token>``, compared in constant time against every
  token of ``api.tokens`` (so the time taken says nothing about which token nearly matched).
  No tokens configured: every request is refused.
- Web pages (worklist, timeline): a clinician signs in once with an API token on /login and
  gets a session cookie: HttpOnly (no script can read it), SameSite=Lax (no cross-site
  POSTs carry it), Secure whenever the site is served over HTTPS, 12 hours. We chose this
  over HTTP basic because a phone's browser keeps basic credentials until it is closed, with
  no way to sign out, and shows the browser's bare password dialog. The cookie holds no
  token: a fingerprint of the token used (SHA-256 prefix) and the time it was issued, signed
  by ``service.runtime.signing.Signer`` (the same helper as the ack links, under its own
  salt); removing a token from the settings ends its sessions at the next request.
- Ack pages need neither: the signed ack token in the link is the capability.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.context import ApiContext, context_of
from service.runtime.settings import Settings
from service.runtime.signing import BadToken

SESSION_COOKIE = "labsentinel_session"
SESSION_TTL_S = 12 * 3600
_FINGERPRINT = "fp"

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="One of the tokens of the api.tokens setting (LABSENTINEL_API_TOKENS).",
)


def token_valid(settings: Settings, presented: str) -> bool:
    """Constant-time check of ``presented`` against every configured token."""
    if not presented:
        return False
    candidate = presented.encode()
    matched = False
    for token in settings.api.tokens:
        # No short-circuit: every configured token is compared every time.
        matched |= hmac.compare_digest(candidate, token.get_secret_value().encode())
    return matched


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
) -> None:
    """FastAPI dependency of every /api/v1 route; raises 401 without a valid bearer token."""
    ctx = context_of(request)
    if credentials is None or not token_valid(ctx.settings, credentials.credentials):
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


def make_session(ctx: ApiContext, token: str, now: float | None = None) -> str:
    """The session cookie's value for a sign-in with ``token`` (already checked valid)."""
    return ctx.session_signer.dumps({_FINGERPRINT: _fingerprint(token)}, now=now)


def session_valid(ctx: ApiContext, cookie: str | None, now: float | None = None) -> bool:
    """A genuine cookie under SESSION_TTL_S old, for a token still configured."""
    if not cookie:
        return False
    try:
        claims = ctx.session_signer.loads(cookie, max_age_s=SESSION_TTL_S, now=now)
    except BadToken:
        return False
    fingerprint = claims.get(_FINGERPRINT)
    if not isinstance(fingerprint, str):
        return False
    matched = False
    for token in ctx.settings.api.tokens:
        matched |= hmac.compare_digest(fingerprint, _fingerprint(token.get_secret_value()))
    return matched


def cookie_secure(ctx: ApiContext, request: Request) -> bool:
    return request.url.scheme == "https" or ctx.settings.api.base_url.startswith("https:")


def safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would turn the login page into a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/worklist"
    return target
