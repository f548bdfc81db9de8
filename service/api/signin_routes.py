"""Signing in and out of the pages: /login, /logout and the OpenID Connect round trip.

- ``token`` mode: /login takes an API token; the session gets the token's name and role.
- ``oidc`` mode: /login offers the hospital's sign-in; /login/oidc sends the browser to the
  provider (authorization code with PKCE S256, a state and a nonce, through Authlib's
  Starlette client), and /auth/callback takes the code back, checks the ID token (signature
  against the provider's keys, issuer, audience, nonce, expiry) and maps the roles claim
  through ``auth.role_mapping``. An identity with no mapped role is refused, unless
  ``auth.default_role`` is set. The flow's state, nonce and code verifier travel in a
  short-lived signed cookie scoped to /auth (no server-side store, so any instance can
  finish a flow another started).
- ``proxy`` mode: the proxy signs people in; /login only says so.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

# Authlib announces on import that it will move from httpx to httpx2; httpx is this project's
# HTTP client, so the notice would be noise at every start. authlib.deprecate installs an
# "always" filter of its own when imported (above), so this one goes in front of it.
warnings.filterwarnings(
    "ignore", message="The httpx module is deprecated", category=AuthlibDeprecationWarning
)

from authlib.integrations.base_client import OAuthError  # noqa: E402
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App  # noqa: E402

from service.api.auth import (  # noqa: E402
    SESSION_COOKIE,
    Identity,
    clean_name,
    cookie_secure,
    make_session,
    new_sid,
    safe_next,
    set_session_cookie,
    token_identity,
    token_lookup,
)
from service.api.context import ApiContext, context_of  # noqa: E402
from service.api.principal import API_PREFIX, FormExpired, RoleRefused  # noqa: E402
from service.api.web_routes import render  # noqa: E402
from service.runtime.auth_settings import granted_role  # noqa: E402
from service.runtime.signing import BadToken, Signer  # noqa: E402

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

FLOW_COOKIE = "labsentinel_oidc_flow"
FLOW_SALT = "labsentinel oidc flow"
FLOW_PATH = "/auth"
# Time a person has at the identity provider's sign-in page before the flow must restart.
FLOW_TTL_S = 600
CALLBACK_PATH = "/auth/callback"


def _login_page(request: Request, next_url: str, error: str = "", status: int = 200) -> Response:
    mode = context_of(request).settings.auth.mode
    return render(
        request, "login.html", {"next": next_url, "error": error, "mode": mode}, status=status
    )


async def role_refused(request: Request, exc: Exception) -> Response:
    """The app's handler of ``RoleRefused``: JSON under /api/, a page elsewhere."""
    if not isinstance(exc, RoleRefused):  # registered for RoleRefused only
        raise exc
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse({"detail": exc.detail}, status_code=403)
    if isinstance(exc, FormExpired):
        text = "Go back, reload the page and try again."
    else:
        text = f"Your account cannot do this ({exc.detail}). Ask the pharmacy if you need it."
    return render(request, "message.html", {"title": exc.title, "text": text}, 403)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/worklist", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/worklist") -> Response:  # noqa: A002
    return _login_page(request, safe_next(next))


@router.post("/login")
def login(
    request: Request,
    token: str = Form(default=""),
    next: str = Form(default="/worklist"),  # noqa: A002
) -> Response:
    """Token sign-in; only in ``token`` mode (elsewhere people sign in as the hospital says)."""
    ctx = context_of(request)
    if ctx.settings.auth.mode != "token":
        return _login_page(request, safe_next(next), "Sign in with your hospital account.", 403)
    found = token_lookup(ctx.settings, token.strip())
    if found is None:
        log.warning("web sign-in refused")
        return _login_page(request, safe_next(next), "That token is not valid.", 401)
    identity = token_identity(found, new_sid())
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(ctx, request, response, make_session(ctx, identity, secret=found.secret))
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- OpenID Connect -------------------------------------------------------------------------


