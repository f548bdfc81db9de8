"""Credentials: bearer tokens, the web session cookie, the trusted proxy's headers.

This module checks credentials and says whom they name; ``service.api.principal`` turns that
into a ``Principal`` and decides what it may do.

- JSON API: ``Authorization: Bearer <secret>``, compared in constant time against every
  token of ``api.tokens`` (so the time taken says nothing about which token nearly matched).
  Each token has a name and a role (``service.runtime.auth_settings.parse_api_token``).
  No tokens configured: no bearer is accepted.
- Web pages: a person signs in once (with a token on /login in ``token`` mode, through the
  identity provider in ``oidc`` mode) and gets a session cookie: HttpOnly (no script can read
  it), SameSite=Lax (no cross-site POSTs carry it), Secure whenever the site is served over
  HTTPS, 12 hours. We chose this over HTTP basic because a phone's browser keeps basic
  credentials until it is closed, with no way to sign out. The cookie holds no secret: the
  identity, its role, a random session id (the CSRF token is bound to it) and, for a token
  sign-in, a fingerprint of the token (SHA-256 prefix), signed by
  ``service.runtime.signing.Signer`` under its own salt. A token sign-in takes its role from
  the current settings at each request, so removing or demoting a token acts at once; an
  OIDC session keeps the role mapped at sign-in, and ends when the mode changes.
- ``proxy`` mode: the proxy's user and groups headers, believed only when the TCP peer is
  one of ``auth.trusted_proxies``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request
from fastapi.security import HTTPBearer

from service.api.context import ApiContext
from service.runtime.auth_settings import ROLES, ApiToken, Role, granted_role, parse_api_token
from service.runtime.settings import Settings
from service.runtime.signing import BadToken, Signer

SESSION_COOKIE = "labsentinel_session"
SESSION_TTL_S = 12 * 3600
CSRF_SALT = "labsentinel csrf"
MAX_NAME = 128

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A secret of the api.tokens setting (LABSENTINEL_API_TOKENS); "
    "entries `name:role:secret` give the token a role.",
)


@dataclass(frozen=True)
class Identity:
    """Whom valid credentials name: ``source`` is ``token``, ``oidc`` or ``proxy``."""

    name: str
    role: Role
    source: str
    sid: str = ""


def api_tokens(settings: Settings) -> list[ApiToken]:
    legacy = settings.auth.legacy_token_role
    return [parse_api_token(t.get_secret_value(), legacy) for t in settings.api.tokens]


def token_lookup(settings: Settings, presented: str) -> ApiToken | None:
    """The configured token whose secret is ``presented``; constant time over all tokens."""
    if not presented:
        return None
    candidate = presented.encode()
    found: ApiToken | None = None
    for token in api_tokens(settings):
        # No short-circuit: every configured token is compared every time.
        if hmac.compare_digest(candidate, token.secret.encode()):
            found = token
    return found


def token_identity(token: ApiToken, sid: str = "") -> Identity:
    return Identity(name=f"token:{token.name}", role=token.role, source="token", sid=sid)


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:24]


def clean_name(raw: object) -> str | None:
    """A name fit for the audit trail: printable ASCII, 1..128 characters, else None.

    ASCII only: a bidi override or a control character in a recorded actor would make the
    history lie about who acted.
    """
    if not isinstance(raw, str):
        return None
    name = raw.strip()
    if not name or len(name) > MAX_NAME or not name.isascii() or not name.isprintable():
        return None
    return name


# -- the session cookie ---------------------------------------------------------------------


def new_sid() -> str:
    return secrets.token_urlsafe(16)


def make_session(
    ctx: ApiContext, identity: Identity, *, secret: str = "", now: float | None = None
) -> str:
    """The session cookie's value for ``identity``; ``secret`` is the token signed in with."""
    claims: dict[str, str] = {
        "sub": identity.name,
        "role": identity.role,
        "src": identity.source,
        "sid": identity.sid or new_sid(),
    }
    if identity.source == "token":
        claims["fp"] = _fingerprint(secret)
    return ctx.session_signer.dumps(claims, now=now)


def session_identity(
    ctx: ApiContext, cookie: str | None, now: float | None = None
) -> Identity | None:
    """Whom a genuine cookie under SESSION_TTL_S old names, if it still holds.

    A token session holds while its token is configured (and gets the token's current
    role); an OIDC session while the mode is ``oidc``. Anything else is no session.
    """
    if not cookie:
        return None
    try:
        claims = ctx.session_signer.loads(cookie, max_age_s=SESSION_TTL_S, now=now)
    except BadToken:
        return None
    name, role, source, sid = (claims.get(k) for k in ("sub", "role", "src", "sid"))
    if not (isinstance(sid, str) and sid and clean_name(name) and role in ROLES):
        return None
    if source == "token":
        fingerprint = claims.get("fp")
        if not isinstance(fingerprint, str):
            return None
        match: ApiToken | None = None
        for token in api_tokens(ctx.settings):
            if hmac.compare_digest(fingerprint, _fingerprint(token.secret)):
                match = token
        return token_identity(match, sid) if match else None
    if source == "oidc" and ctx.settings.auth.mode == "oidc":
        return Identity(name=str(name), role=role, source="oidc", sid=sid)  # type: ignore[arg-type]
    return None


def cookie_secure(ctx: ApiContext, request: Request) -> bool:
    return request.url.scheme == "https" or ctx.settings.api.base_url.startswith("https:")


def set_session_cookie(ctx: ApiContext, request: Request, response: object, value: str) -> None:
    """Set the session cookie on ``response`` (a Starlette Response)."""
    response.set_cookie(  # type: ignore[attr-defined]
        SESSION_COOKIE,
        value,
        max_age=SESSION_TTL_S,
        httponly=True,
        secure=cookie_secure(ctx, request),
        samesite="lax",
        path="/",
    )


def safe_next(target: str | None) -> str:
    """Only local paths: an open redirect would turn the login page into a phishing aid."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/worklist"
    return target


# -- the trusted proxy ----------------------------------------------------------------------


def proxy_identity(ctx: ApiContext, request: Request) -> Identity | None:
    """The user the proxy names, when the peer is a trusted proxy and the user has a role.

    From any other peer the headers are ignored: anyone can send ``X-Forwarded-User``.
    """
    auth = ctx.settings.auth
    if auth.mode != "proxy":
        return None
    raw = request.headers.get(auth.proxy_user_header)
    if raw is None:
        return None
    peer = request.client.host if request.client else None
    if not auth.proxy_trusted(peer):
        return None
    name = clean_name(raw)
    if name is None:
        return None
    groups = [g.strip() for g in request.headers.get(auth.proxy_groups_header, "").split(",")]
    role = granted_role([g for g in groups if g], dict(auth.role_mapping), auth.default_role)
    if role is None:
        return None
    return Identity(name=name, role=role, source="proxy", sid=f"proxy:{name}")


# -- CSRF -----------------------------------------------------------------------------------


def csrf_token(ctx: ApiContext, sid: str, now: float | None = None) -> str:
    """A signed token bound to the session id: the hidden field of every web form."""
    return Signer(ctx.session_secret, salt=CSRF_SALT).dumps({"sid": sid}, now=now)


def csrf_valid(ctx: ApiContext, sid: str, presented: str, now: float | None = None) -> bool:
    if not sid or not presented:
        return False
    try:
        claims = Signer(ctx.session_secret, salt=CSRF_SALT).loads(
            presented, max_age_s=SESSION_TTL_S, now=now
        )
    except BadToken:
        return False
    bound = claims.get("sid")
    return isinstance(bound, str) and hmac.compare_digest(bound.encode(), sid.encode())
