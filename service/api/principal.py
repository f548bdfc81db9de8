"""Who is asking, and may they: ``Principal`` and the ``require_role`` dependency.

Every /api/v1 route and every signed-in page declares the least role it needs::

    @router.post("/alerts/{alert_id}/ack")
    def ack(..., who: Principal = Depends(require_role("clinician"))) -> ...:
        acknowledge(..., who=who.name)

The principal is found, in this order, from a bearer token (``Authorization``), the trusted
proxy's headers (``proxy`` mode, trusted peers only) and, on pages outside /api/, the session
cookie. The session cookie is not accepted by the JSON API: the API's state-changing routes
carry no CSRF token, so they must not run on a credential the browser adds by itself.

Refusals: no credentials → 401 on /api/ (with ``WWW-Authenticate: Bearer``), a redirect to
/login on a page; a role too low → 403. The principal's ``name`` is what the audit trail
records as the actor of whatever the request does, never a name typed by the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials

from service.api.auth import (
    SESSION_COOKIE,
    Identity,
    bearer_scheme,
    csrf_token,
    csrf_valid,
    proxy_identity,
    session_identity,
    token_identity,
    token_lookup,
)
from service.api.context import context_of
from service.runtime.auth_settings import ROLES, Role, role_rank

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


@dataclass(frozen=True)
class Principal:
    """A signed-in identity: ``name`` (recorded as actor), ``role``, how it signed in."""

    name: str
    role: Role
    source: str = "token"  # token | oidc | proxy
    sid: str = ""  # the session a CSRF token is bound to

    def can(self, role: str) -> bool:
        """Does this principal hold ``role`` or a higher one?"""
        return role_rank(self.role) >= role_rank(role) >= 0

    @classmethod
    def of(cls, identity: Identity) -> Principal:
        return cls(name=identity.name, role=identity.role, source=identity.source, sid=identity.sid)


def principal_of(request: Request) -> Principal | None:
    """The principal of ``request`` (see the module docstring), or None. Never raises.

    A bearer header that matches no token is no principal at all: the request is not
    retried on the cookie, so a wrong token fails loudly instead of acting as someone else.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    ctx = context_of(request)
    identity: Identity | None = None
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = token_lookup(ctx.settings, presented.strip())
        identity = token_identity(token) if token else None
    else:  # another scheme (a proxy's Basic, say) is no API credential of ours
        identity = proxy_identity(ctx, request)
        if identity is None and not request.url.path.startswith(API_PREFIX):
            identity = session_identity(ctx, request.cookies.get(SESSION_COOKIE))
    if identity is None:
        return None
    principal = Principal.of(identity)
    request.state.principal = principal
    return principal


class RoleRefused(HTTPException):
    """403: signed in, but the role is too low. Pages show it as a page, the API as JSON."""

    title = "Not for your role"

    def __init__(self, role: str, detail: str = "") -> None:
        super().__init__(status_code=403, detail=detail or f"this needs the {role} role")
        self.role = role


class FormExpired(RoleRefused):
    """403: a form posted without this session's CSRF token (stale page, or another site)."""

    title = "This form has expired"


def login_location(request: Request) -> str:
    """/login, coming back to this page afterwards (a form's target cannot be come back to)."""
    if request.method != "GET":
        return "/login"
    target = quote(request.url.path, safe="/")
    return f"/login?next={target}"


def require_role(role: str) -> Callable[..., Principal]:
    """A FastAPI dependency admitting ``role`` and higher roles; it returns the Principal.

    Raises ``ValueError`` at import time for a role that does not exist (a typo must not
    become a route anyone may use).
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")

    def dependency(
        request: Request,
        # Declared so that the OpenAPI document shows the bearer scheme on every API route.
        _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),  # noqa: B008
    ) -> Principal:
        principal = principal_of(request)
        if principal is None:
            if request.url.path.startswith(API_PREFIX):
                raise HTTPException(
                    status_code=401,
                    detail="a valid bearer token is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            raise HTTPException(status_code=303, headers={"Location": login_location(request)})
        if not principal.can(role):
            log.warning(
                "request refused: role too low",
                extra={"required": role, "role": principal.role, "path": _route(request)},
            )
            raise RoleRefused(role)
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def _route(request: Request) -> str:
    # The route template, never the concrete path (paths carry ids and tokens).
    return str(getattr(request.scope.get("route"), "path", "unmatched"))


def form_csrf_token(request: Request, principal: Principal) -> str:
    """The CSRF token to put in a hidden ``csrf`` field of a form this principal posts."""
    return csrf_token(context_of(request), principal.sid)


def check_csrf(request: Request, principal: Principal, presented: str) -> None:
    """Raises 403 unless ``presented`` is this session's CSRF token.

    Bearer-token principals have no session and are exempt: a browser never adds a bearer
    header by itself, so a cross-site form cannot carry one.
    """
    if principal.source == "token" and not principal.sid:
        return
    if not csrf_valid(context_of(request), principal.sid, presented):
        log.warning("form refused: bad CSRF token", extra={"path": _route(request)})
        raise FormExpired("", detail="the form has expired; reload the page and try again")