def _client(request: Request) -> StarletteOAuth2App:
    """The Authlib client of this app, made once (it caches the provider's metadata)."""
    client: StarletteOAuth2App | None = getattr(request.app.state, "oidc_client", None)
    if client is None:
        auth = context_of(request).settings.auth
        oauth = OAuth()
        secret = auth.oidc_client_secret
        client = oauth.register(
            "hospital",
            client_id=auth.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            server_metadata_url=auth.discovery_url,
            client_kwargs={
                "scope": " ".join(auth.oidc_scopes),
                "code_challenge_method": "S256",
                # Provider calls are bounded: a hung provider must not hold a worker forever.
                "timeout": 10.0,
            },
        )
        request.app.state.oidc_client = client
    return client


def _flow_signer(ctx: ApiContext) -> Signer:
    return Signer(ctx.session_secret, salt=FLOW_SALT)


@router.get("/login/oidc")
async def oidc_start(request: Request, next: str = "/worklist") -> Response:  # noqa: A002
    ctx = context_of(request)
    if ctx.settings.auth.mode != "oidc":
        return RedirectResponse("/login", status_code=303)
    # Authlib keeps the flow's state in ``request.session``; we give it a dict of our own
    # and carry it in the flow cookie instead of installing a session middleware app-wide.
    request.scope["session"] = {}
    redirect_uri = ctx.settings.api.base_url.rstrip("/") + CALLBACK_PATH
    try:
        response = await _client(request).authorize_redirect(request, redirect_uri)
    except Exception as exc:  # the provider is down or its metadata is broken
        log.error("identity provider unreachable", extra={"error": type(exc).__name__})
        return _login_page(request, safe_next(next), "The hospital sign-in is unavailable.", 503)
    flow = {"authlib": request.scope["session"], "next": safe_next(next)}
    response.set_cookie(
        FLOW_COOKIE,
        _flow_signer(ctx).dumps(flow),
        max_age=FLOW_TTL_S,
        httponly=True,
        secure=cookie_secure(ctx, request),
        samesite="lax",
        path=FLOW_PATH,
    )
    return response


def _claim_values(claims: dict[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _oidc_identity(ctx: ApiContext, claims: dict[str, Any]) -> Identity | None:
    auth = ctx.settings.auth
    name = None
    for key in (auth.oidc_name_claim, "email", "sub"):
        name = clean_name(claims.get(key))
        if name:
            break
    if name is None:
        return None
    values = _claim_values(claims, auth.oidc_roles_claim)
    role = granted_role(values, dict(auth.role_mapping), auth.default_role)
    if role is None:
        return None
    return Identity(name=name, role=role, source="oidc", sid=new_sid())


@router.get(CALLBACK_PATH)
async def oidc_callback(request: Request) -> Response:
    ctx = context_of(request)
    auth = ctx.settings.auth
    if auth.mode != "oidc":
        return RedirectResponse("/login", status_code=303)
    try:
        flow = _flow_signer(ctx).loads(request.cookies.get(FLOW_COOKIE, ""), max_age_s=FLOW_TTL_S)
    except BadToken:
        return _login_page(request, "/worklist", "The sign-in took too long; try again.", 400)
    next_url = safe_next(flow.get("next"))
    request.scope["session"] = flow.get("authlib") or {}
    client = _client(request)
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if auth.oidc_roles_claim not in claims:
            # Some providers put groups only in the userinfo answer, not the ID token.
            claims.update(await client.userinfo(token=token))
    except OAuthError as exc:
        log.warning("OIDC sign-in refused", extra={"error": exc.error})
        return _login_page(request, next_url, "The hospital sign-in did not complete.", 401)
    except Exception as exc:  # network or provider failure while finishing the flow
        log.error("OIDC sign-in failed", extra={"error": type(exc).__name__})
        return _login_page(request, next_url, "The hospital sign-in is unavailable.", 503)
    issuer = str(claims.get("iss", "")).rstrip("/")
    if auth.oidc_issuer and issuer != auth.oidc_issuer.rstrip("/"):
        log.warning("OIDC sign-in refused", extra={"error": "issuer"})
        return _login_page(request, next_url, "The hospital sign-in did not complete.", 401)
    identity = _oidc_identity(ctx, claims)
    if identity is None:
        log.warning("OIDC sign-in refused", extra={"error": "no role"})
        return _login_page(
            request, next_url, "Your account has no LabSentinel role; ask the pharmacy.", 403
        )
    log.info("signed in", extra={"by": identity.name, "role": identity.role})
    response = RedirectResponse(next_url, status_code=303)
    set_session_cookie(ctx, request, response, make_session(ctx, identity))
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response
