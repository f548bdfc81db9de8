"""Who may sign in and with which role: the ``auth`` settings section and the role order.

Roles, each including the rights of the ones before it:

- ``viewer``: reads the worklist, timelines, alerts and their history;
- ``clinician``: also acknowledges and resolves alerts;
- ``pharmacist``: also adds and ends silences;
- ``admin``: also reads dead letters (raw HL7, which holds names and birth dates) and
  reprocesses them.

Identities come from one of three modes (``auth.mode``): ``token`` (a person signs in to the
pages with an API token: the shipped default, for the demo and small sites), ``oidc`` (the
hospital's OpenID Connect provider, authorization code with PKCE) or ``proxy`` (an
authenticating reverse proxy names the user in a header, believed only from the proxy's own
addresses). In every mode the JSON API also takes bearer tokens, each with its own role.

An ``api.tokens`` entry is either ``name:role:secret`` (a scoped token: the caller presents
``secret``, is recorded as ``token:name`` and has ``role``) or a bare secret, the form older
configurations use: a bare token gets ``auth.legacy_token_role`` (``viewer`` unless set), so
that upgrading never widens what an old token may do.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Role = Literal["viewer", "clinician", "pharmacist", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "clinician", "pharmacist", "admin")

_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def role_rank(role: str) -> int:
    """Position of ``role`` in ``ROLES``; -1 for anything that is not a role."""
    return ROLES.index(role) if role in ROLES else -1  # type: ignore[arg-type]


def granted_role(values: list[str], mapping: dict[str, Role], default: Role | None) -> Role | None:
    """The highest role ``mapping`` grants for any of ``values`` (claim or header values).

    A value the mapping does not name grants nothing, even when it spells a role ("admin"):
    only the site's configuration decides what an identity provider's groups mean. ``default``
    is the role of an identity none of whose values is mapped (None: no role, no sign-in).
    """
    granted = [mapping[v] for v in values if v in mapping]
    if not granted:
        return default
    return max(granted, key=role_rank)


@dataclass(frozen=True)
class ApiToken:
    """One configured bearer token: who it is recorded as, what it may do, its secret."""

    name: str
    role: Role
    secret: str


def parse_api_token(entry: str, legacy_role: Role) -> ApiToken:
    """``name:role:secret`` → a scoped token; anything else is a bare (legacy) secret.

    A bare token is named ``legacy-<8 hex>`` (a SHA-256 prefix of the secret: names the token
    in the audit trail without revealing it) and gets ``legacy_role``.
    """
    parts = entry.split(":", 2)
    if len(parts) == 3 and _TOKEN_NAME.fullmatch(parts[0]) and parts[1] in ROLES and parts[2]:
        return ApiToken(name=parts[0], role=parts[1], secret=parts[2])  # type: ignore[arg-type]
    digest = hashlib.sha256(entry.encode()).hexdigest()[:8]
    return ApiToken(name=f"legacy-{digest}", role=legacy_role, secret=entry)


class AuthSettings(BaseModel):
    """The ``auth`` section (see the module docstring and configs/labsentinel.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["token", "oidc", "proxy"] = "token"
    # Role of a bare api.tokens entry (one without "name:role:"): least privilege.
    legacy_token_role: Role = "viewer"
    # Identity-provider group/role value → LabSentinel role (OIDC claim or proxy header).
    role_mapping: dict[str, Role] = Field(default_factory=dict)
    # Role of a signed-in identity with no mapped value; unset: such a sign-in is refused.
    default_role: Role | None = None

    # -- oidc --------------------------------------------------------------------------
    # The provider's issuer URL; discovery at <issuer>/.well-known/openid-configuration
    # unless oidc_discovery_url is set.
    oidc_issuer: str = ""
    oidc_discovery_url: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    # Claim holding the user's groups or roles (a list or one string), mapped by role_mapping.
    oidc_roles_claim: str = "groups"
    # Claim recorded as the actor of what the user does (falls back to email, then sub).
    oidc_name_claim: str = "preferred_username"

    # -- proxy -------------------------------------------------------------------------
    proxy_user_header: str = "X-Forwarded-User"
    # Comma-separated groups/roles of the user, mapped by role_mapping.
    proxy_groups_header: str = "X-Forwarded-Groups"
    # Peer addresses (CIDRs) of the proxy; the headers from any other address are ignored.
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP network: {cidr!r}") from exc
        return value

    @model_validator(mode="after")
    def _mode_complete(self) -> AuthSettings:
        if self.mode == "oidc":
            if not (self.oidc_issuer or self.oidc_discovery_url) or not self.oidc_client_id:
                raise ValueError(
                    "mode 'oidc' needs oidc_issuer (or oidc_discovery_url) and oidc_client_id"
                )
            if "openid" not in self.oidc_scopes:
                raise ValueError("oidc_scopes must include 'openid'")
        if self.mode == "proxy" and not self.trusted_proxies:
            raise ValueError("mode 'proxy' needs trusted_proxies (the proxy's addresses)")
        return self

    @property
    def discovery_url(self) -> str:
        if self.oidc_discovery_url:
            return self.oidc_discovery_url
        return self.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

    def proxy_trusted(self, peer: str | None) -> bool:
        """Is ``peer`` (the TCP peer's address) one of the trusted proxies?"""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(cidr, strict=False) for cidr in self.trusted_proxies
        )
